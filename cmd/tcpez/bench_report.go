package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// benchReport is the result of a run, as --json prints it. Throughput,
// MB/s and latency count only requests answered correctly; requests and
// errors count every measured request.
type benchReport struct {
	Addr        string `json:"addr"`
	Embedded    bool   `json:"embedded"`
	Mode        string `json:"mode"`
	Protocol    string `json:"protocol"` // "mux" or "v1": what was measured
	Conns       int    `json:"conns"`
	Concurrency int    `json:"concurrency"`
	Size        int    `json:"size"`
	Batch       int    `json:"batch"`

	Requests     int64            `json:"requests"`
	Errors       int64            `json:"errors"`
	ErrorsByKind map[string]int64 `json:"errors_by_kind"`
	FirstError   string           `json:"first_error,omitempty"`
	DurationS    float64          `json:"duration_s"`
	RPS          float64          `json:"rps"`
	MBs          float64          `json:"mb_s"` // request + answer payloads, 10^6 bytes
	// Per call, or per batch with --batch.
	P50us  int64 `json:"p50_us"`
	P90us  int64 `json:"p90_us"`
	P99us  int64 `json:"p99_us"`
	P999us int64 `json:"p999_us"`
	MaxUs  int64 `json:"max_us"`
	// Counts by power-of-two latency bucket, from the first non-empty
	// one to the last.
	Histogram []histBucket `json:"latency_histogram"`
	Method    string       `json:"method,omitempty"`
	// Whole-process mallocs per request; null unless the server is
	// embedded, when the process is the client and the server.
	AllocsPerReq *float64 `json:"allocs_per_req"`
	Interrupted  bool     `json:"interrupted"`
}

func newReport(o benchOptions, addr string, r loadResult, elapsed time.Duration) benchReport {
	rep := benchReport{
		Addr:         addr,
		Embedded:     o.embedded(),
		Mode:         o.mode,
		Protocol:     o.protocol,
		Conns:        o.conns,
		Concurrency:  o.concurrency,
		Size:         o.size,
		Batch:        o.batch,
		Requests:     r.ok,
		ErrorsByKind: make(map[string]int64, numKinds),
		DurationS:    elapsed.Seconds(),
		P50us:        r.hist.ValueAtPercentile(50),
		P90us:        r.hist.ValueAtPercentile(90),
		P99us:        r.hist.ValueAtPercentile(99),
		P999us:       r.hist.ValueAtPercentile(99.9),
		MaxUs:        r.hist.Max(),
		Histogram:    latencyBuckets(r.hist),
		Method:       o.method,
	}
	for k, n := range r.errs {
		rep.ErrorsByKind[errKind(k).String()] = n
		rep.Errors += n
	}
	rep.Requests += rep.Errors
	if r.firstErr != nil {
		rep.FirstError = r.firstErr.Error()
	}
	if s := elapsed.Seconds(); s > 0 {
		rep.RPS = float64(r.ok) / s
		rep.MBs = float64(r.ok) * 2 * float64(o.size) / 1e6 / s
	}
	return rep
}

func writeJSON(w io.Writer, rep benchReport) error {
	rep.DurationS = round(rep.DurationS, 3)
	rep.RPS = round(rep.RPS, 1)
	rep.MBs = round(rep.MBs, 3)
	if rep.AllocsPerReq != nil {
		a := round(*rep.AllocsPerReq, 3)
		rep.AllocsPerReq = &a
	}
	return json.NewEncoder(w).Encode(rep)
}

func round(x float64, digits int) float64 {
	p := math.Pow10(digits)
	return math.Round(x*p) / p
}

// describeRun is the line printed before a human-readable run.
func describeRun(o benchOptions, addr string) string {
	var b strings.Builder
	if o.embedded() {
		fmt.Fprintf(&b, "bench: embedded echo server on %s", addr)
	} else {
		fmt.Fprintf(&b, "bench: %s", addr)
	}
	fmt.Fprintf(&b, ", %s, %d conn(s), %d goroutine(s), %d-byte payloads", o.protocol, o.conns, o.concurrency, o.size)
	if o.batch > 0 {
		fmt.Fprintf(&b, ", batches of %d", o.batch)
	}
	switch {
	case o.requests > 0 && o.duration > 0:
		fmt.Fprintf(&b, "; %d requests or %v", o.requests, o.duration)
	case o.requests > 0:
		fmt.Fprintf(&b, "; %d requests", o.requests)
	default:
		fmt.Fprintf(&b, "; %v", o.duration)
	}
	if o.warmup > 0 {
		fmt.Fprintf(&b, " after a %v warmup", o.warmup)
	}
	return b.String()
}

