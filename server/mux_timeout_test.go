package server_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tcpez/tcpez/frame"
	"github.com/tcpez/tcpez/server"
	"github.com/tcpez/tcpez/span"
	"github.com/tcpez/tcpez/stats"
)

// TestMuxHandlerTimeout checks that Config.HandlerTimeout bounds handlers
// in the multiplexed mode as in v1: a server with HandlerTimeout and a
// handler that waits for its context never answered the call of a mux
// client (every client by default), and the handler's context never
// ended. The call is now answered once the timeout passes, with a handler
// error naming the timeout; the handler's context ends with
// context.DeadlineExceeded; what it returns later is dropped; and the id
// may be used again at once. A handler that ignores its context and a
// handler run on a worker are both covered.
func TestMuxHandlerTimeout(t *testing.T) {
	ended := make(chan error, 4)
	release := make(chan struct{})
	h := func(ctx context.Context, req []byte, _ *span.Span) ([]byte, error) {
		switch string(req) {
		case "WAIT":
			<-ctx.Done()
			ended <- ctx.Err()
			return []byte("late"), nil
		case "DEAF":
			<-release // ignores its context
			return []byte("late"), nil
		}
		return req, nil
	}
	rec := stats.NewMemory()
	_, addr := startServer(t, h, server.Config{HandlerTimeout: time.Millisecond, Stats: rec})
	c, r, _ := dialMux(t, addr)
	defer close(release)
	for _, req := range []string{"WAIT", "DEAF"} {
		write(t, c, frame.AppendMux(nil, frame.KindRequest, 7, []byte(req)))
		f := readMux(t, r)
		code, msg := f.ErrorCode()
		if f.Kind != frame.KindError || f.ID != 7 || code != frame.CodeHandler || !strings.Contains(msg, "handler timeout") {
			t.Fatalf("%s: answer %v id %d code %v %q, want a handler error naming the timeout for id 7", req, f.Kind, f.ID, code, msg)
		}
		// The id is free again: its next use is answered, not a protocol error.
		write(t, c, frame.AppendMux(nil, frame.KindRequest, 7, []byte("again")))
		if f := readMux(t, r); f.Kind != frame.KindAnswer || f.ID != 7 || string(f.Body) != "again" {
			t.Fatalf("%s: after the timeout: %v id %d %q", req, f.Kind, f.ID, f.Body)
		}
	}
	if err := <-ended; !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("the handler's context ended with %v, want context.DeadlineExceeded", err)
	}
	waitFor(t, func() bool { return rec.Counter(server.StatErrHandlerTimeout) == 2 }, "errors.handler_timeout counted twice")
}
