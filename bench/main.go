// Command bench measures, in one process and on loopback, the same echo
// workload through tcpez and other RPC systems, and writes a markdown table
// and a chart of the results. See README.md.
//
//	cd bench && go run .            # the full matrix, into results/
//	cd bench && go run . --quick    # a smoke run, printed only
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"
)

// options are the command's flags.
type options struct {
	quick     bool
	only      string
	rounds    int
	warmup    time.Duration
	measure   time.Duration
	slice     time.Duration
	concs     string
	sizes     string
	bandwidth bool
	out       string
	list      bool
	cpuprof   string
	stream    int
}

func (o *options) register(fs *flag.FlagSet) {
	fs.BoolVar(&o.quick, "quick", false, "smoke run: concurrency 1 and 16, 16 B only, 1 round, 100ms warm-up and 200ms windows; prints only, unless -out is given")
	fs.StringVar(&o.only, "only", "", "comma-separated names or globs of the systems to run, e.g. 'tcpez*,grpc-unary' (-list shows them)")
	fs.IntVar(&o.rounds, "rounds", 3, "rounds; each runs every cell once, the systems in rotated order")
	fs.DurationVar(&o.warmup, "warmup", 300*time.Millisecond, "warm-up per cell, not measured")
	fs.DurationVar(&o.measure, "measure", time.Second, "measuring window per cell and system")
	fs.DurationVar(&o.slice, "slice", 200*time.Millisecond, "the systems of a cell are measured in turn, a slice at a time (each after a ramp of a quarter slice), until each has had its window; 0: the whole window at once")
	fs.StringVar(&o.concs, "conc", "1,16,256", "concurrencies (goroutines over one client)")
	fs.StringVar(&o.sizes, "sizes", "16,4096", "payload sizes in bytes, at most 1 MiB")
	fs.BoolVar(&o.bandwidth, "bandwidth", true, "add the bandwidth case: 1 MiB payloads at concurrency 4")
	fs.StringVar(&o.out, "out", "results", "directory for RESULTS.md and rps.png; empty: print only")
	fs.BoolVar(&o.list, "list", false, "list the systems and exit")
	fs.StringVar(&o.cpuprof, "cpuprofile", "", "write a CPU profile of the whole run (both sides of every system) to this file")
	fs.IntVar(&o.stream, "stream", 0, "run only the stream case: this many MiB echoed through one tcpez stream, beside the raw loop, -rounds times (1024: 1 GiB)")
}

// bandwidthCase is the large-payload cell of the matrix.
var bandwidthCase = workload{size: 1 << 20, conc: 4}

// config turns the options into what run measures. set holds the names of
// the flags given on the command line: --quick changes only the defaults.
func (o *options) config(set map[string]bool) (runConfig, string, error) {
	if o.quick {
		if !set["rounds"] {
			o.rounds = 1
		}
		if !set["warmup"] {
			o.warmup = 100 * time.Millisecond
		}
		if !set["measure"] {
			o.measure = 200 * time.Millisecond
		}
		if !set["slice"] {
			o.slice = 100 * time.Millisecond
		}
		if !set["conc"] {
			o.concs = "1,16"
		}
		if !set["sizes"] {
			o.sizes = "16"
		}
		if !set["bandwidth"] {
			o.bandwidth = false
		}
		if !set["out"] {
			o.out = "" // a smoke run must not overwrite the committed results
		}
	}
	cfg := runConfig{rounds: o.rounds, warmup: o.warmup, measure: o.measure, slice: o.slice}
	if o.rounds < 1 || o.warmup < 0 || o.measure <= 0 || o.slice < 0 {
		return cfg, "", errors.New("need -rounds ≥ 1, -warmup ≥ 0, -measure > 0 and -slice ≥ 0")
	}
	var err error
	if cfg.systems, err = selectSystems(o.only); err != nil {
		return cfg, "", err
	}
	concs, err := parseInts("-conc", o.concs)
	if err != nil {
		return cfg, "", err
	}
	sizes, err := parseInts("-sizes", o.sizes)
	if err != nil {
		return cfg, "", err
	}
	for _, s := range sizes {
		if s > 1<<20 {
			// gRPC refuses messages over 4 MiB by default, and a batch of
			// 64 would hold hundreds of MiB.
			return cfg, "", fmt.Errorf("-sizes: %d bytes is over the 1 MiB the matrix allows", s)
		}
		for _, c := range concs {
			cfg.workloads = append(cfg.workloads, workload{size: s, conc: c})
		}
	}
	if o.bandwidth {
		cfg.workloads = append(cfg.workloads, bandwidthCase)
	}
	if len(cfg.workloads) == 0 {
		return cfg, "", errors.New("no workload: give -conc and -sizes, or -bandwidth")
	}
	return cfg, o.describe(), nil
}

