package client

import (
	"context"
	"time"

	"github.com/tcpez/tcpez/frame"
)

// Pipeline collects requests and sends them as one batch: a single write,
// and a single answer batch read in order. It is not safe for concurrent
// use; make one per goroutine. It can be reused after Flush.
//
// A server may run the requests of a batch concurrently, and the tcpez
// server does, as the original did: each member's handler starts without
// waiting for the members before it to finish, so a batch of four 100 ms
// requests is answered after about 100 ms, not 400. Only the answers are in
// order. Requests that depend on each other belong in successive batches.
// The batch is sent like any call: on a connection whose answer is overdue
// only when no other can take it (see Config.OverdueAfter).
type Pipeline struct {
	c     *Client
	buf   []byte // the batch header's room, then the batch's frames
	n     int
	bytes int // payload bytes, for the observer
	err   error
	// mux lays the batch's frames out as the multiplexed mode sends them,
	// each with its mux header (the call id filled in when sent), not as
	// v1 frames; it is taken from Client.pipeMux as the batch starts. The
	// batch then goes out from buf in either mode, without a copy; a
	// batch laid out for the other mode is copied into the connection's
	// buffer.
	mux bool
}

// Pipeline returns an empty pipeline on c.
func (c *Client) Pipeline() *Pipeline { return &Pipeline{c: c} }

// Enqueue adds req to the batch. req is copied, so it may be reused at once.
func (p *Pipeline) Enqueue(req []byte) {
	if p.err != nil {
		return
	}
	if p.err = p.c.checkRequest(len(req)); p.err != nil {
		return
	}
	if len(p.buf) == 0 {
		// Room for the batch header, so that the batch is one buffer.
		p.buf = append(p.buf, 0, 0, 0, 0)
		p.mux = p.c.pipeMux.Load()
	}
	if p.mux {
		if len(req) > frame.MaxFrameSize-frame.MuxHeaderSize {
			// No mux frame carries it (a client whose Limits allow
			// frames up to the header's maximum).
			p.err = &frame.SizeError{Limit: frame.MaxFrameSize - frame.MuxHeaderSize, Size: int64(len(req))}
			return
		}
		p.buf = frame.AppendMux(p.buf, frame.KindRequest, 0, req)
	} else {
		p.buf = frame.AppendFrame(p.buf, req)
	}
	p.n++
	p.bytes += len(req)
}

// Len is the number of requests waiting for Flush.
func (p *Pipeline) Len() int { return p.n }

// Flush sends the requests as one batch and returns their answers in
// order. The batch succeeds or fails as a whole. Flush empties the
// pipeline either way. With no requests it returns nil, nil and sends
// nothing: the wire has no empty batch.
//
// Once ctx has ended, Flush returns an error matching ctx.Err(), even
// when the last answers came as it ended: whichever of the two the
// connection saw first, a caller who gave up hears so.
func (p *Pipeline) Flush(ctx context.Context) ([][]byte, error) {
	_, answers, err := p.flush(ctx, modeBatch, nil, nil)
	return answers, err
}

// FlushAppend is Flush into the caller's buffers: it appends the answers'
// bytes to dst and their slices, which alias the returned dst, to
// answers. A caller that passes the buffers of its last batch back (as
// dst[:0] and answers[:0]) sends and receives a batch without allocating.
// On error it returns dst and answers as they were given. In the
// multiplexed mode, whose answers may arrive in any order, they are put in
// request order: answers that come in request order go straight into dst,
// and only those that came out of order go through a buffer the
// connection keeps. dst's spare capacity may be written even when
// FlushAppend fails or its context ends, but never after it returned.
func (p *Pipeline) FlushAppend(ctx context.Context, dst []byte, answers [][]byte) ([]byte, [][]byte, error) {
	return p.flush(ctx, modeBatchAppend, dst, answers)
}

func (p *Pipeline) flush(ctx context.Context, mode answerMode, dst []byte, answers [][]byte) ([]byte, [][]byte, error) {
	defer p.reset()
	if p.err != nil {
		return dst, answers, p.err
	}
	if p.n == 0 {
		return dst, answers, nil
	}
	if p.c.cfg.Codec != nil {
		return dst, answers, ErrBatchUnsupported
	}
	c := p.c
	if err := c.begin(); err != nil {
		return dst, answers, err
	}
	defer c.end()
	var start time.Time
	if c.timed {
		start = time.Now()
	}
	var (
		o   outcome
		got [][]byte // this batch's answers
		err = p.checkCount()
	)
	if err == nil {
		rq := c.getRequest(mode, dst)
		rq.n, rq.into, rq.muxFramed = p.n, answers, p.mux
		frame.AppendHeader(p.buf[:0], frame.BatchHeader(p.n))
		rq.framed = p.buf
		err = c.roundTrip(ctx, rq, p.buf[frame.HeaderSize:], &o)
		if err == nil && ctx.Err() != nil {
			// The reader goroutine may complete a batch as its caller
			// wakes to ctx's end: the caller's answer must not depend on
			// which of the two the scheduler ran first.
			err = ctxError(ctx)
		}
		if err == nil {
			got = rq.answers
			if mode == modeBatchAppend {
				dst, answers = rq.ans, rq.answers
				got = answers[len(answers)-p.n:]
			}
			// The next batch is laid out as this one went: in the
			// multiplexed mode if it has a mux connection.
			if mux := rq.mc != nil; mux != c.pipeMux.Load() {
				c.pipeMux.Store(mux)
			}
		}
		if !o.abandoned {
			rq.recycle()
		}
	}
	if c.timed {
		c.record(OpPipeline, start, &o, p.bytes, answersLen(got), err)
	}
	if mode == modeBatch {
		return nil, got, err
	}
	return dst, answers, err
}

// checkCount refuses a batch whose answer the client would itself reject
// as over Limits.MaxBatchCount.
func (p *Pipeline) checkCount() error {
	limit := p.c.cfg.Limits.MaxBatchCount
	if limit == 0 {
		limit = frame.DefaultMaxBatchCount
	}
	if p.n > limit {
		return &frame.SizeError{Batch: true, Limit: limit, Size: int64(p.n)}
	}
	return nil
}

func (p *Pipeline) reset() {
	if cap(p.buf) > maxKeptBuffer {
		p.buf = nil
	}
	p.buf, p.n, p.bytes, p.err = p.buf[:0], 0, 0, nil
}

func answersLen(answers [][]byte) int {
	n := 0
	for _, a := range answers {
		n += len(a)
	}
	return n
}
