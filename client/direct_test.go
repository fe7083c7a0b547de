package client_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"sync/atomic"
	"testing"

	"github.com/tcpez/tcpez/client"
	"github.com/tcpez/tcpez/frame"
)

// TestLoneCallerCancels: a caller alone on its connection reads its own
// answer; when it cancels (a context without deadline) it must still
// return, and the reading must pass on so that the late answer is dropped
// and every later call, alone or not, gets its own.
func TestLoneCallerCancels(t *testing.T) {
	gate := make(chan struct{})
	srv := newServer(t, func(req []byte) []byte {
		if bytes.Equal(req, []byte("held")) {
			<-gate
		}
		return answerOf(req)
	})
	c := newClient(t, []string{srv.addr}, client.Config{})
	long := ctxFor(t)
	if _, err := c.Call(long, []byte("warm")); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(long)
	done := make(chan error, 1)
	go func() {
		_, err := c.Call(ctx, []byte("held"))
		done <- err
	}()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled call: %v, want context.Canceled", err)
	}
	close(gate)
	for i := range 50 {
		req := fmt.Appendf(nil, "after-%d", i)
		if i%10 == 9 {
			// A future between lone calls hands the reading over and back.
			if ans, err := c.Go(long, req).Wait(); err != nil || !bytes.Equal(ans, answerOf(req)) {
				t.Fatalf("%s: got %q, %v", req, ans, err)
			}
			continue
		}
		if ans, err := c.Call(long, req); err != nil || !bytes.Equal(ans, answerOf(req)) {
			t.Fatalf("%s: got %q, %v", req, ans, err)
		}
	}
}

// TestLoneCallerLargeAnswers alternates answers that fit the read buffer,
// which a lone caller reads itself, with ones that do not, which the reader
// goroutine reads.
func TestLoneCallerLargeAnswers(t *testing.T) {
	srv := newServer(t, nil)
	c := newClient(t, []string{srv.addr}, client.Config{})
	ctx := ctxFor(t)
	for i := range 20 {
		size := 16
		if i%2 == 1 {
			size = 100 << 10
		}
		req := bytes.Repeat([]byte{byte('a' + i)}, size)
		if ans, err := c.Call(ctx, req); err != nil || !bytes.Equal(ans, req) {
			t.Fatalf("call %d (%d bytes): %d bytes, %v", i, size, len(ans), err)
		}
	}
}

// TestCallAfterIdleClose: a server closes a connection just after
// answering on it. Nobody reads an idle connection at once, so the next
// call must find the close before it writes: its request then provably
// did not leave, and it succeeds on a new connection though it is not
// idempotent.
func TestCallAfterIdleClose(t *testing.T) {
	var accepted atomic.Int32
	closed := make(chan struct{}, 2)
	addr := rawServer(t, func(nc net.Conn, stop <-chan struct{}) {
		n := accepted.Add(1)
		r := frame.NewReader(nc, frame.Limits{})
		p, err := r.ReadFrame(nil)
		if err != nil {
			return
		}
		_, _ = nc.Write(frame.AppendFrame(nil, answerOf(p)))
		if n == 1 {
			nc.Close() // on loopback the close has reached the peer on return
			closed <- struct{}{}
			return
		}
		<-stop
	})
	c := newClient(t, []string{addr}, fast(client.Config{}))
	ctx := ctxFor(t)
	for i, req := range []string{"first", "second"} {
		ans, err := c.Call(ctx, []byte(req))
		if err != nil || string(ans) != string(answerOf([]byte(req))) {
			t.Fatalf("call %d: %q, %v", i, ans, err)
		}
		if i == 0 {
			<-closed
		}
	}
	if n := accepted.Load(); n != 2 {
		t.Fatalf("%d connections, want 2", n)
	}
}
