package protoserver

import "sync"

// maxKeptBuffer bounds the buffers kept for reuse, so that one huge call
// does not pin its memory. They rest in a sync.Pool, which the garbage
// collector empties when they go unused; 4 MiB, as the client keeps, lets
// megabyte calls reuse theirs (at 64 KiB a 1 MiB echo allocated 2 MiB
// more per call).
const maxKeptBuffer = 4 << 20

// buffers hold a call's encoded request and its answer. A call takes a pair
// from the pool and gives it back when the bytes are no longer needed;
// decoding copies what it keeps, so nothing aliases them afterwards.
type buffers struct {
	req, ans []byte
}

var bufferPool = sync.Pool{New: func() any { return new(buffers) }}

func getBuffers() *buffers { return bufferPool.Get().(*buffers) }

func putBuffers(b *buffers) {
	if cap(b.req) > maxKeptBuffer {
		b.req = nil
	}
	if cap(b.ans) > maxKeptBuffer {
		b.ans = nil
	}
	b.req, b.ans = b.req[:0], b.ans[:0]
	bufferPool.Put(b)
}
