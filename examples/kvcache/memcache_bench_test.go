package main

import (
	"bytes"
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/tcpez/tcpez/frame"
	"github.com/tcpez/tcpez/span"
	"github.com/tcpez/tcpez/textcmd/textserver"
)

// benchOp is a kind of request: one for each of 1000 keys.
type benchOp struct {
	name string
	reqs [][]byte
}

// memcacheOps returns sets of values of size bytes and gets, in that
// order.
func memcacheOps(size int) []benchOp {
	value := bytes.Repeat([]byte("x"), size)
	var sets, gets [][]byte
	for i := range 1000 {
		req := fmt.Appendf(nil, "set key:%d 0 0 %d\r\n", i, size)
		sets = append(sets, append(append(req, value...), '\r', '\n'))
		gets = append(gets, fmt.Appendf(nil, "get key:%d\r\n", i))
	}
	return []benchOp{{"set", sets}, {"get", gets}}
}

// storedMux returns a memcached Mux over a new store that holds every key
// of ops, so that every get hits, whichever benchmarks run.
func storedMux(b *testing.B, ops []benchOp) *textserver.Mux {
	mux := newMemcacheMux(NewStore(StoreConfig{}), nil)
	for _, req := range ops[0].reqs {
		if _, err := mux.RespondAppend(context.Background(), nil, req, span.New()); err != nil {
			b.Fatal(err)
		}
	}
	return mux
}

// BenchmarkMemcacheHandler measures the memcached listener's handlers
// alone, without the network: what a request costs above the engine.
func BenchmarkMemcacheHandler(b *testing.B) {
	for _, size := range []int{16, 4096} {
		ops := memcacheOps(size)
		store := NewStore(StoreConfig{})
		mux := newMemcacheMux(store, nil)
		sp := span.New()
		ctx := context.Background()
		for _, op := range ops {
			b.Run(fmt.Sprintf("%s/%dB", op.name, size), func(b *testing.B) {
				b.ReportAllocs()
				var resp []byte
				for i := 0; b.Loop(); i++ {
					var err error
					resp, err = mux.RespondAppend(ctx, resp[:0], op.reqs[i%len(op.reqs)], sp)
					if err != nil || len(resp) == 0 {
						b.Fatal(resp, err)
					}
				}
			})
		}
	}
}

// BenchmarkMemcacheRequest measures what the text layer does for each
// request the engine hands it: the codec frames the request in the read
// buffer (Whole, or RequestLen when it is not whole), the engine reads
// it, and the Mux parses and answers it. Requests arrive one at a time,
// as from a client that waits for each answer. Run under callgrind with a
// fixed -test.benchtime=Nx, it counts instructions per request exactly.
func BenchmarkMemcacheRequest(b *testing.B) {
	for _, size := range []int{16, 4096} {
		ops := memcacheOps(size)
		mux := storedMux(b, ops)
		codec := mux.Codec()
		sp := span.New()
		ctx := context.Background()
		for _, op := range ops {
			b.Run(fmt.Sprintf("%s/%dB", op.name, size), func(b *testing.B) {
				b.ReportAllocs()
				src := &oneAtATime{reqs: op.reqs}
				r := frame.NewReaderSize(src, textserver.DefaultReadBufferSize, frame.Limits{})
				var req, resp []byte
				for b.Loop() {
					// As the engine does: wait for a first byte, then
					// measure the request if it is whole.
					if _, err := r.Peek(1); err != nil {
						b.Fatal(err)
					}
					n, ok := codec.Whole(r)
					if !ok {
						var err error
						if n, err = codec.RequestLen(r); err != nil {
							b.Fatal(err)
						}
					}
					var err error
					if req, err = r.ReadPayload(req[:0], n); err != nil {
						b.Fatal(err)
					}
					resp, err = mux.RespondAppend(ctx, resp[:0], req, sp)
					if err != nil || len(resp) == 0 {
						b.Fatal(resp, err)
					}
					// The engine asks again before it flushes the answer,
					// to hold it back if another request is at hand.
					if _, ok := codec.Whole(r); ok {
						b.Fatal("a request at hand after the only one")
					}
				}
			})
		}
	}
}

// oneAtATime reads as a socket does for a client that sends a request
// and waits for its answer: one whole request per read.
type oneAtATime struct {
	reqs [][]byte
	i    int
}

func (o *oneAtATime) Read(p []byte) (int, error) {
	n := copy(p, o.reqs[o.i%len(o.reqs)])
	o.i++
	return n, nil
}

// BenchmarkMemcacheHandlerParallel is BenchmarkMemcacheHandler from every
// P at once, as the listener's connections call it: what the handlers
// share across CPUs (counters, the store's shards) shows here.
func BenchmarkMemcacheHandlerParallel(b *testing.B) {
	for _, size := range []int{16, 4096} {
		ops := memcacheOps(size)
		mux := storedMux(b, ops)
		ctx := context.Background()
		for _, op := range ops {
			b.Run(fmt.Sprintf("%s/%dB", op.name, size), func(b *testing.B) {
				b.ReportAllocs()
				var next atomic.Int64
				b.RunParallel(func(pb *testing.PB) {
					sp := span.New()
					i := int(next.Add(7919)) // each P starts on other keys
					var resp []byte
					for ; pb.Next(); i++ {
						var err error
						resp, err = mux.RespondAppend(ctx, resp[:0], op.reqs[i%len(op.reqs)], sp)
						if err != nil || len(resp) == 0 {
							b.Error(resp, err)
							return
						}
					}
				})
			})
		}
	}
}
