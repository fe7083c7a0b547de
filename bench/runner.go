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
	progress  io.Writer // one line per cell; nil for none
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

// The phases of a cell. Workers read the phase after each call: a call that
// completes while measuring counts, with its latency.
const (
	phaseWarmup int32 = iota
	phaseMeasure
	phaseStop
)

// hangGrace (plus 20 windows) is how long a cell waits for its calls to end
// after the window before it gives up on the system and tears it down.
var hangGrace = 10 * time.Second

// run measures every workload of cfg in every round. Within a round the
// workloads run in order and, for each, the systems in an order rotated by
// one place per round, so that no system always runs first or right after
// the same neighbour.
func run(ctx context.Context, cfg runConfig) (results, error) {
	res := make(results)
	n := len(cfg.systems)
	for r := range cfg.rounds {
		for _, w := range cfg.workloads {
			for i := range n {
				e := cfg.systems[(i+r)%n]
				if !e.runs(w) {
					continue
				}
				if err := ctx.Err(); err != nil {
					return res, err
				}
				s, err := runCell(ctx, e, w, cfg.warmup, cfg.measure)
				if err != nil {
					return res, fmt.Errorf("%s, %s: %w", e.name, w, err)
				}
				if res[w] == nil {
					res[w] = make(map[string][]sample)
				}
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

// worker is one load goroutine's tally, on its own cache lines.
type worker struct {
	hist     *hdrhistogram.Histogram
	reqs     int64
	errors   int64
	firstErr error
	_        [64]byte
}

// runCell starts e, drives it with w.conc goroutines for the warm-up and the
// window, and stops it. An error means the system could not be started; a
// system that fails calls gives a sample with errors.
func runCell(parent context.Context, e entry, w workload, warmup, measure time.Duration) (sample, error) {
	sys := e.new()
	closed := false
	closeSys := func() {
		if !closed {
			closed = true
			sys.Close()
		}
	}
	defer closeSys()
	if err := sys.Start(); err != nil {
		return sample{}, fmt.Errorf("start: %w", err)
	}
	callers := make([]caller, 0, w.conc)
	defer func() {
		for _, c := range callers {
			c.Close()
		}
	}()
	for range w.conc {
		c, err := sys.NewCaller()
		if err != nil {
			return sample{}, fmt.Errorf("caller: %w", err)
		}
		callers = append(callers, c)
	}

	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	var phase atomic.Int32
	workers := make([]worker, w.conc)
	var wg sync.WaitGroup
	for i, c := range callers {
		workers[i].hist = hdrhistogram.New(1, histMax, histDigits)
		wg.Add(1)
		go func() {
			defer wg.Done()
			drive(ctx, c, &workers[i], uint64(i), w.size, &phase)
		}()
	}

	time.Sleep(warmup)
	runtime.GC() // start the window without the warm-up's garbage
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	t0 := time.Now()
	phase.Store(phaseMeasure)
	select {
	case <-time.After(measure):
	case <-parent.Done():
	}
	phase.Store(phaseStop)
	elapsed := time.Since(t0)
	runtime.ReadMemStats(&m1)

	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	hung := false
	select {
	case <-done:
	case <-time.After(hangGrace + 20*measure):
		// A call that never returns: cancel, and close the system under it.
		hung = true
		cancel()
		closeSys()
		<-done
	}

	var s sample
	all := hdrhistogram.New(1, histMax, histDigits)
	for i := range workers {
		wk := &workers[i]
		all.Merge(wk.hist)
		s.reqs += wk.reqs
		s.errors += wk.errors
		if s.firstErr == nil {
			s.firstErr = wk.firstErr
		}
	}
	if hung {
		s.errors++
		if s.firstErr == nil {
			s.firstErr = errors.New("calls did not return after the window")
		}
	}
	if err := parent.Err(); err != nil {
		return s, err
	}
	s.rps = float64(s.reqs) / elapsed.Seconds()
	s.p50 = time.Duration(all.ValueAtQuantile(50))
	s.p99 = time.Duration(all.ValueAtQuantile(99))
	if s.reqs > 0 {
		s.allocs = float64(m1.Mallocs-m0.Mallocs) / float64(s.reqs)
	}
	return s, nil
}

// drive calls c until the phase is phaseStop. Each request is the
// goroutine's own buffer of size bytes, random, with a sequence number in
// its first 8 bytes, so that an answer meant for another call or goroutine
// does not pass for the echo.
func drive(ctx context.Context, c caller, wk *worker, id uint64, size int, phase *atomic.Int32) {
	req := make([]byte, size)
	rng := rand.New(rand.NewPCG(id, uint64(size)))
	for i := range req {
		req[i] = byte(rng.Uint32())
	}
	seq := id << 40
	for phase.Load() != phaseStop {
		seq++
		if size >= 8 {
			binary.LittleEndian.PutUint64(req, seq)
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
			return // a failing system is not driven further
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
