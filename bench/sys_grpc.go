package main

import (
	"context"
	"errors"
	"io"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/tcpez/tcpez/bench/echopb"
)

// grpcSystem is grpc-go with its defaults: a grpc.Server with the Echo
// service of echopb/echo.proto and one ClientConn (one HTTP/2 connection)
// that every goroutine shares. Unary calls Echo.Unary; with stream set, each
// goroutine opens its own Echo.Stream on the ClientConn and sends a request
// and waits for its answer, ping-pong, for as long as it runs.
type grpcSystem struct {
	stream bool
	srv    *grpc.Server
	done   chan error
	cc     *grpc.ClientConn
	echo   echopb.EchoClient
}

type grpcEchoServer struct {
	echopb.UnimplementedEchoServer
}

func (grpcEchoServer) Unary(_ context.Context, req *echopb.EchoRequest) (*echopb.EchoResponse, error) {
	return &echopb.EchoResponse{Payload: req.Payload}, nil
}

func (grpcEchoServer) Stream(st grpc.BidiStreamingServer[echopb.EchoRequest, echopb.EchoResponse]) error {
	for {
		req, err := st.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := st.Send(&echopb.EchoResponse{Payload: req.Payload}); err != nil {
			return err
		}
	}
}

func (s *grpcSystem) Start() error {
	l, err := listen()
	if err != nil {
		return err
	}
	s.srv = grpc.NewServer()
	echopb.RegisterEchoServer(s.srv, grpcEchoServer{})
	s.done = make(chan error, 1)
	go func() { s.done <- s.srv.Serve(l) }()
	// passthrough: the address goes to dialContext as it is.
	s.cc, err = grpc.NewClient("passthrough:///"+l.Addr().String(),
		grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithContextDialer(dialContext))
	if err != nil {
		return err
	}
	s.cc.Connect()
	s.echo = echopb.NewEchoClient(s.cc)
	return nil
}

func (s *grpcSystem) NewCaller() (caller, error) {
	if !s.stream {
		return &grpcUnaryCaller{echo: s.echo}, nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	st, err := s.echo.Stream(ctx)
	if err != nil {
		cancel()
		return nil, err
	}
	return &grpcStreamCaller{st: st, cancel: cancel}, nil
}

func (s *grpcSystem) Close() {
	if s.cc != nil {
		s.cc.Close()
	}
	if s.srv != nil {
		s.srv.Stop()
		<-s.done
	}
}

type grpcUnaryCaller struct {
	echo echopb.EchoClient
}

func (c *grpcUnaryCaller) Call(ctx context.Context, req []byte) (int, error) {
	resp, err := c.echo.Unary(ctx, &echopb.EchoRequest{Payload: req})
	if err != nil {
		return 0, err
	}
	return 1, checkEcho(req, resp.GetPayload())
}

func (c *grpcUnaryCaller) Close() {}

type grpcStreamCaller struct {
	st     grpc.BidiStreamingClient[echopb.EchoRequest, echopb.EchoResponse]
	cancel context.CancelFunc
}

// Call sends on the goroutine's stream; the stream lives as long as the
// caller, so ctx (which the stream was not opened with) is not consulted.
func (c *grpcStreamCaller) Call(_ context.Context, req []byte) (int, error) {
	if err := c.st.Send(&echopb.EchoRequest{Payload: req}); err != nil {
		return 0, err
	}
	resp, err := c.st.Recv()
	if err != nil {
		return 0, err
	}
	return 1, checkEcho(req, resp.GetPayload())
}

func (c *grpcStreamCaller) Close() {
	c.st.CloseSend()
	c.cancel()
}
