package main

import (
	"context"

	"github.com/tcpez/tcpez/bench/echopb"
	"github.com/tcpez/tcpez/bench/tcpezpb"
	"github.com/tcpez/tcpez/bench/vtpb"
	"github.com/tcpez/tcpez/client"
	"github.com/tcpez/tcpez/protoserver"
	"github.com/tcpez/tcpez/server"
	"github.com/tcpez/tcpez/span"
)

// tcpezServiceSystem is tcpez service mode: the Echo service of
// tcpezpb/echo.proto registered on a protoserver.Service with the generated
// RegisterEcho, served by server.New with the default config, and called
// through the generated client over one client.Client (one connection), so
// each request and answer travels in the tcpez.v1 envelope. With vt set,
// the messages are vtpb's, which carry vtprotobuf's marshalling code.
type tcpezServiceSystem struct {
	vt   bool
	srv  *server.Server
	done chan error
	cl   *client.Client
	pc   *protoserver.Client
}

// tcpezEchoServer and vtEchoServer have both forms of Unary: RegisterEcho
// serves it with UnaryInto, which fills the response the service reuses, so
// that the call allocates no response.
type tcpezEchoServer struct{}

func (tcpezEchoServer) Unary(_ context.Context, req *echopb.EchoRequest, _ *span.Span) (*echopb.EchoResponse, error) {
	return &echopb.EchoResponse{Payload: req.Payload}, nil
}

func (tcpezEchoServer) UnaryInto(_ context.Context, req *echopb.EchoRequest, resp *echopb.EchoResponse, _ *span.Span) error {
	resp.Payload = req.Payload
	return nil
}

type vtEchoServer struct{}

func (vtEchoServer) Unary(_ context.Context, req *vtpb.EchoRequest, _ *span.Span) (*vtpb.EchoResponse, error) {
	return &vtpb.EchoResponse{Payload: req.Payload}, nil
}

func (vtEchoServer) UnaryInto(_ context.Context, req *vtpb.EchoRequest, resp *vtpb.EchoResponse, _ *span.Span) error {
	resp.Payload = req.Payload
	return nil
}

func (s *tcpezServiceSystem) Start() error {
	// Handlers keep no request past their return, so the service may reuse
	// its request messages, and decode their large bytes fields in place.
	svc := protoserver.NewService(protoserver.ServiceConfig{RequestReuse: true, AliasRequestBytes: true})
	if s.vt {
		vtpb.RegisterEcho(svc, vtEchoServer{})
	} else {
		tcpezpb.RegisterEcho(svc, tcpezEchoServer{})
	}
	var addr string
	var err error
	if s.srv, addr, s.done, err = startTCPEZServer(svc); err != nil {
		return err
	}
	if s.cl, err = client.New([]string{addr}, client.Config{}); err != nil {
		return err
	}
	s.pc = protoserver.NewClient(s.cl, protoserver.ClientConfig{})
	return nil
}

// NewCaller returns a caller that reuses its request and response messages
// from call to call, through the generated UnaryInto, as a loop that
// keeps calling would.
func (s *tcpezServiceSystem) NewCaller() (caller, error) {
	if s.vt {
		echo := vtpb.NewEchoClient(s.pc)
		var req vtpb.EchoRequest
		var resp vtpb.EchoResponse
		return &tcpezServiceCaller{call: func(ctx context.Context, b []byte) ([]byte, error) {
			req.Payload = b
			err := echo.UnaryInto(ctx, &req, &resp)
			return resp.Payload, err
		}}, nil
	}
	echo := tcpezpb.NewEchoClient(s.pc)
	var req echopb.EchoRequest
	var resp echopb.EchoResponse
	return &tcpezServiceCaller{call: func(ctx context.Context, b []byte) ([]byte, error) {
		req.Payload = b
		err := echo.UnaryInto(ctx, &req, &resp)
		return resp.Payload, err
	}}, nil
}

func (s *tcpezServiceSystem) Close() {
	if s.cl != nil {
		s.cl.Close()
	}
	stopTCPEZServer(s.srv, s.done)
}

type tcpezServiceCaller struct {
	call func(ctx context.Context, req []byte) ([]byte, error)
}

func (c *tcpezServiceCaller) Call(ctx context.Context, req []byte) (int, error) {
	ans, err := c.call(ctx, req)
	if err != nil {
		return 0, err
	}
	return 1, checkEcho(req, ans)
}

func (c *tcpezServiceCaller) Close() {}
