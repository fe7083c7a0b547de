package main

import (
	"context"
	"fmt"
	"time"

	"github.com/tcpez/tcpez/client"
	"github.com/tcpez/tcpez/server"
	"github.com/tcpez/tcpez/span"
)

// tcpezSystem is the tcpez byte layer: an echo handler on server.New with
// the default config, and one client.Client with its default single
// connection. Goroutines share the client: their CallAppend calls are
// pipelined on the connection, or, with pipeline set, each sends explicit
// batches of batchSize with a Pipeline. conns > 1 gives the client that
// many connections (client.Config.ConnsPerAddr), to measure whether
// spreading large calls over connections is faster.
//
// protocol is the client's Config.Protocol: v1, or the multiplexed mode.
type tcpezSystem struct {
	pipeline bool
	conns    int
	protocol client.Protocol
	srv      *server.Server
	done     chan error
	cl       *client.Client
}

// startTCPEZServer serves h on a loopback port with the default config.
func startTCPEZServer(h server.Handler) (*server.Server, string, chan error, error) {
	l, err := listen()
	if err != nil {
		return nil, "", nil, err
	}
	srv := server.New(h, server.Config{})
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	return srv, l.Addr().String(), done, nil
}

func stopTCPEZServer(srv *server.Server, done chan error) {
	if srv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if srv.Shutdown(ctx) != nil {
		srv.Close()
	}
	<-done
}

func (s *tcpezSystem) Start() error {
	echo := server.HandlerFunc(func(_ context.Context, req []byte, _ *span.Span) ([]byte, error) {
		return req, nil // an answer may be the request itself
	})
	var addr string
	var err error
	if s.srv, addr, s.done, err = startTCPEZServer(echo); err != nil {
		return err
	}
	s.cl, err = client.New([]string{addr}, client.Config{Protocol: s.protocol, ConnsPerAddr: s.conns})
	return err
}

func (s *tcpezSystem) NewCaller() (caller, error) {
	if s.pipeline {
		return &tcpezPipelineCaller{p: s.cl.Pipeline()}, nil
	}
	return &tcpezCaller{cl: s.cl}, nil
}

func (s *tcpezSystem) Close() {
	if s.cl != nil {
		s.cl.Close()
	}
	stopTCPEZServer(s.srv, s.done)
}

type tcpezCaller struct {
	cl  *client.Client
	dst []byte // reused answer buffer: CallAppend allocates nothing
}

func (c *tcpezCaller) Call(ctx context.Context, req []byte) (int, error) {
	ans, err := c.cl.CallAppend(ctx, c.dst[:0], req)
	if err != nil {
		return 0, err
	}
	c.dst = ans
	return 1, checkEcho(req, ans)
}

func (c *tcpezCaller) Close() {}

// tcpezPipelineCaller takes each batch's answers with FlushAppend into the
// buffers of its last batch, as a caller that minds allocations does.
type tcpezPipelineCaller struct {
	p       *client.Pipeline
	buf     []byte
	answers [][]byte
}

func (c *tcpezPipelineCaller) Call(ctx context.Context, req []byte) (int, error) {
	for range batchSize {
		c.p.Enqueue(req)
	}
	var err error
	c.buf, c.answers, err = c.p.FlushAppend(ctx, c.buf[:0], c.answers[:0])
	if err != nil {
		return 0, err
	}
	answers := c.answers
	if len(answers) != batchSize {
		return 0, fmt.Errorf("%w: %d answers to a batch of %d", errMismatch, len(answers), batchSize)
	}
	for _, ans := range answers {
		if err := checkEcho(req, ans); err != nil {
			return 0, err
		}
	}
	return batchSize, nil
}

func (c *tcpezPipelineCaller) Close() {}
