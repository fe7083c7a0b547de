package protoserver

import (
	"context"
	"sync"

	"google.golang.org/protobuf/proto"

	"github.com/tcpez/tcpez/client"
)

// Pipeline collects service-mode calls and sends them as one batch: one
// write, and one batch of answers in order. Queue calls with Enqueue (or a
// generated pipeline's methods), then Flush. It is not safe for concurrent
// use; it can be reused after Flush.
//
// Requests are encoded by Flush, with the deadline, metadata and span id of
// its context, so they must not be modified until Flush returns.
type Pipeline struct {
	c     *Client
	p     *client.Pipeline
	items []pipeItem
	buf   []byte
	sent  []int // the items in the batch, in order
}

type pipeItem struct {
	method string
	req    proto.Message
	resp   proto.Message // where the answer is decoded
	f      *future
}

// Pipeline returns an empty pipeline.
func (c *Client) Pipeline() *Pipeline { return &Pipeline{c: c, p: c.c.Pipeline()} }

// Enqueue adds a call of method with req to p and returns its future,
// which completes when p.Flush returns.
func Enqueue[T any, PT interface {
	*T
	proto.Message
}](p *Pipeline, method string, req proto.Message) *Future[T] {
	f := newFuture[T, PT](true)
	f.start()
	p.items = append(p.items, pipeItem{method: method, req: req, resp: f.msg, f: &f.future})
	return f
}

// Len is the number of calls waiting for Flush.
func (p *Pipeline) Len() int { return len(p.items) }

// Flush sends the queued calls as one batch and completes their futures;
// with no calls it sends nothing. It returns the batch's error, which every
// future then has too; nil means each future has its own result.
//
// With client interceptors, each call runs them on a goroutine of its own,
// and the batch goes out once every call has reached the end of its chain
// or returned without.
func (p *Pipeline) Flush(ctx context.Context) error {
	defer p.reset()
	if len(p.items) == 0 {
		return nil
	}
	if p.c.chain != nil {
		return p.flushIntercepted(ctx)
	}
	for i := range p.items {
		if err := p.add(ctx, i); err != nil {
			p.items[i].f.resolve(err)
		}
	}
	return p.send(ctx, func(i int, err error) { p.items[i].f.resolve(err) })
}

// add encodes item i into the batch.
func (p *Pipeline) add(ctx context.Context, i int) error {
	it := &p.items[i]
	b, err := encodeCall(p.buf[:0], ctx, it.method, it.req)
	p.buf = b
	if err != nil {
		return err
	}
	p.p.Enqueue(b)
	p.sent = append(p.sent, i)
	return nil
}

// send flushes the batch and reports each call's result to complete. It
// returns the batch's error.
func (p *Pipeline) send(ctx context.Context, complete func(i int, err error)) error {
	if len(p.sent) == 0 {
		return nil
	}
	answers, err := p.p.Flush(ctx)
	if err != nil {
		err = transportError(err)
	}
	for k, i := range p.sent {
		if err != nil {
			complete(i, err)
		} else {
			// An interceptor may have passed its own response message.
			it := &p.items[i]
			complete(i, decodeAnswer(answers[k], it.resp, it.resp == it.f.msg))
		}
	}
	return err
}

func (p *Pipeline) reset() {
	clear(p.items)
	p.items, p.sent = p.items[:0], p.sent[:0]
	if cap(p.buf) > maxKeptBuffer {
		p.buf = nil
	}
}

// flushIntercepted runs every queued call's interceptors on a goroutine of
// its own. A chain that reaches its end puts its request in the batch and
// waits; once every chain has done so or returned, the batch goes out and
// the waiting chains get their answers. A chain that calls next again
// makes a call of its own.
func (p *Pipeline) flushIntercepted(ctx context.Context) error {
	n := len(p.items)
	b := &batch{p: p, state: make([]uint8, n), results: make([]error, n), pending: n,
		ready: make(chan struct{}), sent: make(chan struct{})}
	var wg sync.WaitGroup
	for i := range p.items {
		it := &p.items[i]
		inv := chain(p.c.interceptors, func(ictx context.Context, method string, req, resp proto.Message) error {
			return b.call(ictx, i, method, req, resp)
		})
		wg.Go(func() {
			err := inv(ctx, it.method, it.req, it.resp)
			b.leave(i)
			it.f.resolve(err)
		})
	}
	<-b.ready
	err := p.send(ctx, func(i int, err error) { b.results[i] = err })
	b.mu.Lock()
	b.done = true
	b.mu.Unlock()
	close(b.sent)
	wg.Wait()
	return err
}

// Slot states of a batch.
const (
	slotWaiting = iota // the chain has not reached its end yet
	slotInBatch        // the request is in the batch
	slotGone           // the chain returned, or its request could not go
)

type batch struct {
	p       *Pipeline
	results []error // of the calls in the batch, once sent is closed
	ready   chan struct{}
	sent    chan struct{}

	mu      sync.Mutex
	state   []uint8
	pending int  // chains still waiting
	done    bool // the batch has gone out
}

// call ends item i's chain.
func (b *batch) call(ctx context.Context, i int, method string, req, resp proto.Message) error {
	b.mu.Lock()
	if b.done || b.state[i] != slotWaiting {
		b.mu.Unlock()
		return b.p.c.roundTrip(ctx, method, req, resp)
	}
	it := &b.p.items[i]
	it.method, it.req, it.resp = method, req, resp
	if err := b.p.add(ctx, i); err != nil {
		b.leaveLocked(i)
		b.mu.Unlock()
		return err
	}
	b.state[i] = slotInBatch
	b.countLocked()
	b.mu.Unlock()
	<-b.sent
	return b.results[i]
}

// leave records that item i's chain returned.
func (b *batch) leave(i int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.leaveLocked(i)
}

func (b *batch) leaveLocked(i int) {
	if b.state[i] == slotWaiting {
		b.state[i] = slotGone
		b.countLocked()
	}
}

func (b *batch) countLocked() {
	if b.pending--; b.pending == 0 {
		close(b.ready)
	}
}
