package main

import (
	"bytes"
	"context"
	// Renamed: the tests hold the built command in a variable "binary".
	byteorder "encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/tcpez/tcpez/client"
	"github.com/tcpez/tcpez/frame"
	"github.com/tcpez/tcpez/protoserver"
	"google.golang.org/protobuf/types/dynamicpb"
)

// Latency is recorded in microseconds, from 1 µs to 60 s, to 3 significant
// digits.
const (
	histMinUS  = 1
	histMaxUS  = 60_000_000
	histDigits = 3
)

// The phases of a run. Workers read the phase before each call, so a call
// belongs to the phase in which it started.
const (
	phaseWarmup int32 = iota
	phaseMeasure
	phaseStop
)

// errKind is how a failed request is counted.
type errKind int

const (
	kindTimeout errKind = iota
	kindConn
	kindProtocol
	kindMismatch
	kindOther
	numKinds
)

func (k errKind) String() string {
	switch k {
	case kindTimeout:
		return "timeout"
	case kindConn:
		return "conn"
	case kindProtocol:
		return "protocol"
	case kindMismatch:
		return "mismatch"
	}
	return "other"
}

func classify(err error) errKind {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return kindTimeout
	// Before conn: a protocol violation breaks the connection, so its
	// error matches ErrConnLost too, and protocol says more.
	case errors.Is(err, frame.ErrProtocol):
		return kindProtocol
	case errors.Is(err, client.ErrConnLost), errors.Is(err, client.ErrNoConnection):
		return kindConn
	}
	return kindOther
}

var errMismatch = errors.New("an answer differs from its request")

type loadConfig struct {
	svc         *protoserver.Client // service mode; nil for raw frames
	call        *anyCall            // --method: the call to make; nil for the echo
	concurrency int
	size        int
	batch       int   // 0: single calls
	requests    int64 // measured requests to send; 0: no limit
	timeout     time.Duration
}

// load is the running set of workers and the watchdog that times out
// their calls.
type load struct {
	cfg        loadConfig
	c          *client.Client
	ctx        context.Context // the command's: Ctrl-C ends every call
	timeoutErr error           // the cause of a call the watchdog cut
	// base is the origin of the call clock: nanoseconds since base, read
	// from the monotonic clock.
	base     time.Time
	phase    atomic.Int32
	tickets  atomic.Int64 // measured requests claimed so far
	workers  []*worker
	finished chan struct{} // closed when every worker has returned
	watched  chan struct{} // closed when the watchdog has returned
}

// timedOut marks a call the watchdog cut, in worker.started.
const timedOut = -1

// worker is one load goroutine and what it measured. Only the worker
// touches it while it runs, except for the atomics and, under mu, cut.
type worker struct {
	done    atomic.Int64 // requests finished while measuring, for progress
	failed  atomic.Int64 // of which failed
	started atomic.Int64 // the running call's start on the call clock; 0: none
	// Keeps another worker's hot atomics off this cache line.
	_ [40]byte

	id uint64
	mu sync.Mutex // orders the watchdog's cut before the context's renewal
	// ctx serves the worker's calls; see renew.
	ctx    context.Context
	ctxEnd int64                   // ctx's deadline on the call clock
	cut    context.CancelCauseFunc // the watchdog's: ends ctx early
	free   context.CancelFunc      // releases ctx's timer

	req, want, ans []byte
	seq            uint64
	anyResp        *dynamicpb.Message // --method's answers, reused

	hist     *hdrhistogram.Histogram
	ok       int64
	errs     [numKinds]int64
	firstErr error
}

