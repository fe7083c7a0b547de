package main

import (
	"context"

	"github.com/tcpez/tcpez/bench/echopb"
	"github.com/tcpez/tcpez/bench/tcpezpb"
	"github.com/tcpez/tcpez/client"
	"github.com/tcpez/tcpez/protoserver"
	"github.com/tcpez/tcpez/server"
	"github.com/tcpez/tcpez/span"
)

// tcpezServiceSystem is tcpez service mode: the Echo service of
// tcpezpb/echo.proto registered on a protoserver.Service with the generated
// RegisterEcho, served by server.New with the default config, and called
// through the generated client over one client.Client (one connection), so
// each request and answer travels in the tcpez.v1 envelope.
type tcpezServiceSystem struct {
	srv  *server.Server
	done chan error
	cl   *client.Client
	echo tcpezpb.EchoClient
}

type tcpezEchoServer struct{}

func (tcpezEchoServer) Unary(_ context.Context, req *echopb.EchoRequest, _ *span.Span) (*echopb.EchoResponse, error) {
	return &echopb.EchoResponse{Payload: req.Payload}, nil
}

func (s *tcpezServiceSystem) Start() error {
	svc := protoserver.NewService(protoserver.ServiceConfig{})
	tcpezpb.RegisterEcho(svc, tcpezEchoServer{})
	var addr string
	var err error
	if s.srv, addr, s.done, err = startTCPEZServer(svc); err != nil {
		return err
	}
	if s.cl, err = client.New([]string{addr}, client.Config{}); err != nil {
		return err
	}
	s.echo = tcpezpb.NewEchoClient(protoserver.NewClient(s.cl, protoserver.ClientConfig{}))
	return nil
}

func (s *tcpezServiceSystem) NewCaller() (caller, error) {
	return &tcpezServiceCaller{echo: s.echo}, nil
}

func (s *tcpezServiceSystem) Close() {
	if s.cl != nil {
		s.cl.Close()
	}
	stopTCPEZServer(s.srv, s.done)
}

type tcpezServiceCaller struct {
	echo tcpezpb.EchoClient
}

func (c *tcpezServiceCaller) Call(ctx context.Context, req []byte) (int, error) {
	resp, err := c.echo.Unary(ctx, &echopb.EchoRequest{Payload: req})
	if err != nil {
		return 0, err
	}
	return 1, checkEcho(req, resp.GetPayload())
}

func (c *tcpezServiceCaller) Close() {}
