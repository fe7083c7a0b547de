package client_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tcpez/tcpez/client"
	"github.com/tcpez/tcpez/server"
	"github.com/tcpez/tcpez/span"
)

// answerOf is how the ordering tests' servers answer: distinct from the
// request, so that an echo of the wrong request is caught too.
func answerOf(req []byte) []byte { return append([]byte("ans:"), req...) }

// TestOrderingUnderConcurrency mixes every kind of call from 1,000
// goroutines over two servers and four connections; each request is
// unique and each answer must be exactly its own.
func TestOrderingUnderConcurrency(t *testing.T) {
	a, b := newServer(t, answerOf), newServer(t, answerOf)
	c := newClient(t, []string{a.addr, b.addr}, client.Config{ConnsPerAddr: 2})
	ctx := ctxFor(t)

	runMixedCalls(t, ctx, c, 1000, 20)
	if got, want := a.requests.Load()+b.requests.Load(), int64(0); got == want {
		t.Fatal("no requests reached the servers")
	}
}

// runMixedCalls runs mixedCalls on c from that many goroutines at once,
// and fails t with what went wrong.
func runMixedCalls(t *testing.T, ctx context.Context, c *client.Client, goroutines, rounds int) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, goroutines)
	for g := range goroutines {
		wg.Go(func() {
			if err := mixedCalls(ctx, c, g, rounds); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// mixedCalls makes rounds calls of kinds chosen at random and checks every
// answer.
func mixedCalls(ctx context.Context, c *client.Client, g, rounds int) error {
	check := func(req, ans []byte, err error) error {
		if err != nil {
			return fmt.Errorf("%s: %w", req, err)
		}
		if want := answerOf(req); !bytes.Equal(ans, want) {
			return fmt.Errorf("%s: got answer %q", req, ans)
		}
		return nil
	}
	buf := make([]byte, 0, 64)
	for r := range rounds {
		req := fmt.Appendf(nil, "g%d-r%d", g, r)
		var err error
		switch rand.IntN(6) {
		case 0:
			ans, e := c.Call(ctx, req)
			err = check(req, ans, e)
		case 1:
			ans, e := c.CallAppend(ctx, buf[:0], req)
			err = check(req, ans, e)
		case 2:
			f := c.Go(ctx, req)
			ans, e := f.Wait()
			err = check(req, ans, e)
		case 3:
			err = c.Notify(ctx, req)
		case 4:
			p := c.Pipeline()
			n := 1 + rand.IntN(8)
			reqs := make([][]byte, n)
			for i := range reqs {
				reqs[i] = fmt.Appendf(nil, "%s-p%d", req, i)
				p.Enqueue(reqs[i])
			}
			answers, e := p.Flush(ctx)
			if e != nil {
				return fmt.Errorf("%s: pipeline: %w", req, e)
			}
			if len(answers) != n {
				return fmt.Errorf("%s: %d answers to a batch of %d", req, len(answers), n)
			}
			for i := range answers {
				if err = check(reqs[i], answers[i], nil); err != nil {
					break
				}
			}
		case 5:
			err = flushAppendChecked(ctx, c, req, 1+rand.IntN(8), check)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// flushAppendChecked sends a Pipeline of n requests named after req with
// FlushAppend, after a prefix it must keep, and checks every answer.
func flushAppendChecked(ctx context.Context, c *client.Client, req []byte, n int, check func(req, ans []byte, err error) error) error {
	p := c.Pipeline()
	reqs := make([][]byte, n)
	for i := range reqs {
		reqs[i] = fmt.Appendf(nil, "%s-a%d", req, i)
		p.Enqueue(reqs[i])
	}
	dst, answers, err := p.FlushAppend(ctx, []byte("pre"), nil)
	if err != nil {
		return fmt.Errorf("%s: FlushAppend: %w", req, err)
	}
	if len(answers) != n || !bytes.HasPrefix(dst, []byte("pre")) {
		return fmt.Errorf("%s: %d answers to a batch of %d, dst %q", req, len(answers), n, dst[:min(len(dst), 8)])
	}
	for i := range answers {
		if err := check(reqs[i], answers[i], nil); err != nil {
			return err
		}
	}
	return nil
}

// TestMuxOrderingUnderConcurrency is TestOrderingUnderConcurrency in the
// multiplexed mode against the tcpez server, whose handlers here now and
// then take a millisecond, so that answers come out of order. (The
// hand-off of a caller's own read mid-batch, rare here, has tests of its
// own: TestMuxPipelineAnotherCallsAnswerMidBatch, FuzzMuxPipelineAnswers.)
func TestMuxOrderingUnderConcurrency(t *testing.T) {
	var n atomic.Int64
	_, addr, _ := startMux(t, server.HandlerFunc(func(_ context.Context, req []byte, _ *span.Span) ([]byte, error) {
		if n.Add(1)%16 == 0 {
			time.Sleep(time.Millisecond)
		}
		return answerOf(req), nil
	}), server.Config{})
	c := muxClient(t, addr, client.Config{ConnsPerAddr: 2})
	runMixedCalls(t, ctxFor(t), c, 200, 20)
	if n.Load() == 0 {
		t.Fatal("no requests reached the server")
	}
}
