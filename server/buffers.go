package server

import (
	"math/bits"
	"sync"
)

// largeBuffers recycles request buffers too large for a slot to keep
// (over maxRetainedBuffer) among a server's connections. Reading a large
// frame otherwise allocates and zeroes its buffer step by step: reusing
// them took BenchmarkEcho1MiB from 1144 to 468 µs. Buffers rest in sync.Pools,
// which the garbage collector empties, so an idle server holds none.
//
// A peer announcing a large frame gets a pooled buffer only when one is
// free: memory the process already holds. Otherwise the frame's buffer
// grows with the bytes that arrive, as frame.Reader does, so a peer that
// announces much and sends little still holds only what it sent.
type largeBuffers struct {
	// classes[k] holds buffers with a capacity of at least 1<<k bytes.
	classes [32]sync.Pool
}

// get returns an empty buffer with room for n bytes, or nil when none is
// free.
func (p *largeBuffers) get(n int) []byte {
	k := getClass(n)
	if k >= len(p.classes) {
		return nil
	}
	if b, ok := p.classes[k].Get().(*[]byte); ok {
		return (*b)[:0]
	}
	return nil
}

// put makes b available to get.
func (p *largeBuffers) put(b []byte) {
	k := putClass(cap(b))
	if k < 0 || k >= len(p.classes) {
		return
	}
	p.classes[k].Put(&b)
}

// getClass is the class to take a buffer for n bytes from: the smallest k
// with 1<<k >= n.
func getClass(n int) int { return bits.Len(uint(n - 1)) }

// putClass is the class a buffer of capacity c serves: the largest k with
// 1<<k <= c; -1 for none.
func putClass(c int) int { return bits.Len(uint(c)) - 1 }
