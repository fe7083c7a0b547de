package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// A workload is one cell of the matrix: a payload size and a number of
// goroutines calling at once.
type workload struct {
	size, conc int
}

func (w workload) String() string {
	return fmt.Sprintf("%s c=%d", sizeName(w.size), w.conc)
}

func sizeName(n int) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d B", n)
}

// runConfig is what a run measures.
type runConfig struct {
	systems   []entry
	workloads []workload
	rounds    int
	warmup    time.Duration
	measure   time.Duration
	slice     time.Duration // a system's turn within a window; 0 for the whole window
	progress  io.Writer     // one line per cell; nil for none
}

// maxBatchedSize is the largest payload the batching systems run with: a
// batch of 64 payloads of 1 MiB is a 64 MiB round trip, which takes longer
// than a window and measures memory bandwidth more than the RPC system.
const maxBatchedSize = 64 << 10

// runs reports whether e is measured on w.
func (e entry) runs(w workload) bool {
	return e.batch == 1 || w.size <= maxBatchedSize
}

// sample is one system's result for one workload in one round.
type sample struct {
	rps      float64 // requests answered correctly per second of the window
	p50, p99 time.Duration
	allocs   float64 // whole-process mallocs per request
	reqs     int64
	errors   int64
	firstErr error
}

// results holds every sample: results[workload][system name][round].
type results map[workload]map[string][]sample

// Latency is recorded in nanoseconds, 1 ns to 10 s, with 2 significant
// digits (about 1% resolution), in a histogram per goroutine so that
// recording needs no lock; 256 of them at 3 digits would weigh 50 MB.
const (
	histMax    = int64(10 * time.Second)
	histDigits = 2
)

// The phases of a slice. Workers read the phase after each call: a call
// that completes while measuring counts, with its latency.
const (
	phaseWarmup int32 = iota
	phaseMeasure
	phaseStop
)

// hangGrace (plus 20 windows) is how long a cell waits for its calls to end
// after the window before it gives up on the system and tears it down.
var hangGrace = 10 * time.Second

// run measures every workload of cfg in every round. Within a round the
// workloads run in order; for each, every system that runs it is set up
// at once and measured in turn a slice at a time, the order rotated every
// slice and every round, so that no system always runs first or right
// after the same neighbour, and what drifts over seconds on a shared
// machine falls on every system alike.
func run(ctx context.Context, cfg runConfig) (results, error) {
	res := make(results)
	for r := range cfg.rounds {
		for _, w := range cfg.workloads {
			var es []entry
			for _, e := range cfg.systems {
				if e.runs(w) {
					es = append(es, e)
				}
			}
			if len(es) == 0 {
				continue
			}
			if err := ctx.Err(); err != nil {
				return res, err
			}
			ss, err := runCells(ctx, es, w, cfg.warmup, cfg.measure, cfg.slice, r)
			if err != nil {
				return res, fmt.Errorf("%s: %w", w, err)
			}
			if res[w] == nil {
				res[w] = make(map[string][]sample)
			}
			for i, e := range es {
				s := ss[i]
				res[w][e.name] = append(res[w][e.name], s)
				if cfg.progress != nil {
					fmt.Fprintf(cfg.progress, "round %d/%d  %-12s %-18s %10s req/s  p50 %9s  p99 %9s  %6.1f allocs/req%s\n",
						r+1, cfg.rounds, w, e.name, fmtRate(s.rps), fmtDur(s.p50), fmtDur(s.p99), s.allocs, errNote(s))
				}
			}
		}
	}
	return res, nil
}

func errNote(s sample) string {
	if s.errors == 0 {
		return ""
	}
	return fmt.Sprintf("  %d ERRORS: %v", s.errors, s.firstErr)
}

// worker is one load goroutine's request and tally, on its own cache
// lines, kept across the slices of a cell.
type worker struct {
	hist     *hdrhistogram.Histogram
	req      []byte
	seq      uint64
	reqs     int64
	errors   int64
	firstErr error
	failed   bool // a failing system is not driven further
	_        [64]byte
}

