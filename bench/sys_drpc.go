package main

import (
	"context"

	"storj.io/drpc/drpcconn"
	"storj.io/drpc/drpcmux"
	"storj.io/drpc/drpcserver"

	"github.com/tcpez/tcpez/bench/echopb"
)

// drpcSystem is storj.io/drpc with its defaults: a drpcserver with the Echo
// service of echopb/echo.proto (code from protoc-gen-go-drpc), and one
// drpcconn.Conn (one connection) that every goroutine shares. A drpc
// connection carries one RPC at a time, so concurrent calls queue for it:
// that is what "one client" means for drpc.
type drpcSystem struct {
	cancel context.CancelFunc
	done   chan error
	conn   *drpcconn.Conn
	echo   echopb.DRPCEchoClient
}

type drpcEchoServer struct {
	echopb.DRPCEchoUnimplementedServer
}

func (drpcEchoServer) Unary(_ context.Context, req *echopb.EchoRequest) (*echopb.EchoResponse, error) {
	return &echopb.EchoResponse{Payload: req.Payload}, nil
}

func (s *drpcSystem) Start() error {
	l, err := listen()
	if err != nil {
		return err
	}
	mux := drpcmux.New()
	if err := echopb.DRPCRegisterEcho(mux, &drpcEchoServer{}); err != nil {
		l.Close()
		return err
	}
	srv := drpcserver.New(mux)
	var ctx context.Context
	ctx, s.cancel = context.WithCancel(context.Background())
	s.done = make(chan error, 1)
	go func() { s.done <- srv.Serve(ctx, l) }()
	nc, err := dial(l.Addr().String())
	if err != nil {
		return err
	}
	s.conn = drpcconn.New(nc)
	s.echo = echopb.NewDRPCEchoClient(s.conn)
	return nil
}

func (s *drpcSystem) NewCaller() (caller, error) {
	return &drpcCaller{echo: s.echo}, nil
}

func (s *drpcSystem) Close() {
	if s.conn != nil {
		s.conn.Close()
	}
	if s.cancel != nil {
		s.cancel() // Serve closes the listener and waits for its connections
		<-s.done
	}
}

type drpcCaller struct {
	echo echopb.DRPCEchoClient
}

func (c *drpcCaller) Call(ctx context.Context, req []byte) (int, error) {
	resp, err := c.echo.Unary(ctx, &echopb.EchoRequest{Payload: req})
	if err != nil {
		return 0, err
	}
	return 1, checkEcho(req, resp.GetPayload())
}

func (c *drpcCaller) Close() {}