func parseInts(flagName, s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%s: %q is not a positive integer", flagName, f)
		}
		out = append(out, n)
	}
	return out, nil
}

// describe is the flags in force, for the report.
func (o *options) describe() string {
	var b strings.Builder
	if o.quick {
		b.WriteString(" --quick")
	}
	if o.only != "" {
		fmt.Fprintf(&b, " --only '%s'", o.only)
	}
	fmt.Fprintf(&b, " --rounds %d --warmup %s --measure %s --slice %s --conc %s --sizes %s --bandwidth=%t",
		o.rounds, o.warmup, o.measure, o.slice, o.concs, o.sizes, o.bandwidth)
	return b.String()
}

// estimate is roughly how long cfg takes: the cells, plus about 50ms each
// to start and stop a system and its callers.
func estimate(cfg runConfig) time.Duration {
	cells := 0
	for _, w := range cfg.workloads {
		for _, e := range cfg.systems {
			if e.runs(w) {
				cells += cfg.rounds
			}
		}
	}
	slice, n := turns(cfg.measure, cfg.slice)
	window := time.Duration(n) * (slice + slice/4)
	return time.Duration(cells) * (cfg.warmup + window + 50*time.Millisecond)
}

func main() {
	err := mainErr(os.Args[1:], os.Stdout, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func mainErr(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	o.register(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if o.stream > 0 {
		return runStreamCase(context.Background(), o.stream, max(o.rounds, 1), stdout)
	}
	if o.list {
		for _, e := range registry {
			fmt.Fprintf(stdout, "%-17s %s\n", e.name, e.note)
		}
		return nil
	}
	set := make(map[string]bool)
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	cfg, flags, err := o.config(set)
	if err != nil {
		return err
	}
	cfg.progress = stderr

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	fmt.Fprintf(stderr, "bench: %d systems × %d workloads × %d rounds, about %s\n",
		len(cfg.systems), len(cfg.workloads), cfg.rounds, estimate(cfg).Round(time.Second))
	stopProfile, err := startCPUProfile(o.cpuprof)
	if err != nil {
		return err
	}
	res, runErr := run(ctx, cfg)
	stopProfile()
	if runErr != nil && !errors.Is(runErr, context.Canceled) {
		return runErr
	}
	rep := &report{machine: thisMachine(), flags: flags, cfg: cfg, res: res}
	if err := emit(rep, o.out, stdout, stderr); err != nil {
		return err
	}
	if runErr != nil {
		return fmt.Errorf("interrupted: %w", runErr)
	}
	if f := rep.failures(); len(f) > 0 {
		return fmt.Errorf("%d cells had errors:\n  %s", len(f), strings.Join(f, "\n  "))
	}
	return nil
}

// emit prints the markdown to stdout and, with a directory out, writes it
// to out/RESULTS.md with the chart out/rps.png.
func emit(rep *report, out string, stdout, stderr io.Writer) error {
	chart := ""
	if out != "" {
		if err := os.MkdirAll(out, 0o755); err != nil {
			return err
		}
		ok, err := rep.writeChart(filepath.Join(out, "rps.png"), 16)
		if err != nil {
			return fmt.Errorf("chart: %w", err)
		}
		if ok {
			chart = "rps.png"
		}
	}
	fmt.Fprintln(stdout)
	if err := rep.writeMarkdown(stdout, chart); err != nil {
		return err
	}
	if out == "" {
		return nil
	}
	f, err := os.Create(filepath.Join(out, "RESULTS.md"))
	if err != nil {
		return err
	}
	if err := rep.writeMarkdown(f, chart); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "bench: wrote %s\n", filepath.Join(out, "RESULTS.md"))
	if chart != "" {
		fmt.Fprintf(stderr, "bench: wrote %s\n", filepath.Join(out, chart))
	}
	return nil
}

// startCPUProfile starts profiling the process into path, unless path is
// empty, and returns what stops it.
func startCPUProfile(path string) (stop func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}
