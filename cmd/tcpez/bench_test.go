package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/tcpez/tcpez/client"
	"github.com/tcpez/tcpez/frame"
	"github.com/tcpez/tcpez/server"
	"github.com/tcpez/tcpez/span"
)

// benchJSON spells out the --json contract, so that renaming a field of
// the report breaks the tests rather than the scripts that read it.
type benchJSON struct {
	Requests     int64            `json:"requests"`
	Errors       int64            `json:"errors"`
	ErrorsByKind map[string]int64 `json:"errors_by_kind"`
	DurationS    float64          `json:"duration_s"`
	RPS          float64          `json:"rps"`
	MBs          float64          `json:"mb_s"`
	P50us        int64            `json:"p50_us"`
	P90us        int64            `json:"p90_us"`
	P99us        int64            `json:"p99_us"`
	P999us       int64            `json:"p999_us"`
	MaxUs        int64            `json:"max_us"`
	AllocsPerReq *float64         `json:"allocs_per_req"`
	Conns        int              `json:"conns"`
	Concurrency  int              `json:"concurrency"`
	Size         int              `json:"size"`
	Batch        int              `json:"batch"`
	Embedded     bool             `json:"embedded"`
	Protocol     string           `json:"protocol"`
	Interrupted  bool             `json:"interrupted"`
}

// decodeBench decodes the one JSON object that stdout must hold.
func decodeBench(t *testing.T, stdout string) benchJSON {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(stdout))
	var r benchJSON
	if err := dec.Decode(&r); err != nil {
		t.Fatalf("decoding %q: %v", stdout, err)
	}
	if err := dec.Decode(new(any)); err != io.EOF {
		t.Fatalf("more than one JSON value on stdout: %q", stdout)
	}
	return r
}

// checkSane checks what holds for every run: the errors add up, and the
// percentiles are ordered.
func checkSane(t *testing.T, r benchJSON) {
	t.Helper()
	var sum int64
	for _, kind := range []string{"timeout", "conn", "protocol", "mismatch", "other"} {
		n, ok := r.ErrorsByKind[kind]
		if !ok {
			t.Errorf("errors_by_kind lacks %q: %v", kind, r.ErrorsByKind)
		}
		sum += n
	}
	if sum != r.Errors || r.Errors > r.Requests {
		t.Errorf("errors %d, by kind %v, requests %d", r.Errors, r.ErrorsByKind, r.Requests)
	}
	if !(r.P50us <= r.P90us && r.P90us <= r.P99us && r.P99us <= r.P999us && r.P999us <= r.MaxUs) {
		t.Errorf("percentiles out of order: %+v", r)
	}
}

// bench runs the command in this process.
func bench(t *testing.T, ctx context.Context, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(ctx, append([]string{"bench"}, args...), &out, &errOut)
	return out.String(), errOut.String(), code
}

// startTestServer serves h on addr ("unix:/path" or a TCP address) and
// returns the address to dial.
func startTestServer(t *testing.T, addr string, h server.Handler) string {
	t.Helper()
	logger := logrus.New()
	logger.SetOutput(io.Discard)
	srv := server.New(h, server.Config{Logger: logger})
	l, err := srv.Listen(addr)
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	if l.Addr().Network() == "unix" {
		return "unix:" + l.Addr().String()
	}
	return l.Addr().String()
}

// startRawServer accepts connections and hands each to serve.
func startRawServer(t *testing.T, serve func(net.Conn)) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				serve(c)
			}()
		}
	}()
	return l.Addr().String()
}

// TestBenchBinary runs the built command as a user would.
func TestBenchBinary(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out, errOut bytes.Buffer
	cmd := exec.CommandContext(ctx, binary, "bench", "--requests", "2000", "--json")
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		t.Fatalf("%v; stderr %q", err, errOut.String())
	}
	r := decodeBench(t, out.String())
	checkSane(t, r)
	if r.Requests != 2000 || r.Errors != 0 || r.RPS <= 0 || r.P50us <= 0 || r.MBs <= 0 {
		t.Errorf("report %+v", r)
	}
	if !r.Embedded || r.AllocsPerReq == nil || *r.AllocsPerReq < 0 {
		t.Errorf("embedded %v, allocs_per_req %v", r.Embedded, r.AllocsPerReq)
	}
	if r.Conns != 1 || r.Concurrency != 64 || r.Size != 16 || r.Batch != 0 {
		t.Errorf("settings %+v", r)
	}
	if errOut.Len() != 0 {
		t.Errorf("stderr %q", errOut.String())
	}
}

