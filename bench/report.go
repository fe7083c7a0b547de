package main

import (
	"bufio"
	"fmt"
	"image/color"
	"io"
	"math"
	"os"
	"runtime"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// machine describes where a run happened, for the report's header.
type machine struct {
	cpu, kernel string
	nproc       int
	gomaxprocs  int
	goVersion   string
	date        time.Time
}

func thisMachine() machine {
	m := machine{
		cpu:        "unknown",
		kernel:     "unknown",
		nproc:      runtime.NumCPU(),
		gomaxprocs: runtime.GOMAXPROCS(0),
		goVersion:  runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH,
		date:       time.Now().UTC(),
	}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			k, v, ok := strings.Cut(sc.Text(), ":")
			if ok && strings.TrimSpace(k) == "model name" {
				m.cpu = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.kernel = strings.TrimSpace(string(b))
	}
	return m
}

// report is everything the markdown and the chart are made from.
type report struct {
	machine machine
	flags   string // the command line's flags
	cfg     runConfig
	res     results
}

// sum returns the summary of system name on workload w, and whether it ran.
func (r *report) sum(w workload, name string) (summary, bool) {
	ss, ok := r.res[w][name]
	if !ok || len(ss) == 0 {
		return summary{}, false
	}
	return summarize(ss), true
}

func (r *report) failures() []string {
	var out []string
	for _, w := range r.cfg.workloads {
		for _, e := range r.cfg.systems {
			if s, ok := r.sum(w, e.name); ok && s.errors > 0 {
				out = append(out, fmt.Sprintf("%s, %s: %d errors, first: %v", e.name, w, s.errors, s.firstErr))
			}
		}
	}
	return out
}

// writeMarkdown writes the report: the machine, the systems, how to read
// the numbers, an overview of req/s and a table per workload.
func (r *report) writeMarkdown(out io.Writer, chart string) error {
	w := &errWriter{w: out}
	m := r.machine
	w.printf("# tcpez and other RPC systems: echo over loopback\n\n")
	w.printf("Made by `cd bench && go run .%s`. Client and server run in one process on 127.0.0.1.\n\n", r.flags)
	w.printf("| | |\n| --- | --- |\n")
	w.printf("| CPU | %s |\n", m.cpu)
	w.printf("| nproc | %d (GOMAXPROCS %d) |\n", m.nproc, m.gomaxprocs)
	w.printf("| Go | %s |\n", m.goVersion)
	w.printf("| kernel | %s |\n", m.kernel)
	w.printf("| date | %s |\n", m.date.Format(time.RFC3339))
	w.printf("| flags | `%s` |\n", strings.TrimSpace(r.flags))
	slice, _ := turns(r.cfg.measure, r.cfg.slice)
	w.printf("| per cell | the systems set up together; each warmed up %s, then measured in turn %s at a time (after a %s ramp) until each has had a %s window, the order rotated each slice; %d round(s) |\n\n",
		r.cfg.warmup, slice, slice/4, r.cfg.measure, r.cfg.rounds)

	w.printf("## Systems\n\n| name | what | base |\n| --- | --- | --- |\n")
	for _, e := range r.cfg.systems {
		w.printf("| %s | %s | %s |\n", r.title(e), e.note, e.base)
	}
	w.printf("\n")
	w.printf("## How to read\n\n")
	w.printf("- **req/s**: requests answered, and checked to echo their request, per second of the window; the median over the rounds, and the min–max across them. A batch counts as its %d requests.\n", batchSize)
	w.printf("- **× raw** and **× gRPC**: that req/s over the raw loop's and over gRPC unary's, on the same workload. **× base**: over the req/s of the system named in the Systems table's base column (the byte layer over the same protocol for service mode, the raw batch loop for Pipeline×64), when both ran.\n")
	w.printf("- **p50** and **p99**: each round's latency percentiles of a call (HDR histogram, ~1%% resolution), median over the rounds. For a batching system (†) a call is a whole batch of %d.\n", batchSize)
	w.printf("- **allocs/req**: heap allocations of the whole process — client and server — during the window (`runtime.MemStats.Mallocs`) per request; median over the rounds.\n")
	w.printf("- \"one client\" is one connection: the tcpez client, the gRPC `ClientConn`, the net/rpc client and the DRPC conn are each one connection shared by every goroutine. The raw loop and its batches are the exception: a connection per goroutine, one request (or batch) in flight on each. The raw pipelined loop shares one connection, as tcpez Call does, with none of its checks: the floor of that design.\n\n")

	if len(r.cfg.workloads) > 1 {
		w.printf("## req/s overview (median)\n\n| system |")
		for _, wl := range r.cfg.workloads {
			w.printf(" %s |", wl)
		}
		w.printf("\n| --- |")
		for range r.cfg.workloads {
			w.printf(" ---: |")
		}
		w.printf("\n")
		for _, e := range r.cfg.systems {
			w.printf("| %s |", r.title(e))
			for _, wl := range r.cfg.workloads {
				if s, ok := r.sum(wl, e.name); ok {
					w.printf(" %s |", fmtRate(s.rps))
				} else {
					w.printf(" – |")
				}
			}
			w.printf("\n")
		}
		w.printf("\n")
	}

	for _, wl := range r.cfg.workloads {
		bw := wl.size >= 64<<10
		w.printf("## %s, concurrency %d\n\n", sizeName(wl.size), wl.conc)
		w.printf("| system | req/s | min–max | × raw | × gRPC | × base | p50 | p99 | allocs/req |")
		if bw {
			w.printf(" MiB/s each way |")
		}
		w.printf("\n| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
		if bw {
			w.printf(" ---: |")
		}
		w.printf("\n")
		raw, rawOK := r.sum(wl, rawName)
		grpc, grpcOK := r.sum(wl, grpcName)
		for _, e := range r.cfg.systems {
			s, ok := r.sum(wl, e.name)
			if !ok {
				continue
			}
			name := r.title(e)
			if s.errors > 0 {
				name += fmt.Sprintf(" **(%d errors)**", s.errors)
			}
			base, baseOK := r.sum(wl, e.base)
			w.printf("| %s | %s | %s–%s | %s | %s | %s | %s | %s | %.1f |", name, fmtRate(s.rps),
				fmtRate(s.rpsMin), fmtRate(s.rpsMax), ratio(s.rps, raw.rps, rawOK), ratio(s.rps, grpc.rps, grpcOK),
				ratio(s.rps, base.rps, baseOK), fmtDur(s.p50), fmtDur(s.p99), s.allocs)
			if bw {
				w.printf(" %.0f |", s.rps*float64(wl.size)/(1<<20))
			}
			w.printf("\n")
		}
		w.printf("\n")
		for _, e := range r.cfg.systems {
			if !e.runs(wl) {
				w.printf("The batching systems (†) do not run with payloads over %s: a batch of %d would be a round trip of %s, longer than the window.\n\n",
					sizeName(maxBatchedSize), batchSize, sizeName(batchSize*wl.size))
				break
			}
		}
	}
	if f := r.failures(); len(f) > 0 {
		w.printf("## Errors\n\n")
		for _, s := range f {
			w.printf("- %s\n", s)
		}
		w.printf("\n")
	}
	if chart != "" {
		w.printf("![req/s by concurrency, 16 B](%s)\n", chart)
	}
	return w.err
}

func (r *report) title(e entry) string {
	if e.batch > 1 {
		return e.title + " †"
	}
	return e.title
}

func ratio(x, base float64, ok bool) string {
	if !ok || base <= 0 {
		return "–"
	}
	return trim3(x / base)
}

// fmtRate prints a rate with three significant digits: 987, 12.3k, 1.23M.
func fmtRate(v float64) string {
	switch {
	case v >= 1e6:
		return trim3(v/1e6) + "M"
	case v >= 1e3:
		return trim3(v/1e3) + "k"
	}
	return trim3(v)
}

func trim3(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.2f", v)
}

// fmtDur prints a latency with three significant digits in µs, ms or s.
func fmtDur(d time.Duration) string {
	switch {
	case d <= 0:
		return "–"
	case d >= time.Second:
		return trim3(d.Seconds()) + " s"
	case d >= time.Millisecond:
		return trim3(float64(d)/1e6) + " ms"
	}
	return trim3(float64(d)/1e3) + " µs"
}

type errWriter struct {
	w   io.Writer
	err error
}

func (w *errWriter) printf(format string, a ...any) {
	if w.err == nil {
		_, w.err = fmt.Fprintf(w.w, format, a...)
	}
}

// chartPalette tells up to ten systems apart (the "tab10" colours).
var chartPalette = []color.RGBA{
	{31, 119, 180, 255}, {255, 127, 14, 255}, {44, 160, 44, 255}, {214, 39, 40, 255},
	{148, 103, 189, 255}, {140, 86, 75, 255}, {227, 119, 194, 255}, {127, 127, 127, 255},
	{188, 189, 34, 255}, {23, 190, 207, 255},
}

// writeChart draws req/s by concurrency for payloads of size bytes, one line
// per system, both axes logarithmic, as a PNG at path. It reports false
// when no workload of that size ran.
func (r *report) writeChart(path string, size int) (bool, error) {
	var concs []int
	for _, wl := range r.cfg.workloads {
		if wl.size == size {
			concs = append(concs, wl.conc)
		}
	}
	if len(concs) == 0 {
		return false, nil
	}
	p := plot.New()
	p.Title.Text = fmt.Sprintf("req/s by concurrency, %s echo over loopback (median of %d round(s))", sizeName(size), r.cfg.rounds)
	p.Title.Padding = vg.Points(8)
	p.X.Label.Text = "concurrent goroutines"
	p.Y.Label.Text = "requests per second"
	p.X.Scale, p.Y.Scale = plot.LogScale{}, plot.LogScale{}
	var xt plot.ConstantTicks
	for _, c := range concs {
		xt = append(xt, plot.Tick{Value: float64(c), Label: fmt.Sprint(c)})
	}
	p.X.Tick.Marker = xt
	p.Y.Tick.Marker = decadeTicks{}
	p.Add(plotter.NewGrid())
	// The legend goes to the right of the plot, where no line can hide it.
	legend := plot.NewLegend()
	legend.Top, legend.Left = true, true

	lo, hi := math.Inf(1), math.Inf(-1)
	for i, e := range r.cfg.systems {
		var pts plotter.XYs
		for _, c := range concs {
			if s, ok := r.sum(workload{size: size, conc: c}, e.name); ok && s.rps > 0 {
				pts = append(pts, plotter.XY{X: float64(c), Y: s.rps})
				lo, hi = min(lo, s.rps), max(hi, s.rps)
			}
		}
		if len(pts) == 0 {
			continue
		}
		col := chartPalette[i%len(chartPalette)]
		line, points, err := plotter.NewLinePoints(pts)
		if err != nil {
			return false, err
		}
		line.Color = col
		line.Width = vg.Points(1.5)
		if e.batch > 1 || e.yardstick {
			line.Dashes = []vg.Length{vg.Points(5), vg.Points(3)}
		}
		points.Color = col
		points.Shape = draw.CircleGlyph{}
		p.Add(line, points)
		legend.Add(r.title(e), line, points)
	}
	if math.IsInf(lo, 1) {
		return false, nil
	}
	p.Y.Min = math.Pow(10, math.Floor(math.Log10(lo)))
	p.Y.Max = math.Pow(10, math.Ceil(math.Log10(hi)))
	if len(concs) > 1 {
		p.X.Min, p.X.Max = float64(concs[0])/1.5, float64(concs[len(concs)-1])*1.5
	} else {
		p.X.Min, p.X.Max = float64(concs[0])/2, float64(concs[0])*2
	}
	const width, height, legendWidth = 10 * vg.Inch, 6 * vg.Inch, 2.2 * vg.Inch
	img := vgimg.New(width, height)
	dc := draw.New(img)
	p.Draw(draw.Crop(dc, 0, -legendWidth, 0, 0))
	legend.Draw(draw.Crop(dc, width-legendWidth+vg.Points(8), 0, 0, -vg.Inch/2))
	f, err := os.Create(path)
	if err != nil {
		return false, err
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		return false, err
	}
	return true, f.Close()
}

// decadeTicks marks powers of ten with labels (1k, 10k, 1M) and the values
// between them without.
type decadeTicks struct{}

func (decadeTicks) Ticks(lo, hi float64) []plot.Tick {
	var ts []plot.Tick
	for e := math.Floor(math.Log10(lo)); e <= math.Ceil(math.Log10(hi)); e++ {
		d := math.Pow(10, e)
		for k := 1.0; k < 10; k++ {
			v := k * d
			if v < lo || v > hi {
				continue
			}
			t := plot.Tick{Value: v}
			if k == 1 {
				t.Label = decadeLabel(e)
			}
			ts = append(ts, t)
		}
	}
	return ts
}

// decadeLabel names 10^e: 1, 10, 100, 1k, 10k, 100k, 1M, ...
func decadeLabel(e float64) string {
	n := int(e)
	switch {
	case n < 0:
		return fmt.Sprintf("1e%d", n)
	case n >= 6:
		return "1" + strings.Repeat("0", n-6) + "M"
	case n >= 3:
		return "1" + strings.Repeat("0", n-3) + "k"
	}
	return "1" + strings.Repeat("0", n)
}
