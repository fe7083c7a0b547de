package main

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"github.com/tcpez/tcpez/span"
)

// BenchmarkMemcacheHandler measures the memcached listener's handlers
// alone, without the network: what a request costs above the engine.
func BenchmarkMemcacheHandler(b *testing.B) {
	for _, size := range []int{16, 4096} {
		value := bytes.Repeat([]byte("x"), size)
		store := NewStore(StoreConfig{})
		mux := newMemcacheMux(store, nil)
		var sets, gets [][]byte
		for i := range 1000 {
			req := fmt.Appendf(nil, "set key:%d 0 0 %d\r\n", i, size)
			sets = append(sets, append(append(req, value...), '\r', '\n'))
			gets = append(gets, fmt.Appendf(nil, "get key:%d\r\n", i))
		}
		sp := span.New()
		ctx := context.Background()
		for _, op := range []struct {
			name string
			reqs [][]byte
		}{{"set", sets}, {"get", gets}} {
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