func TestBenchBatch(t *testing.T) {
	out, errOut, code := bench(t, context.Background(), "--batch", "8", "--requests", "800", "--json", "--warmup", "50ms")
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	r := decodeBench(t, out)
	checkSane(t, r)
	if r.Requests != 800 || r.Errors != 0 || r.Batch != 8 || r.P50us <= 0 {
		t.Errorf("report %+v", r)
	}
}

// TestBenchRequestsNotMultipleOfBatch: the last batch is cut short, so
// that exactly --requests are sent.
func TestBenchRequestsNotMultipleOfBatch(t *testing.T) {
	out, errOut, code := bench(t, context.Background(), "--batch", "7", "--requests", "100", "--concurrency", "3", "--json", "--warmup", "0")
	if r := decodeBench(t, out); code != 0 || r.Requests != 100 || r.Errors != 0 {
		t.Fatalf("exit %d, stderr %q, report %+v", code, errOut, r)
	}
}

func TestBenchAddr(t *testing.T) {
	for name, addr := range map[string]string{
		"tcp":  "127.0.0.1:0",
		"unix": "unix:" + filepath.Join(t.TempDir(), "s.sock"),
	} {
		t.Run(name, func(t *testing.T) {
			target := startTestServer(t, addr, echoHandler(0))
			out, errOut, code := bench(t, context.Background(), "--addr", target, "--conns", "2", "--concurrency", "8",
				"--requests", "500", "--json", "--warmup", "50ms")
			if code != 0 {
				t.Fatalf("exit %d, stderr %q", code, errOut)
			}
			r := decodeBench(t, out)
			checkSane(t, r)
			if r.Requests != 500 || r.Errors != 0 || r.Embedded || r.Conns != 2 {
				t.Errorf("report %+v", r)
			}
			// Without the server in the process, its allocations are unknown.
			if r.AllocsPerReq != nil || !strings.Contains(out, `"allocs_per_req":null`) {
				t.Errorf("allocs_per_req in %s", out)
			}
		})
	}
}

// TestBenchWrongServers: a server that is not an echo server, or not a
// tcpez server, makes every request fail with the right kind of error;
// the report is still printed, and the exit status is 1.
func TestBenchWrongServers(t *testing.T) {
	notEcho := startTestServer(t, "127.0.0.1:0", server.HandlerFunc(
		func(_ context.Context, req []byte, _ *span.Span) ([]byte, error) {
			return append([]byte("not "), req...), nil
		}))
	garbage := startRawServer(t, func(c net.Conn) {
		buf := make([]byte, 64)
		for {
			if _, err := c.Read(buf); err != nil {
				return
			}
			if _, err := c.Write([]byte{0x80, 0, 0, 0}); err != nil { // a malformed header
				return
			}
		}
	})
	silent := startRawServer(t, func(c net.Conn) { _, _ = io.Copy(io.Discard, c) })

	for _, tc := range []struct {
		name, addr string
		args       []string
		kinds      []string // the kinds errors may be of
		must       string   // the kind some errors must be of
	}{
		{"mismatch", notEcho, []string{"--requests", "200"}, []string{"mismatch"}, "mismatch"},
		{"mismatch in batches", notEcho, []string{"--requests", "200", "--batch", "4"}, []string{"mismatch"}, "mismatch"},
		// Once the connection breaks, calls wait for the client's
		// reconnection, with backoff: hence few requests.
		{"protocol", garbage, []string{"--requests", "8", "--timeout", "1s"}, []string{"protocol", "conn", "timeout"}, "protocol"},
		{"timeout", silent, []string{"--requests", "4", "--timeout", "200ms"}, []string{"timeout"}, "timeout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"--addr", tc.addr, "--concurrency", "4", "--warmup", "0", "--json"}, tc.args...)
			out, errOut, code := bench(t, context.Background(), args...)
			r := decodeBench(t, out)
			checkSane(t, r)
			if code != 1 || r.Errors == 0 || r.Errors != r.Requests || r.ErrorsByKind[tc.must] == 0 {
				t.Fatalf("exit %d, report %+v", code, r)
			}
			var others int64
			for k, n := range r.ErrorsByKind {
				if !containsString(tc.kinds, k) {
					others += n
				}
			}
			if others != 0 {
				t.Errorf("errors of unexpected kinds: %v", r.ErrorsByKind)
			}
			want := fmt.Sprintf("tcpez bench: %d of %d requests failed\n", r.Errors, r.Requests)
			if errOut != want {
				t.Errorf("stderr %q, want %q", errOut, want)
			}
		})
	}
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestBenchHumanSummaryShowsErrors: without --json the kinds and the
// first error are spelled out.
func TestBenchHumanSummaryShowsErrors(t *testing.T) {
	silent := startRawServer(t, func(c net.Conn) { _, _ = io.Copy(io.Discard, c) })
	out, _, code := bench(t, context.Background(), "--addr", silent, "--requests", "2", "--concurrency", "2",
		"--timeout", "100ms", "--warmup", "0")
	for _, want := range []string{"errors                       2 (timeout 2)", "first error", "no answer within 100ms"} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in\n%s", want, out)
		}
	}
	if code != 1 {
		t.Errorf("exit %d", code)
	}
}

