package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"runtime"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/tcpez/tcpez/client"
	"github.com/tcpez/tcpez/frame"
	"github.com/tcpez/tcpez/protoserver"
	"github.com/tcpez/tcpez/server"
)

// benchOptions are the bench command's flags.
type benchOptions struct {
	addr        string // empty: an embedded echo server
	conns       int
	concurrency int
	size        int
	batch       int   // 0: one Call per request; K: Pipelines of K
	requests    int64 // 0: no limit
	duration    time.Duration
	timeout     time.Duration
	warmup      time.Duration
	jsonOut     bool
	mode        string
	protocol    string // "auto", "v1" or "mux"; see resolveProtocol
	// method, data and protoset: load this service method with this
	// JSON request instead of the echo (service mode).
	method, data, protoset string
}

func (o *benchOptions) embedded() bool { return o.addr == "" }

func (o *benchOptions) loadConfig() loadConfig {
	return loadConfig{
		concurrency: o.concurrency,
		size:        o.size,
		batch:       o.batch,
		requests:    o.requests,
		timeout:     o.timeout,
	}
}

const benchUsage = `usage: tcpez bench [flags]

Loads a tcpez echo server with requests and reports throughput, latency
and errors. Without --addr it starts an echo server in this process and
also reports allocations per request. Every answer must equal its request;
one that does not counts as an error of kind "mismatch".

The run ends after --duration or --requests, whichever comes first, or at
Ctrl-C; the summary covers what was measured either way.

Exit status: 0 when every request got its right answer, 1 when any failed
(the summary is printed all the same), 2 for bad flags.

Flags:
`

func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseBench(args, stderr)
	if err != nil {
		return err
	}
	addr, stopServer, err := benchTarget(o.addr, o.mode)
	if err != nil {
		return err
	}
	defer stopServer()
	proto, err := resolveProtocol(ctx, addr, o.protocol, o.timeout)
	if err != nil {
		return err
	}
	o.protocol = proto.String()
	c, err := client.New([]string{addr}, client.Config{ConnsPerAddr: o.conns, Protocol: proto})
	if err != nil {
		return err
	}
	// Deferred after stopServer, so it runs first: the embedded server's
	// graceful shutdown then finds no connections left to wait for.
	defer c.Close()
	// New does not wait for the network: an unreachable server is
	// reported now, not as a run of failed requests.
	if err := c.WaitConnected(ctx); err != nil {
		return err
	}

	if !o.jsonOut {
		fmt.Fprintln(stdout, describeRun(o, addr))
	}
	rep, err := benchmark(ctx, c, o, addr, stdout)
	if err != nil {
		return err
	}
	if o.jsonOut {
		if err := writeJSON(stdout, rep); err != nil {
			return err
		}
	} else {
		writeSummary(stdout, rep)
	}
	if rep.Errors > 0 {
		return fmt.Errorf("%d of %d requests failed", rep.Errors, rep.Requests)
	}
	return nil
}

