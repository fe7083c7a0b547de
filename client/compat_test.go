package client_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"

	"github.com/tcpez/tcpez/client"
	"github.com/tcpez/tcpez/frame"
	"github.com/tcpez/tcpez/internal/spec"
)

// TestLegacyServer drives the client against a server that answers as the
// original tcpez server did: one goroutine per connection, one request or
// batch read and answered at a time, each answer in its own write.
func TestLegacyServer(t *testing.T) {
	srv := newServer(t, answerOf)
	srv.Kill()
	srv.legacy = true
	srv.Restart() // so that every connection is served the legacy way
	c := newClient(t, []string{srv.addr}, client.Config{ConnsPerAddr: 2})
	ctx := ctxFor(t)
	var wg sync.WaitGroup
	for g := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := mixedCalls(ctx, c, g, 10); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if ans, err := c.Call(ctx, nil); err != nil || string(ans) != "ans:" {
		t.Fatalf("empty request: %q, %v", ans, err)
	}
}

// item is one top-level request or answer of a protocol example.
type item struct {
	batch  bool
	frames [][]byte
}

func (it item) String() string { return fmt.Sprintf("{batch:%v %q}", it.batch, it.frames) }

// parseItems splits a stream of requests or answers into items.
func parseItems(t *testing.T, b []byte) []item {
	t.Helper()
	var out []item
	for len(b) > 0 {
		rest, h, ok, err := frame.ParseHeader(b, frame.Limits{})
		if !ok || err != nil {
			t.Fatalf("example bytes % x: %v", b, err)
		}
		it := item{batch: h.IsBatch()}
		if !it.batch {
			rest = b // ParseFrame reads the header again
		}
		for range max(h.Count(), 1) {
			var p []byte
			if rest, p, ok, err = frame.ParseFrame(rest, frame.Limits{}); !ok || err != nil {
				t.Fatalf("example bytes % x: %v", b, err)
			}
			it.frames = append(it.frames, p)
		}
		out = append(out, it)
		b = rest
	}
	return out
}

// recorder is an echo server that keeps every byte it reads and writes.
type recorder struct {
	mu      sync.Mutex
	in, out bytes.Buffer
}

func (rec *recorder) serve(nc net.Conn, _ <-chan struct{}) {
	r := frame.NewReader(readFunc(func(p []byte) (int, error) {
		n, err := nc.Read(p)
		rec.mu.Lock()
		rec.in.Write(p[:n])
		rec.mu.Unlock()
		return n, err
	}), frame.Limits{})
	for {
		reqs, batch, err := readRequest(r)
		if err != nil {
			return
		}
		var out []byte
		if batch {
			out = frame.AppendBatch(out, reqs...)
		} else {
			out = frame.AppendFrame(out, reqs[0])
		}
		rec.mu.Lock()
		rec.out.Write(out)
		rec.mu.Unlock()
		if _, err := nc.Write(out); err != nil {
			return
		}
	}
}

type readFunc func([]byte) (int, error)

func (f readFunc) Read(p []byte) (int, error) { return f(p) }

// TestSpecExamples sends the requests of every example of docs/PROTOCOL.md
// through the client to an echo server, and checks the bytes on the wire
// both ways and the answers the client returns.
func TestSpecExamples(t *testing.T) {
	examples, err := spec.Load(spec.Path())
	if err != nil {
		t.Fatal(err)
	}
	ran := 0
	for _, ex := range examples {
		if ex.Request == nil {
			continue
		}
		ran++
		t.Run(ex.Name, func(t *testing.T) {
			rec := &recorder{}
			// The spec's examples are v1's bytes.
			c := newClient(t, []string{rawServer(t, rec.serve)}, client.Config{Protocol: client.ProtocolV1})
			got := sendItems(t, c, parseItems(t, ex.Request))
			if want := parseItems(t, ex.Answer); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("answers %v, want %v", got, want)
			}
			c.Close()
			rec.mu.Lock()
			defer rec.mu.Unlock()
			if !bytes.Equal(rec.in.Bytes(), ex.Request) {
				t.Errorf("client sent % x, want % x", rec.in.Bytes(), ex.Request)
			}
			if !bytes.Equal(rec.out.Bytes(), ex.Answer) {
				t.Errorf("server sent % x, want % x", rec.out.Bytes(), ex.Answer)
			}
		})
	}
	if ran == 0 {
		t.Fatal("no request examples in", spec.Path())
	}
}

// sendItems sends single frames with Go, so that frames sent back to back
// stay back to back, and batches with a Pipeline; each item is queued
// before the next, so the wire order is the example's.
func sendItems(t *testing.T, c *client.Client, items []item) []item {
	ctx := ctxFor(t)
	results := make([]func() item, len(items))
	for i, it := range items {
		if !it.batch {
			f := c.Go(ctx, it.frames[0])
			results[i] = func() item {
				ans, err := f.Wait()
				if err != nil {
					t.Fatal(err)
				}
				return item{frames: [][]byte{ans}}
			}
			continue
		}
		p := c.Pipeline()
		for _, fr := range it.frames {
			p.Enqueue(fr)
		}
		answers, err := p.Flush(ctx)
		if err != nil {
			t.Fatal(err)
		}
		results[i] = func() item { return item{batch: true, frames: answers} }
	}
	out := make([]item, len(items))
	for i, r := range results {
		out[i] = r()
	}
	return out
}

// TestSpecMalformed has a server answer with each malformed example of
// docs/PROTOCOL.md: the client must fail the call with the frame error
// the example names, inside a *ConnError.
func TestSpecMalformed(t *testing.T) {
	examples, err := spec.Load(spec.Path())
	if err != nil {
		t.Fatal(err)
	}
	errs := map[string]error{
		"ErrMalformedHeader": frame.ErrMalformedHeader,
		"ErrNegativeLength":  frame.ErrNegativeLength,
		"ErrFrameTooLarge":   frame.ErrFrameTooLarge,
		"ErrBatchTooLarge":   frame.ErrBatchTooLarge,
		"ErrTruncated":       frame.ErrTruncated,
	}
	ran := 0
	for _, ex := range examples {
		if ex.Malformed == nil {
			continue
		}
		ran++
		t.Run(ex.Name, func(t *testing.T) {
			want, ok := errs[ex.Error]
			if !ok {
				t.Fatalf("unknown error name %q", ex.Error)
			}
			addr := rawServer(t, answerWith(1, ex.Malformed))
			c := newClient(t, []string{addr}, client.Config{})
			// A batch header the client would accept calls for a batch
			// of that size, so that what follows is read as its frames.
			batch := 0
			if _, h, ok, err := frame.ParseHeader(ex.Malformed, frame.Limits{}); ok && err == nil && h.IsBatch() {
				batch = h.Count()
			}
			err := misbehaveCall(ctxFor(t), c, batch)
			checkConnError(t, err, addr, want, frame.ErrProtocol)
			if errors.Is(err, context.DeadlineExceeded) {
				t.Fatal("timed out")
			}
		})
	}
	if ran == 0 {
		t.Fatal("no malformed examples in", spec.Path())
	}
}