// TestBenchServiceMode loads an embedded protobuf service, single calls
// and batches, and checks every answer.
func TestBenchServiceMode(t *testing.T) {
	for _, extra := range [][]string{nil, {"--batch", "8"}} {
		args := append([]string{"--mode", "service", "--requests", "400", "--concurrency", "4", "--json"}, extra...)
		out, errOut, code := bench(t, context.Background(), args...)
		if code != 0 {
			t.Fatalf("%q: exit %d, stderr %q", args, code, errOut)
		}
		r := decodeBench(t, out)
		checkSane(t, r)
		if r.Requests != 400 || r.Errors != 0 {
			t.Fatalf("%q: %d requests, %d errors", args, r.Requests, r.Errors)
		}
	}
}

func TestBenchBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--nope"},
		{"--conns", "0"},
		{"--concurrency", "-1"},
		{"--size", "-1"},
		{"--batch", "-2"},
		{"--duration", "0"},
		{"--duration", "-1s", "--requests", "10"},
		{"--requests", "-5"},
		{"--timeout", "0"},
		{"--warmup", "-1s"},
		{"--mode", "protobuf"},
		{"--protocol", "v2"},
		{"--size", "many"},
		{"extra"},
	} {
		out, errOut, code := bench(t, context.Background(), args...)
		if code != 2 || out != "" || !strings.Contains(errOut, "usage: tcpez bench") {
			t.Errorf("%q: exit %d, stdout %q, stderr %q", args, code, out, errOut)
		}
	}
}

// TestBenchPlainProgress: output that is not a terminal gets a plain
// progress line a second, then the summary.
func TestBenchPlainProgress(t *testing.T) {
	out, errOut, code := bench(t, context.Background(), "--duration", "1500ms", "--warmup", "100ms", "--concurrency", "4")
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	progress := regexp.MustCompile(`(?m)^ +1\.0s +[1-9][0-9]* requests +[0-9]+ req/s$`)
	if !progress.MatchString(out) {
		t.Errorf("no progress line in\n%s", out)
	}
	if !strings.HasPrefix(out, "bench: embedded echo server on 127.0.0.1:") {
		t.Errorf("no description first in\n%s", out)
	}
	for _, want := range []string{"\nrequests ", "\nerrors                       0\n", "requests/s", "MB/s", "p99.9", "allocs/req (client+server)"} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in\n%s", want, out)
		}
	}
	// The summary comes after the last progress line, not amid them.
	if strings.LastIndex(out, " req/s\n") > strings.Index(out, "\nrequests ") {
		t.Errorf("progress after the summary in\n%s", out)
	}
}

// TestBenchJSONHasNoProgress: --json keeps stdout to the one object even
// when the run is long enough for progress.
func TestBenchJSONHasNoProgress(t *testing.T) {
	out, _, code := bench(t, context.Background(), "--duration", "1100ms", "--warmup", "0", "--concurrency", "2", "--json")
	if r := decodeBench(t, out); code != 0 || r.Requests == 0 || r.Interrupted {
		t.Fatalf("exit %d, report %+v", code, r)
	}
}

// TestBenchInterrupt: Ctrl-C ends the run early, and what was measured
// is reported.
func TestBenchInterrupt(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(300*time.Millisecond, cancel)
	start := time.Now()
	out, errOut, code := bench(t, ctx, "--duration", "1m", "--warmup", "0", "--json")
	if time.Since(start) > 30*time.Second {
		t.Fatalf("the run ignored the cancellation")
	}
	r := decodeBench(t, out)
	checkSane(t, r)
	if code != 0 || !r.Interrupted || r.Requests == 0 || r.Errors != 0 {
		t.Fatalf("exit %d, stderr %q, report %+v", code, errOut, r)
	}
}

// TestBenchInterruptDuringWarmup: nothing was measured, which is
// reported, not treated as a failure.
func TestBenchInterruptDuringWarmup(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	out, errOut, code := bench(t, ctx, "--warmup", "1m")
	if code != 0 || !strings.Contains(out, "requests                     0 (interrupted)") {
		t.Fatalf("exit %d, stderr %q, stdout\n%s", code, errOut, out)
	}
}