func writeSummary(w io.Writer, rep benchReport) {
	const row = "%-28s %s\n"
	requests := fmt.Sprint(rep.Requests)
	if rep.Interrupted {
		requests += " (interrupted)"
	}
	fmt.Fprintf(w, row, "requests", requests)
	fmt.Fprintf(w, row, "errors", errorSummary(rep))
	if rep.FirstError != "" {
		fmt.Fprintf(w, row, "first error", rep.FirstError)
	}
	fmt.Fprintf(w, row, "duration", fmt.Sprintf("%.3fs", rep.DurationS))
	fmt.Fprintf(w, row, "requests/s", fmt.Sprintf("%.0f", rep.RPS))
	fmt.Fprintf(w, row, "MB/s (requests+answers)", fmt.Sprintf("%.2f", rep.MBs))
	label := "latency µs"
	if rep.Batch > 0 {
		label = fmt.Sprintf("latency µs per batch of %d", rep.Batch)
	}
	fmt.Fprintf(w, row, label, fmt.Sprintf("p50 %d  p90 %d  p99 %d  p99.9 %d  max %d",
		rep.P50us, rep.P90us, rep.P99us, rep.P999us, rep.MaxUs))
	if rep.AllocsPerReq != nil {
		fmt.Fprintf(w, row, "allocs/req (client+server)", fmt.Sprintf("%.2f", *rep.AllocsPerReq))
	}
	if len(rep.Histogram) > 0 {
		fmt.Fprintln(w, "latency histogram")
		writeHistogram(w, rep.Histogram, 40)
	}
}

// errorSummary is the error count, with the kinds that occurred.
func errorSummary(rep benchReport) string {
	if rep.Errors == 0 {
		return "0"
	}
	var kinds []string
	for k := range numKinds {
		if n := rep.ErrorsByKind[k.String()]; n > 0 {
			kinds = append(kinds, fmt.Sprintf("%s %d", k, n))
		}
	}
	return fmt.Sprintf("%d (%s)", rep.Errors, strings.Join(kinds, ", "))
}

type progressKind int

const (
	progressNone  progressKind = iota
	progressPlain              // a line a second, for logs and pipes
	progressBar                // a redrawn bar, for terminals
)

func progressKindFor(stdout io.Writer, jsonOut bool) progressKind {
	if jsonOut {
		return progressNone
	}
	if f, ok := stdout.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		return progressBar
	}
	return progressPlain
}

// progressLimits are the bounds of the run, for the bar's fill.
type progressLimits struct {
	duration time.Duration // 0: none
	requests int64         // 0: none
}

// fraction is how much of the run is done: of the time or of the
// requests, whichever ends the run first.
func (p progressLimits) fraction(elapsed time.Duration, n int64) float64 {
	var f float64
	if p.duration > 0 {
		f = float64(elapsed) / float64(p.duration)
	}
	if p.requests > 0 {
		f = max(f, float64(n)/float64(p.requests))
	}
	return min(f, 1)
}

// showProgress reports count() on w until the returned function is
// called; that function returns once nothing more will be written, so
// that the summary cannot interleave with progress.
func showProgress(w io.Writer, kind progressKind, lim progressLimits, count func() (done, failed int64)) (stop func()) {
	if kind == progressNone {
		return func() {}
	}
	quit, exited := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(exited)
		if kind == progressBar {
			runBar(w, lim, count, quit)
		} else {
			runPlain(w, count, quit)
		}
	}()
	return func() {
		close(quit)
		<-exited
	}
}

// rate is requests per second over windows of at least window, so that
// a bar redrawn often does not jitter.
type rate struct {
	window time.Duration
	at     time.Time
	n      int64
	val    float64
	full   bool // a whole window has passed
}

func (r *rate) update(now time.Time, n int64) float64 {
	d := now.Sub(r.at)
	switch {
	case d >= r.window && d > 0:
		r.val = float64(n-r.n) / d.Seconds()
		r.at, r.n = now, n
		r.full = true
	case !r.full && d > 0:
		// Within the first window: the rate so far beats showing 0.
		return float64(n-r.n) / d.Seconds()
	}
	return r.val
}

// progressLine is what both kinds of progress say.
func progressLine(n, failed int64, rps float64) string {
	s := fmt.Sprintf("%12d requests %10.0f req/s", n, rps)
	if failed > 0 {
		s += fmt.Sprintf(" %10d errors", failed)
	}
	return s
}

func runPlain(w io.Writer, count func() (done, failed int64), quit <-chan struct{}) {
	start := time.Now()
	// Over each tick: a ticker's jitter would leave a window of exactly
	// a tick unfinished at times, and the line repeating its rate.
	r := rate{at: start}
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-quit:
			return
		case now := <-t.C:
			n, failed := count()
			fmt.Fprintf(w, "%6.1fs %s\n", now.Sub(start).Seconds(), progressLine(n, failed, r.update(now, n)))
		}
	}
}

func runBar(w io.Writer, lim progressLimits, count func() (done, failed int64), quit <-chan struct{}) {
	const steps = 1000
	bar := progressbar.NewOptions64(steps,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetWidth(30),
		progressbar.OptionSetPredictTime(false),
		progressbar.OptionShowDescriptionAtLineEnd(),
		progressbar.OptionSetRenderBlankState(true),
	)
	start := time.Now()
	r := rate{window: time.Second, at: start}
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-quit:
			// The summary that follows says it all, and better.
			_ = bar.Clear()
			_ = bar.Exit()
			return
		case now := <-t.C:
			n, failed := count()
			_ = bar.Set64(int64(lim.fraction(now.Sub(start), n) * steps))
			bar.Describe(strings.TrimSpace(progressLine(n, failed, r.update(now, n))))
		}
	}
}
