package client_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tcpez/tcpez/client"
	"github.com/tcpez/tcpez/frame"
	"github.com/tcpez/tcpez/internal/testserver"
	"github.com/tcpez/tcpez/server"
	"github.com/tcpez/tcpez/span"
)

// TestMuxRequestOverLimitNotSent: a request over the frame limit the
// server announced is refused before anything is written, with an error
// matching frame.ErrFrameTooLarge; the connection goes on.
func TestMuxRequestOverLimitNotSent(t *testing.T) {
	var ran atomic.Int64
	_, addr := testserver.Start(t, server.HandlerFunc(func(_ context.Context, req []byte, _ *span.Span) ([]byte, error) {
		ran.Add(1)
		return req, nil
	}), server.Config{Limits: frame.Limits{MaxFrameSize: 64}})
	c := newClient(t, []string{addr}, client.Config{Protocol: client.ProtocolMux})
	_, err := c.Call(ctxFor(t), make([]byte, 100))
	var se *frame.SizeError
	if !errors.Is(err, frame.ErrFrameTooLarge) || !errors.As(err, &se) || se.Limit != 64-frame.MuxHeaderSize {
		t.Fatalf("got %v, want a *frame.SizeError over %d", err, 64-frame.MuxHeaderSize)
	}
	if ans, err := c.Call(ctxFor(t), []byte("small")); err != nil || string(ans) != "small" {
		t.Fatalf("after the refusal: %q, %v", ans, err)
	}
	if ran.Load() != 1 {
		t.Fatalf("the handler ran %d times, want once", ran.Load())
	}
}

// TestMuxServerAnswersTooLarge: a server's error code 6 (its limit is
// lower than it announced, or it changed) reaches the caller as an error
// matching frame.ErrFrameTooLarge, and the connection goes on.
func TestMuxServerAnswersTooLarge(t *testing.T) {
	addr := rawMuxServer(t, ackWith(frame.Ack{Version: frame.MuxVersion, MaxInFlight: 8, MaxFrameSize: 1 << 20}), func(f frame.MuxFrame) []byte {
		if len(f.Body) > 10 {
			return frame.AppendMuxError(nil, frame.KindError, f.ID, frame.CodeTooLarge, "frame of 100 bytes over the limit of 10")
		}
		return frame.AppendMux(nil, frame.KindAnswer, f.ID, f.Body)
	})
	c := newClient(t, []string{addr}, client.Config{Protocol: client.ProtocolMux, MaxRetries: -1})
	_, err := c.Call(ctxFor(t), make([]byte, 100))
	var se *client.ServerError
	if !errors.Is(err, frame.ErrFrameTooLarge) || !errors.As(err, &se) || se.Code != frame.CodeTooLarge {
		t.Fatalf("got %v, want a ServerError matching frame.ErrFrameTooLarge", err)
	}
	if ans, err := c.Call(ctxFor(t), []byte("small")); err != nil || string(ans) != "small" {
		t.Fatalf("after the refusal: %q, %v", ans, err)
	}
}

// TestStreamVersion2Server: against a server that acknowledged version 2,
// Stream fails with ErrNoStreams and sends nothing: the server's next
// frame is the request that follows.
func TestStreamVersion2Server(t *testing.T) {
	kinds := make(chan frame.Kind, 4)
	addr := rawMuxServer(t, ackWith(frame.Ack{Version: 2, MaxInFlight: 8, MaxFrameSize: 1 << 20}), func(f frame.MuxFrame) []byte {
		kinds <- f.Kind
		return frame.AppendMux(nil, frame.KindAnswer, f.ID, f.Body)
	})
	c := newClient(t, []string{addr}, client.Config{Protocol: client.ProtocolMux})
	if _, err := c.Stream(ctxFor(t), []byte("x")); !errors.Is(err, client.ErrNoStreams) {
		t.Fatalf("Stream: %v, want ErrNoStreams", err)
	}
	if ans, err := c.Call(ctxFor(t), []byte("after")); err != nil || string(ans) != "after" {
		t.Fatalf("a call after: %q, %v", ans, err)
	}
	if k := <-kinds; k != frame.KindRequest {
		t.Fatalf("the server's first frame was a %v", k)
	}
}

// TestMuxRefusedRequestLeavesReading: a request refused before it is
// written, on a connection nobody reads, leaves the reading free: the
// next call is answered. It hung when the refused caller kept the
// reading, unless the next call happened to reuse its pooled request
// (which the race detector's sync.Pool often does not).
func TestMuxRefusedRequestLeavesReading(t *testing.T) {
	_, addr := testserver.Start(t, server.HandlerFunc(func(_ context.Context, req []byte, _ *span.Span) ([]byte, error) {
		return req, nil
	}), server.Config{Limits: frame.Limits{MaxFrameSize: 64}})
	c := newClient(t, []string{addr}, client.Config{Protocol: client.ProtocolMux, ConnsPerAddr: 1})
	ctx, cancel := context.WithTimeout(ctxFor(t), 5*time.Second)
	defer cancel()
	for i := range 20 {
		if ans, err := c.Call(ctx, []byte("small")); err != nil || string(ans) != "small" {
			t.Fatalf("call %d, after %d refusals: %q, %v", i, i, ans, err)
		}
		if _, err := c.Call(ctx, make([]byte, 100)); !errors.Is(err, frame.ErrFrameTooLarge) {
			t.Fatalf("got %v", err)
		}
	}
}
