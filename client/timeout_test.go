package client_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/tcpez/tcpez/client"
	"github.com/tcpez/tcpez/frame"
)

// TestTimeoutsKeepConnectionInSync gives up on calls in the middle of a
// deep pipeline on one connection: the server holds every "slow" request
// until the callers that sent them have returned, so those callers surely
// time out while the calls queued around them wait. Once the server
// answers, the late answers must be dropped and every other call must get
// its own answer, then and after.
func TestTimeoutsKeepConnectionInSync(t *testing.T) {
	gate := make(chan struct{})
	srv := newServer(t, func(req []byte) []byte {
		if bytes.HasPrefix(req, []byte("slow")) {
			<-gate
		}
		return answerOf(req)
	})
	c := newClient(t, []string{srv.addr}, client.Config{})
	long := ctxFor(t)

	const n = 40
	var (
		slow, fast sync.WaitGroup
		errs       = make(chan error, 2*n)
		bufs       = make([][]byte, n)
	)
	for i := range n {
		slow.Add(1)
		go func() {
			defer slow.Done()
			ctx, cancel := context.WithTimeout(long, time.Duration(1+i%5)*time.Millisecond)
			defer cancel()
			req := fmt.Appendf(nil, "slow-%d", i)
			var err error
			switch i % 4 {
			case 0:
				_, err = c.Call(ctx, req)
			case 1:
				bufs[i] = make([]byte, 0, 64)
				_, err = c.CallAppend(ctx, bufs[i], req)
			case 2:
				_, err = c.Go(ctx, req).Wait()
			case 3:
				p := c.Pipeline()
				p.Enqueue(req)
				p.Enqueue(req)
				_, err = p.Flush(ctx)
			}
			if !errors.Is(err, context.DeadlineExceeded) {
				errs <- fmt.Errorf("%s: got %v, want DeadlineExceeded", req, err)
			}
		}()
		fast.Add(1)
		go func() {
			defer fast.Done()
			req := fmt.Appendf(nil, "fast-%d", i)
			ans, err := c.Call(long, req)
			if err != nil || !bytes.Equal(ans, answerOf(req)) {
				errs <- fmt.Errorf("%s: got %q, %v", req, ans, err)
			}
		}()
	}
	slow.Wait()
	// The abandoned CallAppend buffers must never be written again.
	for _, b := range bufs {
		if b != nil {
			b = b[:cap(b)]
			for j := range b {
				b[j] = '#'
			}
		}
	}
	close(gate)
	fast.Wait()

	for i := range 200 {
		req := fmt.Appendf(nil, "after-%d", i)
		if ans, err := c.Call(long, req); err != nil || !bytes.Equal(ans, answerOf(req)) {
			t.Fatalf("%s: got %q, %v", req, ans, err)
		}
	}
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for i, b := range bufs {
		if b != nil && !bytes.Equal(b[:cap(b)], bytes.Repeat([]byte("#"), cap(b))) {
			t.Errorf("buffer of abandoned call %d written after it returned: %q", i, b[:cap(b)])
		}
	}
}

// TestWriteBlockedOnStalledServer sends to a server that never reads, so
// the sockets fill and the write blocks: the writing caller must still
// return when its context ends, whether by deadline or by cancel, and
// Close must still end the background writer that took over.
func TestWriteBlockedOnStalledServer(t *testing.T) {
	addr := rawServer(t, func(nc net.Conn, stop <-chan struct{}) { <-stop })
	big := make([]byte, 32<<20) // more than both sockets' buffers hold
	cfg := client.Config{Limits: frame.Limits{MaxFrameSize: 64 << 20}}

	// Each case has its own client, so that its caller is the one writing.
	t.Run("deadline", func(t *testing.T) {
		c := newClient(t, []string{addr}, cfg)
		ctx, cancel := context.WithTimeout(ctxFor(t), 20*time.Millisecond)
		defer cancel()
		if _, err := c.Call(ctx, big); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("got %v, want DeadlineExceeded", err)
		}
		c.Close()
	})
	t.Run("cancel", func(t *testing.T) {
		c := newClient(t, []string{addr}, cfg)
		ctx, cancel := context.WithCancel(ctxFor(t))
		time.AfterFunc(20*time.Millisecond, cancel)
		if _, err := c.Call(ctx, big); !errors.Is(err, context.Canceled) {
			t.Fatalf("got %v, want Canceled", err)
		}
		c.Close()
	})
}
