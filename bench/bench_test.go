package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestEverySystemEchoes checks that every system answers each request with
// its own payload — from several goroutines at once, at every payload size
// of the matrix — and that a call reports the number of requests it made.
func TestEverySystemEchoes(t *testing.T) {
	for _, e := range registry {
		t.Run(e.name, func(t *testing.T) {
			sys := e.new()
			t.Cleanup(sys.Close)
			if err := sys.Start(); err != nil {
				t.Fatal(err)
			}
			const goroutines, calls = 4, 5
			var wg sync.WaitGroup
			errs := make(chan error, goroutines)
			for g := range goroutines {
				c, err := sys.NewCaller()
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(c.Close)
				wg.Add(1)
				go func() {
					defer wg.Done()
					for _, size := range []int{0, 1, 16, 4096} {
						for i := range calls {
							req := bytes.Repeat([]byte{byte(g*16 + i)}, size)
							if err := callOnce(c, req, e.batch); err != nil {
								errs <- fmt.Errorf("goroutine %d, %d bytes: %w", g, size, err)
								return
							}
						}
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			// The bandwidth case's size, once.
			c, err := sys.NewCaller()
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if err := callOnce(c, bytes.Repeat([]byte("tcpez"), bandwidthCase.size/5), e.batch); err != nil {
				t.Errorf("%d bytes: %v", bandwidthCase.size, err)
			}
		})
	}
}

func callOnce(c caller, req []byte, batch int) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	want := bytes.Clone(req)
	n, err := c.Call(ctx, req)
	if err != nil {
		return err
	}
	if n != batch {
		return fmt.Errorf("call made %d requests, want %d", n, batch)
	}
	if !bytes.Equal(req, want) {
		return errors.New("the caller changed the request")
	}
	return nil
}

// TestQuickRun runs the --quick path with tiny windows for three systems and
// checks the table, RESULTS.md and the chart.
func TestQuickRun(t *testing.T) {
	dir := t.TempDir()
	var stdout, stderr bytes.Buffer
	args := []string{"--quick", "--only", "tcpez,grpc-unary,raw", "--warmup", "20ms", "--measure", "60ms", "--out", dir}
	if err := mainErr(args, &stdout, &stderr); err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	out := stdout.String()
	for _, want := range []string{
		"## 16 B, concurrency 1\n", "## 16 B, concurrency 16\n",
		"| tcpez Call | ", "| gRPC unary | ", "| raw loop | ",
		"| nproc | ", "| Go | go", "--quick",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the table lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "gRPC bidi") || strings.Contains(out, "## Errors") {
		t.Errorf("unexpected system or errors in the table:\n%s", out)
	}
	md, err := os.ReadFile(filepath.Join(dir, "RESULTS.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(md, []byte("![req/s by concurrency, 16 B](rps.png)")) {
		t.Errorf("RESULTS.md does not show the chart:\n%s", md)
	}
	png, err := os.ReadFile(filepath.Join(dir, "rps.png"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) {
		t.Error("rps.png is not a PNG")
	}
	// Every measured cell made requests.
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "| tcpez Call | ") || strings.HasPrefix(line, "| raw loop | ") {
			if f := strings.Split(line, "|"); strings.TrimSpace(f[2]) == "0.00" {
				t.Errorf("no requests: %s", line)
			}
		}
	}
}

// TestQuickDoesNotWrite checks that a smoke run leaves results/ alone.
func TestQuickDoesNotWrite(t *testing.T) {
	var o options
	o.quick = true
	o.out = "results"
	cfg, _, err := o.config(map[string]bool{})
	if err != nil {
		t.Fatal(err)
	}
	if o.out != "" || cfg.rounds != 1 || len(cfg.workloads) != 2 {
		t.Errorf("--quick: out %q, %d rounds, workloads %v", o.out, cfg.rounds, cfg.workloads)
	}
}

// TestWrongAnswersCount checks that the runner counts a system whose
// answers are wrong as failing, and that the report says so.
func TestWrongAnswersCount(t *testing.T) {
	e := entry{name: "liar", title: "liar", batch: 1, new: func() system { return liar{} }}
	s, err := runCell(context.Background(), e, workload{size: 16, conc: 2}, 5*time.Millisecond, 20*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if s.errors == 0 || !errors.Is(s.firstErr, errMismatch) || s.reqs != 0 {
		t.Fatalf("got %d errors (%v), %d requests; want errors and no requests", s.errors, s.firstErr, s.reqs)
	}
	w := workload{size: 16, conc: 2}
	rep := &report{cfg: runConfig{systems: []entry{e}, workloads: []workload{w}, rounds: 1}, res: results{w: {"liar": {s}}}}
	var b bytes.Buffer
	if err := rep.writeMarkdown(&b, ""); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "## Errors") || len(rep.failures()) != 1 {
		t.Errorf("the report hides the errors:\n%s", b.String())
	}
}

type liar struct{}

func (liar) Start() error               { return nil }
func (liar) NewCaller() (caller, error) { return liar{}, nil }
func (liar) Close()                     {}
func (liar) Call(_ context.Context, req []byte) (int, error) {
	ans := bytes.Clone(req)
	ans[0]++
	return 1, checkEcho(req, ans)
}

func TestSelectSystems(t *testing.T) {
	for only, want := range map[string]string{
		"":                  strings.Join(systemNames(), ","),
		"raw":               "raw",
		"tcpez*":            "tcpez,tcpez-mux,tcpez-pipeline64,tcpez-pipeline64-v1,tcpez-conns4,tcpez-service,tcpez-service-vt",
		"grpc-unary, raw*,": "grpc-unary,raw,raw-batch64,raw-pipelined",
	} {
		es, err := selectSystems(only)
		if err != nil {
			t.Errorf("%q: %v", only, err)
			continue
		}
		var got []string
		for _, e := range es {
			got = append(got, e.name)
		}
		if strings.Join(got, ",") != want {
			t.Errorf("%q selects %v, want %s", only, got, want)
		}
	}
	if _, err := selectSystems("tcpez,nosuch"); err == nil {
		t.Error("an unknown name was accepted")
	}
}

func TestFormats(t *testing.T) {
	for _, c := range []struct{ got, want string }{
		{fmtRate(987), "987"}, {fmtRate(12345), "12.3k"}, {fmtRate(1234567), "1.23M"},
		{fmtDur(12345 * time.Nanosecond), "12.3 µs"}, {fmtDur(1500 * time.Microsecond), "1.50 ms"},
		{sizeName(16), "16 B"}, {sizeName(4096), "4 KiB"}, {sizeName(1 << 20), "1 MiB"},
		{decadeLabel(0), "1"}, {decadeLabel(4), "10k"}, {decadeLabel(7), "10M"},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
}

// TestHungSystemEnds checks that a system whose calls never return is torn
// down and reported, not waited for forever.
func TestHungSystemEnds(t *testing.T) {
	defer func(g time.Duration) { hangGrace = g }(hangGrace)
	hangGrace = 50 * time.Millisecond
	e := entry{name: "staller", title: "staller", batch: 1, new: func() system { return &staller{stop: make(chan struct{})} }}
	s, err := runCell(context.Background(), e, workload{size: 16, conc: 3}, 5*time.Millisecond, 10*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if s.errors == 0 || s.reqs != 0 {
		t.Errorf("got %d errors (%v), %d requests; want the hang reported", s.errors, s.firstErr, s.reqs)
	}
}

// staller's calls block until it is closed.
type staller struct {
	stop chan struct{}
	once sync.Once
}

func (s *staller) Start() error               { return nil }
func (s *staller) NewCaller() (caller, error) { return s, nil }
func (s *staller) Close()                     { s.once.Do(func() { close(s.stop) }) }
func (s *staller) Call(context.Context, []byte) (int, error) {
	<-s.stop
	return 0, errors.New("closed")
}

// TestStreamCase runs the stream case small: it echoes, and the stream's
// heap stays within 16 MiB (runStreamCase fails otherwise). The ratio to
// the raw loop is for -stream 1024 on a quiet machine, not a test.
func TestStreamCase(t *testing.T) {
	var out strings.Builder
	if err := runStreamCase(context.Background(), 32, 1, &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "32 MiB echoed") {
		t.Fatalf("report:\n%s", out.String())
	}
}

// BenchmarkLarge runs the 1 MiB case (concurrency 4, one client) of the
// systems that the large-payload ratios compare, as Go benchmarks, so that
// two builds can be compared with benchstat over many runs on a noisy
// machine:
//
//	go test -run '^$' -bench Large -benchtime 400x -count 6 . > large.txt
func BenchmarkLarge(b *testing.B) {
	for _, name := range []string{"tcpez", "tcpez-mux", "tcpez-service", "tcpez-service-vt", "raw"} {
		b.Run(name, func(b *testing.B) {
			var e entry
			for _, r := range registry {
				if r.name == name {
					e = r
				}
			}
			sys := e.new()
			b.Cleanup(sys.Close)
			if err := sys.Start(); err != nil {
				b.Fatal(err)
			}
			// RunParallel runs a multiple of GOMAXPROCS goroutines: 4 on
			// the 2-core machine the figures come from.
			par := max(1, 4/runtime.GOMAXPROCS(0))
			conc := par * runtime.GOMAXPROCS(0)
			callers := make(chan caller, conc)
			for range conc {
				c, err := sys.NewCaller()
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(c.Close)
				callers <- c
			}
			b.SetParallelism(par)
			b.SetBytes(int64(bandwidthCase.size))
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				c := <-callers
				req := bytes.Repeat([]byte{'x'}, bandwidthCase.size)
				for pb.Next() {
					if _, err := c.Call(context.Background(), req); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// TestSystemsTakeTurns checks that the systems of a cell are measured one
// at a time, each in several slices: a call of one never overlaps a call
// of another, and each is counted.
func TestSystemsTakeTurns(t *testing.T) {
	var turns turnLog
	mk := func(name string) entry {
		return entry{name: name, title: name, batch: 1, new: func() system { return &turnTaker{name: name, log: &turns} }}
	}
	es := []entry{mk("a"), mk("b"), mk("c")}
	ss, err := runCells(context.Background(), es, workload{size: 16, conc: 3}, 5*time.Millisecond, 40*time.Millisecond, 10*time.Millisecond, 1)
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range ss {
		if s.errors != 0 || s.reqs == 0 || s.rps == 0 {
			t.Errorf("%s: %d requests, %.0f req/s, %d errors (%v)", es[i].name, s.reqs, s.rps, s.errors, s.firstErr)
		}
	}
	turns.mu.Lock()
	defer turns.mu.Unlock()
	if turns.overlaps != 0 {
		t.Errorf("%d calls overlapped a call of another system", turns.overlaps)
	}
	// 3 warm-ups and 4 slices of each: a change of system between turns.
	if turns.switches < 3+3*4-1 {
		t.Errorf("the systems took %d turns, want at least %d", turns.switches+1, 3+3*4)
	}
}

// turnLog records which system is calling.
type turnLog struct {
	mu       sync.Mutex
	active   string
	inFlight int
	last     string
	switches int
	overlaps int
}

type turnTaker struct {
	name string
	log  *turnLog
}

func (s *turnTaker) Start() error               { return nil }
func (s *turnTaker) NewCaller() (caller, error) { return s, nil }
func (s *turnTaker) Close()                     {}
func (s *turnTaker) Call(_ context.Context, req []byte) (int, error) {
	l := s.log
	l.mu.Lock()
	if l.inFlight > 0 && l.active != s.name {
		l.overlaps++
	}
	if l.last != "" && l.last != s.name {
		l.switches++
	}
	l.active, l.last = s.name, s.name
	l.inFlight++
	l.mu.Unlock()
	time.Sleep(50 * time.Microsecond)
	l.mu.Lock()
	l.inFlight--
	l.mu.Unlock()
	return 1, checkEcho(req, req)
}