// TestBenchWhicheverFirst: with --duration and --requests, the first
// limit reached ends the run.
func TestBenchWhicheverFirst(t *testing.T) {
	out, _, _ := bench(t, context.Background(), "--requests", "300", "--duration", "1m", "--warmup", "0", "--json")
	if r := decodeBench(t, out); r.Requests != 300 {
		t.Errorf("requests first: %+v", r)
	}
	out, _, _ = bench(t, context.Background(), "--requests", "1000000000000", "--duration", "200ms", "--warmup", "0", "--json")
	if r := decodeBench(t, out); r.Requests == 0 || r.Requests >= 1000000000000 || r.Interrupted {
		t.Errorf("duration first: %+v", r)
	}
}

func TestBenchClassify(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want errKind
	}{
		{fmt.Errorf("tcpez/client: call abandoned: %w", context.DeadlineExceeded), kindTimeout},
		{fmt.Errorf("tcpez/client: call abandoned: %w (%w)", context.Canceled, fmt.Errorf("no answer within 1s: %w", context.DeadlineExceeded)), kindTimeout},
		{fmt.Errorf("tcpez/client: call abandoned: %w", context.Canceled), kindOther},
		{&client.ConnError{Addr: "a", Err: frame.ErrMalformedHeader}, kindProtocol},
		{client.ErrUnexpectedAnswer, kindProtocol},
		{&client.ConnError{Addr: "a", Err: io.EOF}, kindConn},
		{fmt.Errorf("%w: dial: refused", client.ErrNoConnection), kindConn},
		{client.ErrClosed, kindOther},
	} {
		if got := classify(tc.err); got != tc.want {
			t.Errorf("classify(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

func TestBenchClaim(t *testing.T) {
	l := &load{cfg: loadConfig{requests: 10}}
	var got []int
	for range 4 {
		got = append(got, l.claim(4))
	}
	if fmt.Sprint(got) != "[4 4 2 0]" {
		t.Errorf("claims %v", got)
	}
}

func TestBenchProgressKind(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, tc := range []struct {
		w       io.Writer
		jsonOut bool
		want    progressKind
	}{
		{&bytes.Buffer{}, false, progressPlain},
		{f, false, progressPlain}, // a file, but no terminal
		{f, true, progressNone},
	} {
		if got := progressKindFor(tc.w, tc.jsonOut); got != tc.want {
			t.Errorf("%T json %v: %v, want %v", tc.w, tc.jsonOut, got, tc.want)
		}
	}
}

func TestBenchNoServer(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	out, errOut, code := bench(t, context.Background(), "--addr", addr)
	if code != 1 || out != "" || strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, "connection refused") {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}

// TestBenchRate: a plain line's rate covers the last tick, however long
// it was; the bar's covers at least a second, the time so far before.
func TestBenchRate(t *testing.T) {
	t0 := time.Now()
	for _, tc := range []struct {
		window time.Duration
		ms     []int
		n      []int64
		want   []float64
	}{
		{0, []int{1000, 1995, 2985}, []int64{1000, 2990, 3485}, []float64{1000, 2000, 500}},
		{time.Second, []int{200, 500, 1000, 1500}, []int64{200, 600, 2500, 9000}, []float64{1000, 1200, 2500, 2500}},
	} {
		r := rate{window: tc.window, at: t0}
		for i, ms := range tc.ms {
			if got := r.update(t0.Add(time.Duration(ms)*time.Millisecond), tc.n[i]); got != tc.want[i] {
				t.Errorf("window %v, at %d ms: %v, want %v", tc.window, ms, got, tc.want[i])
			}
		}
	}
}

// TestBenchReportsProtocol: the report names the protocol measured, which
// "auto" settles by asking the server: mux for the embedded server, v1 for
// a server that answers the preface as a v1 request (an echo loop).
func TestBenchReportsProtocol(t *testing.T) {
	v1 := startRawServer(t, func(c net.Conn) {
		r := frame.NewReader(c, frame.Limits{})
		for {
			p, err := r.ReadFrame(nil)
			if err != nil {
				return
			}
			if _, err := c.Write(frame.AppendFrame(nil, p)); err != nil {
				return
			}
		}
	})
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "mux"},
		{[]string{"--protocol", "v1"}, "v1"},
		{[]string{"--addr", v1}, "v1"},
	} {
		args := append([]string{"--requests", "200", "--concurrency", "4", "--json", "--warmup", "0"}, tc.args...)
		out, errOut, code := bench(t, context.Background(), args...)
		if code != 0 {
			t.Fatalf("%q: exit %d, stderr %q", args, code, errOut)
		}
		if r := decodeBench(t, out); r.Protocol != tc.want || r.Errors != 0 {
			t.Errorf("%q: protocol %q, %d errors; want %q", args, r.Protocol, r.Errors, tc.want)
		}
	}
}