// runCell measures e alone on w: a warm-up, then one window.
func runCell(parent context.Context, e entry, w workload, warmup, measure time.Duration) (sample, error) {
	ss, err := runCells(parent, []entry{e}, w, warmup, measure, measure, 0)
	if err != nil {
		return sample{}, err
	}
	return ss[0], nil
}

// runCells sets up every system of es for w, warms each up in turn, and
// then measures them in turn, a slice at a time, the order rotated each
// slice (and by round), until each has had its window. An error means a
// system could not be started; a system that fails calls gives a sample
// with errors.
func runCells(parent context.Context, es []entry, w workload, warmup, measure, slice time.Duration, round int) ([]sample, error) {
	cells := make([]*cellRun, 0, len(es))
	defer func() {
		for _, c := range cells {
			c.close()
		}
	}()
	for _, e := range es {
		c, err := startCell(parent, e, w)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", e.name, err)
		}
		cells = append(cells, c)
	}
	for _, c := range cells {
		c.drive(parent, warmup, 0)
	}
	runtime.GC() // start the windows without the warm-ups' garbage
	slice, n := turns(measure, slice)
	for s := range n {
		for k := range cells {
			if err := parent.Err(); err != nil {
				return nil, err
			}
			cells[(k+s+round)%len(cells)].drive(parent, slice/4, slice)
		}
	}
	if err := parent.Err(); err != nil {
		return nil, err
	}
	ss := make([]sample, len(cells))
	for i, c := range cells {
		ss[i] = c.sample()
	}
	return ss, nil
}

// cellRun is one system set up for a workload: started, its callers
// connected, and what its slices measured so far.
type cellRun struct {
	sys     system
	callers []caller
	workers []worker
	ctx     context.Context
	cancel  context.CancelFunc
	closed  bool
	hung    bool
	elapsed time.Duration // of the measured slices
	mallocs uint64        // during the measured slices
}

func startCell(parent context.Context, e entry, w workload) (*cellRun, error) {
	c := &cellRun{sys: e.new()}
	c.ctx, c.cancel = context.WithCancel(parent)
	if err := c.sys.Start(); err != nil {
		c.close()
		return nil, fmt.Errorf("start: %w", err)
	}
	for i := range w.conc {
		cl, err := c.sys.NewCaller()
		if err != nil {
			c.close()
			return nil, fmt.Errorf("caller: %w", err)
		}
		c.callers = append(c.callers, cl)
		c.workers = append(c.workers, newWorker(uint64(i), w.size))
	}
	return c, nil
}

// newWorker makes goroutine id's request: size bytes, random, with a
// sequence number in its first 8 bytes (drive), so that an answer meant
// for another call or goroutine does not pass for the echo.
func newWorker(id uint64, size int) worker {
	req := make([]byte, size)
	rng := rand.New(rand.NewPCG(id, uint64(size)))
	for i := range req {
		req[i] = byte(rng.Uint32())
	}
	return worker{hist: hdrhistogram.New(1, histMax, histDigits), req: req, seq: id << 40}
}

func (c *cellRun) close() {
	c.cancel()
	for _, cl := range c.callers {
		cl.Close()
	}
	c.callers = nil
	c.closeSys()
}

func (c *cellRun) closeSys() {
	if !c.closed {
		c.closed = true
		c.sys.Close()
	}
}

