package client_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"

	"github.com/tcpez/tcpez/client"
	"github.com/tcpez/tcpez/frame"
)

// answersTogether runs a mux server that reads n requests, then writes
// what answer makes of them (given in the order they came) with one
// write. The client reads every answer of that write from one read,
// taking their calls out of its table together.
func answersTogether(t *testing.T, n int, answer func(reqs []frame.MuxFrame) []byte) string {
	t.Helper()
	return rawServer(t, func(nc net.Conn, _ <-chan struct{}) {
		r, ok := greetMux(nc, frame.AppendAck(nil, frame.Ack{Version: frame.MuxVersion, MaxInFlight: 64, MaxFrameSize: 1 << 20}))
		if !ok {
			return
		}
		var reqs []frame.MuxFrame
		for len(reqs) < n {
			f, ok := readMux(r)
			if !ok {
				return
			}
			reqs = append(reqs, f)
		}
		if _, err := nc.Write(answer(reqs)); err != nil {
			return
		}
		for {
			if _, ok := readMux(r); !ok {
				return
			}
		}
	})
}

// callAll makes n calls at once, the i-th with payload "call i", and
// returns their answers and errors by i.
func callAll(ctx context.Context, c *client.Client, n int) ([]string, []error) {
	answers, errs := make([]string, n), make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			ans, err := c.Call(ctx, fmt.Appendf(nil, "call %d", i))
			answers[i], errs[i] = string(ans), err
		})
	}
	wg.Wait()
	return answers, errs
}

// TestAnswersOfOneReadInReverse: answers that arrive together, last call
// first, each reach their own caller; more of them than the reader takes
// ahead at once (64), so that it takes ahead again.
func TestAnswersOfOneReadInReverse(t *testing.T) {
	const n = 100
	addr := answersTogether(t, n, func(reqs []frame.MuxFrame) []byte {
		var out []byte
		for i := len(reqs) - 1; i >= 0; i-- {
			out = frame.AppendMux(out, frame.KindAnswer, reqs[i].ID, append([]byte("re: "), reqs[i].Body...))
		}
		return out
	})
	c := newClient(t, []string{addr}, client.Config{Protocol: client.ProtocolMux, MaxRetries: -1})
	answers, errs := callAll(ctxFor(t), c, n)
	for i := range n {
		if want := fmt.Sprintf("re: call %d", i); errs[i] != nil || answers[i] != want {
			t.Errorf("call %d: %q, %v; want %q", i, answers[i], errs[i], want)
		}
	}
}

// TestAnswerOverLimitAmidAnswersOfOneRead: when an answer read with
// others breaks the client's limit, the calls whose answers come after it
// fail with the connection, as it does: none is left waiting, though the
// reader had taken them out of the connection's table with the answers
// before it.
func TestAnswerOverLimitAmidAnswersOfOneRead(t *testing.T) {
	const n = 3
	order := make(chan []string, 1)
	addr := answersTogether(t, n, func(reqs []frame.MuxFrame) []byte {
		// The first request's caller reads first, and passes the reading
		// on at an answer that is not its own: the reader goroutine then
		// reads the second request's answer, and takes the others ahead.
		order <- []string{string(reqs[1].Body), string(reqs[2].Body), string(reqs[0].Body)}
		out := frame.AppendMux(nil, frame.KindAnswer, reqs[1].ID, reqs[1].Body)
		out = frame.AppendMux(out, frame.KindAnswer, reqs[2].ID, make([]byte, 25))
		return frame.AppendMux(out, frame.KindAnswer, reqs[0].ID, reqs[0].Body)
	})
	c := newClient(t, []string{addr}, client.Config{Protocol: client.ProtocolMux, MaxRetries: -1, Limits: frame.Limits{MaxFrameSize: 24}})
	answers, errs := callAll(ctxFor(t), c, n)
	got := map[string]error{}
	for i := range n {
		got[fmt.Sprintf("call %d", i)] = errs[i]
		if errs[i] == nil && answers[i] != fmt.Sprintf("call %d", i) {
			t.Errorf("call %d answered %q", i, answers[i])
		}
	}
	var o []string
	select {
	case o = <-order:
	default:
		t.Fatalf("the server did not get the %d calls: %v", n, errs)
	}
	if err := got[o[0]]; err != nil {
		t.Errorf("%s, answered first: %v", o[0], err)
	}
	for _, call := range o[1:] {
		var ce *client.ConnError
		if err := got[call]; !errors.As(err, &ce) || !errors.Is(err, frame.ErrFrameTooLarge) {
			t.Errorf("%s, answered at or after the answer over the limit: %v; want the connection's ConnError", call, err)
		}
	}
}
