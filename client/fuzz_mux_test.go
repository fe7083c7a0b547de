package client_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/tcpez/tcpez/client"
	"github.com/tcpez/tcpez/frame"
)

// muxScript turns fuzz bytes into what a mux server writes to a batch of
// members whose request ids are ids: answers and error frames for any
// member in any order, more than once, answers for ids not in flight,
// notifications, and raw bytes. It returns the bytes and, for each member,
// the body of the first answer it was sent if that came before any error
// frame for it (nil otherwise).
func muxScript(script []byte, ids []uint32) (out []byte, first [][]byte) {
	first = make([][]byte, len(ids))
	settled := make([]bool, len(ids))
	for i := 0; i < len(script); {
		op := script[i]
		i++
		m := int(op>>3&3) % len(ids)
		body := script[i:min(i+int(op>>5), len(script))]
		switch op % 8 {
		case 0, 1, 2, 3:
			out = frame.AppendMux(out, frame.KindAnswer, ids[m], body)
			if !settled[m] {
				settled[m], first[m] = true, bytes.Clone(body)
			}
			i += len(body)
		case 4:
			out = frame.AppendMuxError(out, frame.KindError, ids[m], frame.CodeHandler, "no")
			settled[m] = true
		case 5:
			out = frame.AppendMux(out, frame.KindAnswer, ids[m]^1<<20, body) // another generation
			i += len(body)
		case 6:
			out = frame.AppendMux(out, frame.KindNotify, 0, body)
			i += len(body)
		case 7:
			out = append(out, body...)
			i += len(body)
		}
	}
	return out, first
}

// FuzzMuxPipelineAnswers drives the reading of a multiplexed Pipeline's
// answers (the caller's own and the reader goroutine's, the arena, the
// hand-off between them) with what muxScript makes of the fuzzer's bytes,
// written in two pieces. FlushAppend must end (a short deadline bounds a
// script that stops short), never panic, and when it succeeds return every
// member's first answer, in request order, after the caller's prefix.
func FuzzMuxPipelineAnswers(f *testing.F) {
	// An op is a byte: bits 0-2 what (muxScript), 3-4 the member, 5-7
	// the body's length; the body's bytes follow it.
	f.Add([]byte{32, 'a', 40, 'b', 48, 'c'}, uint8(2), uint16(0))        // in order
	f.Add([]byte{48, 'c', 40, 'b', 32, 'a'}, uint8(2), uint16(5))        // reversed, split
	f.Add([]byte{32, 'a', 6, 40, 'b'}, uint8(1), uint16(0))              // a notification mid-batch
	f.Add([]byte{32, 'a', 12, 40, 'b'}, uint8(1), uint16(9))             // an error frame
	f.Add([]byte{32, 'a', 37, 'x', 40, 'b'}, uint8(1), uint16(3))        // an id not in flight
	f.Add([]byte{0x40, 'x', 'y', 0x47, 0xff, 0xff}, uint8(3), uint16(2)) // raw bytes
	f.Add([]byte{40, 'b', 40, 'b', 32, 'a'}, uint8(1), uint16(1))        // a member answered twice
	f.Add([]byte{32, 'a'}, uint8(1), uint16(0))                          // one answer missing
	f.Fuzz(func(t *testing.T, script []byte, n uint8, split uint16) {
		k := 1 + int(n)%4
		firsts := make(chan [][]byte, 1)
		addr := rawServer(t, func(nc net.Conn, stop <-chan struct{}) {
			r, ok := greetMux(nc, frame.AppendAck(nil, batchAck))
			if !ok {
				return
			}
			ids := make([]uint32, k)
			for i := range ids {
				f, ok := readMux(r)
				if !ok {
					return
				}
				ids[i] = f.ID
			}
			out, first := muxScript(script, ids)
			firsts <- first
			cut := int(split) % (len(out) + 1)
			if _, err := nc.Write(out[:cut]); err != nil {
				return
			}
			time.Sleep(time.Duration(split%3) * time.Millisecond)
			if _, err := nc.Write(out[cut:]); err != nil {
				return
			}
			<-stop
		})
		c := newClient(t, []string{addr}, client.Config{Protocol: client.ProtocolMux, MaxRetries: -1, OverdueAfter: -1})
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		p := c.Pipeline()
		for i := range k {
			p.Enqueue(fmt.Appendf(nil, "q%d", i))
		}
		type result struct {
			dst     []byte
			answers [][]byte
			err     error
		}
		got := make(chan result, 1)
		go func() {
			dst, answers, err := p.FlushAppend(ctx, []byte("pre"), nil)
			got <- result{dst, answers, err}
		}()
		var res result
		select {
		case res = <-got:
		case <-time.After(30 * time.Second):
			t.Fatalf("FlushAppend still running after 30s on % x (%d members)", script, k)
		}
		if res.err != nil {
			if string(res.dst) != "pre" || len(res.answers) != 0 {
				t.Fatalf("failed FlushAppend (%v) returned %q, %q; want the buffers as given", res.err, res.dst, res.answers)
			}
			return
		}
		first := <-firsts
		if !bytes.HasPrefix(res.dst, []byte("pre")) || len(res.answers) != k {
			t.Fatalf("FlushAppend: %q, %d answers; want the prefix and %d", res.dst, len(res.answers), k)
		}
		for i, a := range res.answers {
			if first[i] == nil || !bytes.Equal(a, first[i]) {
				t.Fatalf("answer %d: %q, want the first answer sent for it, %q (script % x)", i, a, first[i], script)
			}
		}
	})
}