// drive runs the callers for ramp, unmeasured, and then for window,
// measured (none for a warm-up), and waits for their calls to end. The
// ramp lets every caller have a call under way when the window opens, as
// at its close, so that a slice counts what the system does in its steady
// state. A system whose calls do not end is torn down and counted as hung.
func (c *cellRun) drive(parent context.Context, ramp, window time.Duration) {
	if c.hung {
		return
	}
	var (
		phase atomic.Int32
		wg    sync.WaitGroup
	)
	for i, cl := range c.callers {
		wg.Go(func() { drive(c.ctx, cl, &c.workers[i], &phase) })
	}
	wait := func(d time.Duration) {
		select {
		case <-time.After(d):
		case <-parent.Done():
		}
	}
	wait(ramp)
	var (
		m0 runtime.MemStats
		t0 time.Time
	)
	if window > 0 {
		runtime.ReadMemStats(&m0)
		t0 = time.Now()
		phase.Store(phaseMeasure)
		wait(window)
	}
	phase.Store(phaseStop)
	if window > 0 {
		c.elapsed += time.Since(t0)
		var m1 runtime.MemStats
		runtime.ReadMemStats(&m1)
		c.mallocs += m1.Mallocs - m0.Mallocs
	}

	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(hangGrace + 20*max(ramp, window)):
		// A call that never returns: cancel, and close the system under it.
		c.hung = true
		c.cancel()
		c.closeSys()
		<-done
	}
}

// sample sums what the slices measured.
func (c *cellRun) sample() sample {
	var s sample
	all := hdrhistogram.New(1, histMax, histDigits)
	for i := range c.workers {
		wk := &c.workers[i]
		all.Merge(wk.hist)
		s.reqs += wk.reqs
		s.errors += wk.errors
		if s.firstErr == nil {
			s.firstErr = wk.firstErr
		}
	}
	if c.hung {
		s.errors++
		if s.firstErr == nil {
			s.firstErr = errors.New("calls did not return after the window")
		}
	}
	if c.elapsed > 0 {
		s.rps = float64(s.reqs) / c.elapsed.Seconds()
	}
	s.p50 = time.Duration(all.ValueAtQuantile(50))
	s.p99 = time.Duration(all.ValueAtQuantile(99))
	if s.reqs > 0 {
		s.allocs = float64(c.mallocs) / float64(s.reqs)
	}
	return s
}

// drive calls c until the phase is phaseStop; a call that completes while
// measuring counts, with its latency.
func drive(ctx context.Context, c caller, wk *worker, phase *atomic.Int32) {
	req := wk.req
	for !wk.failed && phase.Load() != phaseStop {
		wk.seq++
		if len(req) >= 8 {
			binary.LittleEndian.PutUint64(req, wk.seq)
		}
		t := time.Now()
		n, err := c.Call(ctx, req)
		d := time.Since(t)
		ph := phase.Load()
		if err != nil {
			if ph != phaseStop || ctx.Err() == nil {
				wk.errors++
				if wk.firstErr == nil {
					wk.firstErr = err
				}
			}
			wk.failed = true
			return
		}
		if ph == phaseMeasure {
			wk.reqs += int64(n)
			wk.hist.RecordValue(min(int64(d), histMax))
		}
	}
}

// summary is the rounds of one system and workload reduced to medians and
// the spread of req/s.
type summary struct {
	rps, rpsMin, rpsMax float64
	p50, p99            time.Duration
	allocs              float64
	errors              int64
	firstErr            error
	rounds              int
}

func summarize(ss []sample) summary {
	var sum summary
	if len(ss) == 0 {
		return sum
	}
	rps := make([]float64, len(ss))
	p50 := make([]float64, len(ss))
	p99 := make([]float64, len(ss))
	al := make([]float64, len(ss))
	for i, s := range ss {
		rps[i], p50[i], p99[i], al[i] = s.rps, float64(s.p50), float64(s.p99), s.allocs
		sum.errors += s.errors
		if sum.firstErr == nil {
			sum.firstErr = s.firstErr
		}
	}
	sum.rounds = len(ss)
	sum.rps = median(rps)
	sum.rpsMin, sum.rpsMax = slices.Min(rps), slices.Max(rps)
	sum.p50 = time.Duration(median(p50))
	sum.p99 = time.Duration(median(p99))
	sum.allocs = median(al)
	return sum
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// turns splits a window of measure into n turns of slice each; a slice of
// 0, or one longer than the window, is the whole window in one turn.
func turns(measure, slice time.Duration) (time.Duration, int) {
	if slice <= 0 || slice >= measure {
		return measure, 1
	}
	return slice, int(measure / slice)
}
