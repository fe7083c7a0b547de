package client_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/tcpez/tcpez/client"
	"github.com/tcpez/tcpez/frame"
)

// fuzzClientLimits are small, so that the fuzzer reaches them easily.
var fuzzClientLimits = frame.Limits{MaxFrameSize: 64, MaxBatchCount: 4}

// What a call of FuzzClientAnswers must end with.
const (
	expectAnswer   = iota // its own answer, as the bytes say
	expectLost            // ErrConnLost, and frame.ErrProtocol when protocol
	expectDeadline        // the bytes stop inside its answer and the server holds on
)

type expectation struct {
	kind     int
	protocol bool     // expectLost: a protocol violation (else a clean EOF)
	answers  [][]byte // expectAnswer: one payload, or a batch's
}

// modelAnswers reads data as the answers to calls of the given shapes (0:
// a single frame; n > 0: a batch of n) with fuzzClientLimits, as
// docs/PROTOCOL.md has it, and says how each call must end. hold: the
// server keeps the connection open after data, instead of closing it.
func modelAnswers(data []byte, shapes []int, hold bool) []expectation {
	out := make([]expectation, len(shapes))
	pos := 0
	var stuck *expectation // once a call fails or hangs, the rest follow
	// need reports whether n more bytes are there; if not, the connection
	// either hangs or ends inside a frame (or, at a boundary, cleanly).
	need := func(n int, boundary bool) bool {
		if len(data)-pos >= n {
			return true
		}
		switch {
		case hold:
			stuck = &expectation{kind: expectDeadline}
		case boundary && pos == len(data):
			stuck = &expectation{kind: expectLost}
		default:
			stuck = &expectation{kind: expectLost, protocol: true}
		}
		return false
	}
	header := func() frame.Header {
		h := frame.Header(binary.BigEndian.Uint32(data[pos:]))
		pos += frame.HeaderSize
		return h
	}
	violation := func() { stuck = &expectation{kind: expectLost, protocol: true} }
	// frame reads one frame where only a frame may start.
	readFrame := func(boundary bool) []byte {
		if !need(frame.HeaderSize, boundary) {
			return nil
		}
		h := header()
		if fuzzClientLimits.CheckLength(h) != nil {
			violation()
			return nil
		}
		if !need(h.Len(), false) {
			return nil
		}
		p := data[pos : pos+h.Len()]
		pos += h.Len()
		return p
	}
	for i, shape := range shapes {
		if stuck != nil {
			out[i] = *stuck
			continue
		}
		if !need(frame.HeaderSize, true) {
			out[i] = *stuck
			continue
		}
		h := header()
		switch {
		case fuzzClientLimits.CheckHeader(h) != nil,
			shape == 0 && h.IsBatch(),
			shape > 0 && (!h.IsBatch() || h.Count() != shape):
			violation()
		case shape == 0:
			if need(h.Len(), false) {
				out[i] = expectation{kind: expectAnswer, answers: [][]byte{data[pos : pos+h.Len()]}}
				pos += h.Len()
			}
		default:
			answers := make([][]byte, 0, shape)
			for range shape {
				p := readFrame(false)
				if stuck != nil {
					break
				}
				answers = append(answers, p)
			}
			if stuck == nil {
				out[i] = expectation{kind: expectAnswer, answers: answers}
			}
		}
		if stuck != nil {
			out[i] = *stuck
		}
	}
	return out
}

