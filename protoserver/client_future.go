package protoserver

import (
	"context"
	"sync"

	"google.golang.org/protobuf/proto"

	"github.com/tcpez/tcpez/client"
)

// Future is a typed call in flight: from Go, from a generated client's
// Go… method, from a CompatibleClient, or queued in a pipeline. Wait
// returns its response or error; a pipelined call completes when the
// pipeline's Flush returns.
type Future[T any] struct {
	future
	resp *T
}

// Wait waits for the call to complete and returns its response, or nil and
// its error. It may be called any number of times, from any goroutine.
func (f *Future[T]) Wait() (*T, error) {
	if err := f.wait(); err != nil {
		return nil, err
	}
	return f.resp, nil
}

// Done is closed when the call has completed.
func (f *Future[T]) Done() <-chan struct{} {
	if f.fut != nil {
		return f.fut.Done()
	}
	return f.done
}

// future is the untyped part of a Future. A call sent with client.Go
// completes through call, whose answer is decoded on the first wait;
// every other call closes done when its result is set.
type future struct {
	msg     proto.Message // the response, decoded in place
	service bool          // whether answers are envelopes

	fut  *client.Future
	bufs *buffers // the request bytes call sends; returned on completion
	once sync.Once

	done chan struct{}
	err  error
}

func newFuture[T any, PT interface {
	*T
	proto.Message
}](service bool) *Future[T] {
	f := &Future[T]{resp: new(T)}
	f.msg = PT(f.resp)
	f.service = service
	return f
}

// send starts f's call with b, the encoded request, which lives in bufs
// until the call completes; err is the encoding's, which fails f instead.
func (f *future) send(ctx context.Context, c *client.Client, bufs *buffers, b []byte, err error) {
	bufs.req = b
	if err != nil {
		putBuffers(bufs)
		f.fail(err)
		return
	}
	f.bufs = bufs
	f.fut = c.Go(ctx, b)
}

// start makes f wait for a result from resolve.
func (f *future) start() { f.done = make(chan struct{}) }

// resolve sets the result of a call that started.
func (f *future) resolve(err error) {
	f.err = err
	close(f.done)
}

// fail completes f with err at once.
func (f *future) fail(err error) {
	f.start()
	f.resolve(err)
}

func (f *future) wait() error {
	if f.fut == nil {
		<-f.done
		return f.err
	}
	f.once.Do(func() {
		ans, err := f.fut.Wait()
		if err != nil {
			f.err = f.transportError(err)
		} else {
			f.err = f.decode(ans)
		}
		putBuffers(f.bufs)
		f.bufs = nil
	})
	return f.err
}

func (f *future) transportError(err error) error {
	if f.service {
		return transportError(err)
	}
	return err
}

func (f *future) decode(ans []byte) error {
	if f.service {
		return decodeAnswer(ans, f.msg, true)
	}
	return decodeCompatible(ans, f.msg)
}

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