// startLoad starts cfg.concurrency workers in the warmup phase.
func startLoad(ctx context.Context, c *client.Client, cfg loadConfig) *load {
	l := &load{
		cfg:        cfg,
		c:          c,
		ctx:        ctx,
		timeoutErr: fmt.Errorf("no answer within %v: %w", cfg.timeout, context.DeadlineExceeded),
		base:       time.Now(),
		finished:   make(chan struct{}),
		watched:    make(chan struct{}),
	}
	filler := bytes.Repeat([]byte("tcpez"), cfg.size/5+1)[:cfg.size]
	for i := range cfg.concurrency {
		w := &worker{
			id:   uint64(i),
			req:  bytes.Clone(filler),
			want: bytes.Clone(filler),
			ans:  make([]byte, 0, cfg.size),
			hist: hdrhistogram.New(histMinUS, histMaxUS, histDigits),
		}
		l.workers = append(l.workers, w)
	}
	var wg sync.WaitGroup
	for _, w := range l.workers {
		wg.Go(func() { l.run(w) })
	}
	go func() {
		wg.Wait()
		close(l.finished)
	}()
	go l.watch()
	return l
}

// measure starts the measured phase and returns its start.
func (l *load) measure() time.Time {
	start := time.Now()
	l.phase.Store(phaseMeasure)
	return start
}

// stop ends the run and waits for the calls in flight, which still count.
func (l *load) stop() {
	l.phase.Store(phaseStop)
	<-l.finished
	<-l.watched
	for _, w := range l.workers {
		w.release()
	}
}

// count is the number of measured requests finished so far, and of
// those that failed.
func (l *load) count() (done, failed int64) {
	for _, w := range l.workers {
		done += w.done.Load()
		failed += w.failed.Load()
	}
	return done, failed
}

// now reads the call clock; it is never 0, which means "no call".
func (l *load) now() int64 { return int64(time.Since(l.base)) + 1 }

// claim takes up to n of the measured requests left, and returns how many
// it got, so that a run of --requests N sends exactly N.
func (l *load) claim(n int) int {
	end := l.tickets.Add(int64(n))
	left := l.cfg.requests - (end - int64(n))
	return int(max(0, min(int64(n), left)))
}

func (l *load) run(w *worker) {
	var p *client.Pipeline
	if l.cfg.batch > 0 {
		p = l.c.Pipeline()
	}
	for {
		phase := l.phase.Load()
		if phase == phaseStop {
			return
		}
		n := max(1, l.cfg.batch)
		if phase == phaseMeasure && l.cfg.requests > 0 {
			if n = l.claim(n); n == 0 {
				return
			}
		}
		start := l.now()
		if w.ctxEnd-start < int64(l.cfg.timeout) {
			w.renew(l)
		}
		w.started.Store(start)
		var bad int
		var err error
		switch {
		case l.cfg.svc != nil && l.cfg.batch > 0:
			bad, err = w.pipelineService(l.cfg.svc.Pipeline(), n)
		case l.cfg.call != nil:
			err = w.singleAny(l.cfg.svc, l.cfg.call)
		case l.cfg.svc != nil:
			bad, err = w.singleService(l.cfg.svc)
		case p == nil:
			bad, err = w.single(l.c)
		default:
			bad, err = w.pipeline(p, n)
		}
		took := time.Duration(l.now() - start)
		if w.started.Swap(0) == timedOut {
			w.renew(l)
		}
		// A call cut short by Ctrl-C measured nothing.
		if phase != phaseMeasure || err != nil && l.ctx.Err() != nil {
			continue
		}
		if failed := w.account(n, bad, err, took); failed > 0 {
			w.failed.Add(failed)
		}
		w.done.Add(int64(n))
	}
}

// single sends one request; bad is 1 when its answer is wrong.
func (w *worker) single(c *client.Client) (bad int, err error) {
	w.fill(w.req, w.seq)
	w.seq++
	// Into a reused buffer: the client then allocates nothing, and the
	// allocation count shows the server and the client, not the bench.
	w.ans, err = c.CallAppend(w.ctx, w.ans[:0], w.req)
	if err != nil {
		return 0, err
	}
	if !bytes.Equal(w.ans, w.req) {
		return 1, nil
	}
	return 0, nil
}

