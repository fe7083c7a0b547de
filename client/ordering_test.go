package client_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/tcpez/tcpez/client"
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

	const goroutines, rounds = 1000, 20
	var wg sync.WaitGroup
	errs := make(chan error, goroutines)
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := mixedCalls(ctx, c, g, rounds); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got, want := a.requests.Load()+b.requests.Load(), int64(0); got == want {
		t.Fatal("no requests reached the servers")
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
		switch rand.IntN(5) {
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
		}
		if err != nil {
			return err
		}
	}
	return nil
}