func parseBench(args []string, stderr io.Writer) (benchOptions, error) {
	var o benchOptions
	fs := newFlags("bench", stderr)
	fs.StringVar(&o.addr, "addr", "", `server to load, "host:port" or "unix:/path"; empty: an embedded echo server`)
	fs.IntVar(&o.conns, "conns", client.DefaultConnsPerAddr, "client connections per address")
	fs.IntVar(&o.concurrency, "concurrency", 64, "goroutines sending requests")
	fs.IntVar(&o.size, "size", 16, "request payload size, in bytes")
	fs.DurationVar(&o.duration, "duration", 5*time.Second, "measure this long (with --requests alone: no time limit)")
	fs.Int64Var(&o.requests, "requests", 0, "stop after this many measured requests (0: no limit)")
	fs.IntVar(&o.batch, "batch", 0, "send explicit Pipelines of this many requests (0: single calls); latency is per batch")
	fs.DurationVar(&o.timeout, "timeout", 5*time.Second, "time each call (or batch) has for its answer")
	fs.DurationVar(&o.warmup, "warmup", 500*time.Millisecond, "load this long before measuring")
	fs.BoolVar(&o.jsonOut, "json", false, "print the result as one JSON object, and no progress")
	fs.StringVar(&o.protocol, "protocol", "auto", `wire protocol: "mux", "v1", or "auto": mux if the server speaks it, else v1 (the report says which was measured)`)
	fs.StringVar(&o.mode, "mode", "bytes", `what to send: "bytes", raw frames to an echo server, or "service", protobuf calls of method "`+echoMethod+`" (a BytesValue echo)`)
	fs.StringVar(&o.method, "method", "", `load this service-mode method instead (implies --mode service), with the request of --data; answers are not checked, only their status`)
	fs.StringVar(&o.data, "data", "{}", "the request of --method, as JSON")
	fs.StringVar(&o.protoset, "protoset", "", "message types for --method from this descriptor set instead of the service's reflection method")
	fs.Usage = func() {
		fmt.Fprint(stderr, benchUsage)
		fs.PrintDefaults()
	}
	if err := parse(fs, args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, badFlag(fs, "unexpected argument %q", fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	// --requests alone means "exactly N", not "N or 5 s, whichever first".
	if o.requests > 0 && !set["duration"] {
		o.duration = 0
	}
	if o.method != "" {
		o.mode = "service"
		if o.batch > 0 {
			return o, badFlag(fs, "--method does not take --batch")
		}
	}
	return o, o.check(fs)
}

// check rejects values the flag package cannot: it sends service mode
// away with an error of its own, the rest as usage errors.
func (o *benchOptions) check(fs *flag.FlagSet) error {
	switch o.mode {
	case "bytes", "service":
	default:
		return badFlag(fs, `invalid --mode %q: want "bytes" or "service"`, o.mode)
	}
	switch o.protocol {
	case "auto", "v1", "mux":
	default:
		return badFlag(fs, `invalid --protocol %q: want "auto", "v1" or "mux"`, o.protocol)
	}
	switch {
	case o.conns < 1:
		return badFlag(fs, "--conns must be at least 1")
	case o.concurrency < 1:
		return badFlag(fs, "--concurrency must be at least 1")
	case o.size < 0 || o.size > frame.DefaultMaxFrameSize:
		return badFlag(fs, "--size must be between 0 and %d", frame.DefaultMaxFrameSize)
	case o.batch < 0 || o.batch > frame.DefaultMaxBatchCount:
		return badFlag(fs, "--batch must be between 0 and %d", frame.DefaultMaxBatchCount)
	case o.requests < 0:
		return badFlag(fs, "--requests must not be negative")
	case o.duration < 0, o.duration == 0 && o.requests == 0:
		return badFlag(fs, "--duration must be positive, or 0 with --requests")
	case o.timeout <= 0:
		return badFlag(fs, "--timeout must be positive")
	case o.warmup < 0:
		return badFlag(fs, "--warmup must not be negative")
	}
	return nil
}

// badFlag reports a bad value the way the flag package reports a bad
// flag, so that it exits with status 2 like one.
func badFlag(fs *flag.FlagSet, format string, args ...any) error {
	fmt.Fprintf(fs.Output(), format+"\n", args...)
	fs.Usage()
	return errUsage
}

// benchTarget returns the address to load: addr, or with none that of an
// echo server started here, which stop shuts down.
func benchTarget(addr, mode string) (target string, stop func(), err error) {
	if addr != "" {
		return addr, func() {}, nil
	}
	// Its logs would go nowhere; a disabled level also skips formatting
	// them, which the allocation count would otherwise include.
	logger := logrus.New()
	logger.SetOutput(io.Discard)
	logger.SetLevel(logrus.PanicLevel)
	var h server.Handler = echoHandler(0)
	if mode == "service" {
		h = demoService(logger)
	}
	srv := server.New(h, server.Config{Logger: logger})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	stop = func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if srv.Shutdown(ctx) != nil {
			_ = srv.Close()
		}
		<-served
	}
	return l.Addr().String(), stop, nil
}

// benchmark warms up, measures until the run ends, and reports.
func benchmark(ctx context.Context, c *client.Client, o benchOptions, addr string, stdout io.Writer) (benchReport, error) {
	cfg := o.loadConfig()
	if o.mode == "service" {
		cfg.svc = protoserver.NewClient(c, protoserver.ClientConfig{})
	}
	if o.method != "" {
		var err error
		if cfg.call, err = loadedCall(ctx, cfg.svc, o); err != nil {
			return benchReport{}, err
		}
	}
	l := startLoad(ctx, c, cfg)
	interrupted := o.warmup > 0 && !await(ctx, o.warmup, nil)

	// Allocations are counted for the whole process, which is only
	// meaningful when the process is client and server and nothing else.
	var before, after runtime.MemStats
	if o.embedded() {
		runtime.ReadMemStats(&before)
	}
	// Interrupted in the warm-up, the window never opens: a call that
	// happened to finish while the load stopped would be reported as the
	// whole measurement.
	start := time.Now()
	stopProgress := func() {}
	if !interrupted {
		start = l.measure()
		stopProgress = showProgress(stdout, progressKindFor(stdout, o.jsonOut),
			progressLimits{duration: o.duration, requests: o.requests}, l.count)
		interrupted = !await(ctx, o.duration, l.finished)
	}
	l.stop()
	elapsed := time.Since(start)
	if o.embedded() {
		runtime.ReadMemStats(&after)
	}
	stopProgress()

	rep := newReport(o, addr, l.result(), elapsed)
	rep.Interrupted = interrupted
	if o.embedded() && rep.Requests > 0 {
		a := float64(after.Mallocs-before.Mallocs) / float64(rep.Requests)
		rep.AllocsPerReq = &a
	}
	return rep, nil
}

// await waits d (no limit when d is 0) or until done is closed. It
// reports false when ctx ended first.
func await(ctx context.Context, d time.Duration, done <-chan struct{}) bool {
	var timeout <-chan time.Time
	if d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case <-ctx.Done():
		return false
	case <-timeout:
	case <-done:
	}
	return true
}

// resolveProtocol turns --protocol into the protocol the run measures:
// "auto" asks the server once, waiting for its acknowledgement no longer
// than a call may wait for an answer, so that the report names what was
// measured rather than what was asked for.
func resolveProtocol(ctx context.Context, addr, name string, timeout time.Duration) (client.Protocol, error) {
	switch name {
	case "v1":
		return client.ProtocolV1, nil
	case "mux":
		return client.ProtocolMux, nil
	}
	probe, err := client.New([]string{addr}, client.Config{Protocol: client.ProtocolMux, MaxRetries: -1, DialTimeout: timeout})
	if err != nil {
		return 0, err
	}
	defer probe.Close()
	// New does not dial; a refusal ends the first connection's wait at once.
	err = probe.WaitConnected(ctx)
	if errors.Is(err, client.ErrMuxRefused) {
		return client.ProtocolV1, nil
	}
	if err != nil {
		return 0, err
	}
	return client.ProtocolMux, ctx.Err()
}