// FuzzClientAnswers drives the client's answer reading with arbitrary
// bytes. A server reads four requests (three single frames sent with Go,
// then a Pipeline or a CallAppend, as shape says), writes data in two
// pieces, and closes the connection or holds it open. Every call must end
// as the protocol says: its own answer, a typed error (ErrConnLost, with
// frame.ErrProtocol for a violation), or its deadline when the bytes stop
// inside its answer; never a hang, never a panic.
func FuzzClientAnswers(f *testing.F) {
	fr := func(p string) []byte { return frame.AppendFrame(nil, []byte(p)) }
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	ok := cat(fr("a0"), fr("a1"), fr(""), frame.AppendBatch(nil, []byte("b0"), []byte("b1")))
	f.Add(ok, false, uint8(2), uint16(5))
	f.Add(ok, true, uint8(2), uint16(0))
	f.Add(cat(ok, fr("unsolicited")), false, uint8(2), uint16(3))
	f.Add(cat(fr("a0"), fr("a1"), fr("a2"), fr("single")), true, uint8(1), uint16(1))
	f.Add(cat(fr("a0"), frame.AppendBatch(nil, []byte("x"))), false, uint8(0), uint16(0))
	f.Add(cat(fr("a0"), []byte{0x80, 0, 0, 0}), true, uint8(0), uint16(4))
	f.Add(cat(fr("a0"), fr("a1"), fr("a2"), frame.AppendBatch(nil, []byte("b0"))), false, uint8(2), uint16(9))
	f.Add(cat(fr("a0"), fr("a1"), fr("a2"), frame.AppendHeader(nil, -2), fr("b0"), []byte{0xff, 0xff, 0xff, 0xfe}), false, uint8(2), uint16(2))
	f.Add(cat(fr("a0"), frame.AppendHeader(nil, 65)), true, uint8(0), uint16(6))
	f.Add(cat(fr("a0"), []byte{0, 0, 0, 9, 'x'}), false, uint8(0), uint16(6))
	f.Add(cat(fr("a0"), []byte{0, 0}), true, uint8(0), uint16(0))
	f.Add([]byte("HTTP/1.1 400 Bad Request\r\n\r\n"), false, uint8(0), uint16(7))
	f.Add([]byte{}, false, uint8(0), uint16(0))
	f.Fuzz(func(t *testing.T, data []byte, hold bool, shape uint8, split uint16) {
		last := 0 // CallAppend
		if shape&1 == 0 {
			last = 1 + int(shape>>1)%3 // a Pipeline of 1 to 3
		}
		shapes := []int{0, 0, 0, last}
		want := modelAnswers(data, shapes, hold)

		addr := rawServer(t, func(nc net.Conn, stop <-chan struct{}) {
			r := frame.NewReader(nc, frame.Limits{})
			for range shapes {
				if _, _, err := readRequest(r); err != nil {
					return
				}
			}
			cut := int(split) % (len(data) + 1)
			if _, err := nc.Write(data[:cut]); err != nil {
				return
			}
			time.Sleep(time.Duration(split%3) * time.Millisecond)
			if _, err := nc.Write(data[cut:]); err != nil {
				return
			}
			if hold {
				<-stop
			}
		})
		c := newClient(t, []string{addr}, client.Config{Protocol: client.ProtocolV1, Limits: fuzzClientLimits, MaxRetries: -1, OverdueAfter: -1})
		ctxFor := func(i int) (context.Context, context.CancelFunc) {
			d := 10 * time.Second // never reached by a call that is to end otherwise
			if want[i].kind == expectDeadline {
				d = 10 * time.Millisecond
			}
			return context.WithTimeout(context.Background(), d)
		}

		type result struct {
			answers [][]byte
			err     error
		}
		results := make([]result, len(shapes))
		done := make(chan struct{})
		go func() {
			defer close(done)
			var futures []*client.Future
			for i := range 3 {
				ctx, cancel := ctxFor(i)
				defer cancel()
				futures = append(futures, c.Go(ctx, fmt.Appendf(nil, "q%d", i)))
			}
			ctx, cancel := ctxFor(3)
			defer cancel()
			if last == 0 {
				prefix := []byte("prefix:")
				ans, err := c.CallAppend(ctx, prefix, []byte("q3"))
				switch {
				case err != nil && !bytes.Equal(ans, prefix):
					err = fmt.Errorf("CallAppend returned %q with the error %w, want the caller's buffer", ans, err)
				case err != nil:
					ans = nil
				case !bytes.HasPrefix(ans, prefix):
					err = fmt.Errorf("answer %q lost the caller's prefix", ans)
				default:
					ans = ans[len(prefix):]
				}
				results[3] = result{[][]byte{ans}, err}
			} else {
				p := c.Pipeline()
				for k := range last {
					p.Enqueue(fmt.Appendf(nil, "q3.%d", k))
				}
				answers, err := p.Flush(ctx)
				results[3] = result{answers, err}
			}
			for i, fut := range futures {
				ans, err := fut.Wait()
				results[i] = result{[][]byte{ans}, err}
			}
		}()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Fatalf("calls still running after 30s on % x (hold %v)", data, hold)
		}

		for i, w := range want {
			got := results[i]
			switch w.kind {
			case expectAnswer:
				if got.err != nil || len(got.answers) != len(w.answers) {
					t.Fatalf("call %d: %q, %v; want the answers %q", i, got.answers, got.err, w.answers)
				}
				for k := range w.answers {
					if !bytes.Equal(got.answers[k], w.answers[k]) {
						t.Fatalf("call %d: answers %q, want %q", i, got.answers, w.answers)
					}
				}
			case expectDeadline:
				if !errors.Is(got.err, context.DeadlineExceeded) || !noAnswer(got.answers) {
					t.Fatalf("call %d: %q, %v; want DeadlineExceeded", i, got.answers, got.err)
				}
			case expectLost:
				if !errors.Is(got.err, client.ErrConnLost) || !noAnswer(got.answers) {
					t.Fatalf("call %d: %q, %v; want ErrConnLost", i, got.answers, got.err)
				}
				if w.protocol && !errors.Is(got.err, frame.ErrProtocol) {
					t.Fatalf("call %d: %v; want it to match frame.ErrProtocol", i, got.err)
				}
				if !w.protocol && !errors.Is(got.err, io.EOF) {
					t.Fatalf("call %d: %v; want a clean end of stream (io.EOF)", i, got.err)
				}
			}
		}
	})
}

func noAnswer(answers [][]byte) bool {
	for _, a := range answers {
		if a != nil {
			return false
		}
	}
	return true
}
