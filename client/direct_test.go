package client_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

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
	// v1: a lone caller reading its own answer there is the subject.
	c := newClient(t, []string{srv.addr}, client.Config{Protocol: client.ProtocolV1})
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
	// v1: a lone caller reading its own answer there is the subject.
	c := newClient(t, []string{srv.addr}, client.Config{Protocol: client.ProtocolV1})
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
	// v1: this server answers one frame per connection, which a mux
	// preface would use up.
	c := newClient(t, []string{addr}, fast(client.Config{Protocol: client.ProtocolV1}))
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

// splitBatchServer answers each batch request in two writes, the header
// and the first half of the frames, then the rest once pause returns, so
// that a caller reading its own batch answer stops between the two.
func splitBatchServer(t *testing.T, pause func()) string {
	return rawServer(t, func(nc net.Conn, stop <-chan struct{}) {
		r := frame.NewReader(nc, frame.Limits{})
		for {
			payloads, _, err := readRequest(r)
			if err != nil {
				return
			}
			half := len(payloads) / 2
			head := frame.AppendHeader(nil, frame.BatchHeader(len(payloads)))
			var tail []byte
			for i, p := range payloads {
				if i < half {
					head = frame.AppendFrame(head, answerOf(p))
				} else {
					tail = frame.AppendFrame(tail, answerOf(p))
				}
			}
			if _, err := nc.Write(head); err != nil {
				return
			}
			select {
			case <-stop:
				return
			default:
				pause()
			}
			if _, err := nc.Write(tail); err != nil {
				return
			}
		}
	})
}

// flushChecked sends a batch of n requests named after round with
// FlushAppend into dst and answers, and checks the answers if it succeeds.
func flushChecked(ctx context.Context, p *client.Pipeline, round, n int, dst []byte, answers [][]byte) ([]byte, [][]byte, error) {
	for i := range n {
		p.Enqueue(fmt.Appendf(nil, "r%d-%d", round, i))
	}
	dst, answers, err := p.FlushAppend(ctx, dst, answers)
	if err != nil {
		return dst, answers, err
	}
	if len(answers) != n {
		return dst, answers, fmt.Errorf("round %d: %d answers, want %d", round, len(answers), n)
	}
	for i, a := range answers {
		if want := answerOf(fmt.Appendf(nil, "r%d-%d", round, i)); !bytes.Equal(a, want) {
			return dst, answers, fmt.Errorf("round %d answer %d: %q, want %q", round, i, a, want)
		}
	}
	return dst, answers, nil
}

// TestLoneBatchReadInParts: a caller alone on its connection reads its
// own batch answer; when the rest of the answer is late (past the
// caller's read grace) the reader goroutine reads it from where the
// caller stopped, and the caller gets every answer, in order.
func TestLoneBatchReadInParts(t *testing.T) {
	addr := splitBatchServer(t, func() { time.Sleep(50 * time.Millisecond) })
	// v1: a lone caller reading its own batch answer there is the subject.
	c := newClient(t, []string{addr}, client.Config{Protocol: client.ProtocolV1})
	ctx := ctxFor(t)
	p := c.Pipeline()
	var dst []byte
	var answers [][]byte
	for round := range 3 {
		var err error
		if dst, answers, err = flushChecked(ctx, p, round, 8, dst[:0], answers[:0]); err != nil {
			t.Fatal(err)
		}
	}
}

// TestLoneBatchCallerCancels: a caller that gives up while reading its
// own batch answer returns with its buffers as they were; the rest of the
// answer is read and dropped, and the next batch gets its own answers.
func TestLoneBatchCallerCancels(t *testing.T) {
	gate := make(chan struct{})
	var batches atomic.Int32
	addr := splitBatchServer(t, func() {
		if batches.Add(1) == 1 {
			<-gate
		}
	})
	// v1: a lone caller reading its own batch answer there is the subject.
	c := newClient(t, []string{addr}, client.Config{Protocol: client.ProtocolV1})
	p := c.Pipeline()
	ctx, cancel := context.WithCancel(ctxFor(t))
	go func() {
		for batches.Load() == 0 {
			runtime.Gosched()
		}
		cancel() // the first half of the answer is out: the caller reads it
	}()
	dst, answers, err := flushChecked(ctx, p, 0, 8, []byte("pre"), nil)
	if !errors.Is(err, context.Canceled) || string(dst) != "pre" || len(answers) != 0 {
		t.Fatalf("cancelled FlushAppend: %q, %d answers, %v", dst, len(answers), err)
	}
	close(gate)
	if _, _, err := flushChecked(ctxFor(t), p, 1, 8, nil, nil); err != nil {
		t.Fatal(err)
	}
}