// pipeline sends n requests as one batch; bad counts the wrong answers.
func (w *worker) pipeline(p *client.Pipeline, n int) (bad int, err error) {
	first := w.seq
	for i := range n {
		w.fill(w.req, first+uint64(i))
		p.Enqueue(w.req)
	}
	w.seq += uint64(n)
	answers, err := p.Flush(w.ctx)
	if err != nil {
		return 0, err
	}
	for i, a := range answers {
		w.fill(w.want, first+uint64(i))
		if !bytes.Equal(a, w.want) {
			bad++
		}
	}
	return bad, nil
}

// fill stamps the request's sequence number and worker into its first
// bytes, so that requests in flight differ and an answer that went to the
// wrong call is caught as well as a wrong answer.
func (w *worker) fill(payload []byte, seq uint64) {
	var stamp [16]byte
	byteorder.LittleEndian.PutUint64(stamp[:8], seq)
	byteorder.LittleEndian.PutUint64(stamp[8:], w.id)
	copy(payload, stamp[:])
}

// account counts a finished round trip of n requests and returns how many
// failed. Latency covers only round trips whose every answer was right: a
// fast wrong answer or error would flatter the figures.
func (w *worker) account(n, bad int, err error, took time.Duration) (failed int64) {
	switch {
	case err != nil:
		w.errs[classify(err)] += int64(n)
		w.noteErr(err)
		return int64(n)
	case bad > 0:
		w.errs[kindMismatch] += int64(bad)
		w.ok += int64(n - bad)
		w.noteErr(errMismatch)
		return int64(bad)
	}
	w.ok += int64(n)
	us := min(max(took.Microseconds(), histMinUS), histMaxUS)
	_ = w.hist.RecordValue(us) // cannot fail within the bounds
	return 0
}

func (w *worker) noteErr(err error) {
	if w.firstErr == nil {
		w.firstErr = err
	}
}

// watch times out calls: it cuts a worker's context once the call that
// uses it has run longer than the timeout. A context.WithTimeout per call
// would do the same for more allocations than the client and the server
// make together, and the count of those is what the bench reports.
func (l *load) watch() {
	defer close(l.watched)
	every := min(max(l.cfg.timeout/10, time.Millisecond), 100*time.Millisecond)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-l.finished:
			return
		case <-t.C:
		}
		now := l.now()
		for _, w := range l.workers {
			if s := w.started.Load(); s > 0 && now-s > int64(l.cfg.timeout) {
				w.expire(s, l.timeoutErr)
			}
		}
	}
}

// expire cuts the worker's call that started at s, if it still runs.
func (w *worker) expire(s int64, cause error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	// The worker clears started when its call returns: if it already has,
	// the context may serve the next call, which must not be cut.
	if w.started.CompareAndSwap(s, timedOut) {
		w.cut(cause)
	}
}

// renew gives the worker a fresh context, good for two timeouts and used
// for calls while at least one is left, so every call gets its full
// timeout from the watchdog. The deadline is what the client needs to
// bound its socket writes by a deadline; a context without one makes it
// arm a context.AfterFunc per write, which allocates. It is also the
// bound on a write the watchdog's cut cannot interrupt.
func (w *worker) renew(l *load) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.release()
	var base context.Context
	base, w.cut = context.WithCancelCause(l.ctx)
	w.ctxEnd = l.now() + 2*int64(l.cfg.timeout)
	w.ctx, w.free = context.WithDeadline(base, l.base.Add(time.Duration(w.ctxEnd)))
}

func (w *worker) release() {
	if w.free != nil {
		w.free()
		w.cut(nil)
	}
}

// loadResult is what the workers measured, merged.
type loadResult struct {
	hist     *hdrhistogram.Histogram
	ok       int64
	errs     [numKinds]int64
	firstErr error
}

// result merges the workers' figures; call it after stop.
func (l *load) result() loadResult {
	r := loadResult{hist: hdrhistogram.New(histMinUS, histMaxUS, histDigits)}
	for _, w := range l.workers {
		r.hist.Merge(w.hist)
		r.ok += w.ok
		for k, n := range w.errs {
			r.errs[k] += n
		}
		if r.firstErr == nil {
			r.firstErr = w.firstErr
		}
	}
	return r
}
