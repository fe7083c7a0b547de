// Command memcache runs the same load against a real memcached and
// against kvcache's memcached listener (examples/kvcache --memcache), each
// in a process of its own on 127.0.0.1, and prints their throughput side
// by side: get and set of 16 B and 4 KiB values.
//
//	cd bench && go run ./memcache                 # 3 rounds, printed
//	cd bench && go run ./memcache -out results    # also results/MEMCACHED.md
//
// The load generator is a plain loop per connection, no client library:
// each of -conns connections writes -depth requests with one write and
// reads their responses, checking each, so that its own cost is small
// and the same for every server. The servers run in turn, the order
// rotated every round; the report gives the median of the rounds. The Go
// loop (goloop.go) is a yardstick beside them: a minimal Go server for
// the same gets and sets.
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tcpez/tcpez/internal/loopback"
)

type options struct {
	rounds          int
	warmup, measure time.Duration
	slice           time.Duration
	conns, depth    int
	keys            int
	sizes           string
	journal         bool
	goloop          bool
	threads         int
	procs           int
	base            string
	out             string
}

func main() {
	serveGoloopIfAsked()
	var o options
	flag.IntVar(&o.rounds, "rounds", 3, "rounds; each runs every cell on every server, the servers in rotated order")
	flag.DurationVar(&o.warmup, "warmup", 300*time.Millisecond, "warm-up per cell, not measured")
	flag.DurationVar(&o.measure, "measure", 2*time.Second, "measuring window per cell and server")
	flag.DurationVar(&o.slice, "slice", 200*time.Millisecond, "the servers are loaded in turn a slice at a time until each has had its window; 0: the whole window at once")
	flag.IntVar(&o.conns, "conns", 16, "connections, one goroutine each")
	flag.IntVar(&o.depth, "depth", 1, "requests each connection writes at once before reading their responses")
	flag.IntVar(&o.keys, "keys", 1000, "distinct keys")
	flag.StringVar(&o.sizes, "sizes", "16,4096", "value sizes in bytes")
	flag.BoolVar(&o.journal, "journal", true, "also run kvcache with --journal (default --sync 100ms)")
	flag.BoolVar(&o.goloop, "goloop", true, "also run the Go loops: the least a Go server does for these gets and sets, reading as Go servers do and reading once per request as memcached does; yardsticks")
	flag.IntVar(&o.threads, "memcached-threads", 0, "memcached's -t; 0: its default, 4")
	flag.IntVar(&o.procs, "kvcache-procs", 0, "kvcache's GOMAXPROCS; 0: Go's default, the CPUs it may use")
	flag.StringVar(&o.base, "kvcache-base", "", "also run this kvcache binary (built from an earlier commit) as \"kvcache base\", in the same rotation, to compare a change side by side")
	flag.StringVar(&o.out, "out", "", "directory to write MEMCACHED.md into; empty: print only")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, o, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// cell is one measurement: an operation at a value size.
type cell struct {
	op   string // "get" or "set"
	size int
}

func run(ctx context.Context, o options, out io.Writer) error {
	var sizes []int
	for _, s := range strings.Split(o.sizes, ",") {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 1<<20 {
			return fmt.Errorf("bad size %q", s)
		}
		sizes = append(sizes, n)
	}
	if o.rounds < 1 || o.conns < 1 || o.depth < 1 || o.keys < 1 || o.measure <= 0 || o.slice < 0 {
		return errors.New("rounds, conns, depth, keys and measure must be positive, slice not negative")
	}
	dir, err := os.MkdirTemp("", "memcache-bench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bin, err := buildKvcache(ctx, dir)
	if err != nil {
		return err
	}
	var procs []*proc
	defer func() {
		for _, p := range procs {
			p.stop()
		}
	}()
	mc, err := startMemcached(ctx, o.threads)
	if err != nil {
		return err
	}
	procs = append(procs, mc)
	kv, err := startKvcache(ctx, "kvcache", bin, o.procs)
	if err != nil {
		return err
	}
	procs = append(procs, kv)
	if o.base != "" {
		kb, err := startKvcache(ctx, "kvcache base", o.base, o.procs)
		if err != nil {
			return err
		}
		procs = append(procs, kb)
	}
	if o.journal {
		kj, err := startKvcache(ctx, "kvcache --journal", bin, o.procs, "--journal", "JOURNAL")
		if err != nil {
			return err
		}
		procs = append(procs, kj)
	}
	if o.goloop {
		for _, oneRead := range []bool{false, true} {
			gl, err := startGoloop(ctx, oneRead)
			if err != nil {
				return err
			}
			procs = append(procs, gl)
		}
	}

	var cells []cell
	for _, op := range []string{"get", "set"} {
		for _, s := range sizes {
			cells = append(cells, cell{op, s})
		}
	}
	loadBefore := loadAverage()
	results := make(map[string]map[cell][]sample)
	for _, p := range procs {
		results[p.name] = make(map[cell][]sample)
	}
	for r := range o.rounds {
		for _, c := range cells {
			ms, err := measureCell(ctx, procs, c, o, r)
			if err != nil {
				return fmt.Errorf("%s %d B: %w", c.op, c.size, err)
			}
			for i, p := range procs {
				m := ms[i]
				results[p.name][c] = append(results[p.name][c], m)
				fmt.Fprintf(os.Stderr, "round %d: %-18s %s %5d B: %9.0f req/s, %5.2f µs CPU/req, %.2f reads/req\n", r+1, p.name, c.op, c.size, m.rps, m.cpu, m.reads)
			}
		}
	}
	report := table(o, procs, cells, results) + conditions(o, loadBefore, loadAverage())
	fmt.Fprint(out, report)
	if o.out != "" {
		return os.WriteFile(filepath.Join(o.out, "MEMCACHED.md"), []byte(report), 0o644)
	}
	return nil
}

// sample is what one measuring window gives of a server.
type sample struct {
	rps   float64 // requests per second
	cpu   float64 // its CPU time per request, µs
	reads float64 // its read syscalls per request, the ones that found nothing included
}

// medianOf is the median of one figure of samples.
func medianOf(ms []sample, figure func(sample) float64) float64 {
	xs := make([]float64, len(ms))
	for i, m := range ms {
		xs[i] = figure(m)
	}
	return median(xs)
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func table(o options, procs []*proc, cells []cell, results map[string]map[cell][]sample) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# kvcache's memcached listener side by side with memcached\n\n")
	fmt.Fprintf(&b, "`cd bench && go run ./memcache -rounds %d -measure %v -slice %v -conns %d -depth %d -keys %d -sizes %s -memcached-threads %d -kvcache-procs %d`, %s.\n\n",
		o.rounds, o.measure, o.slice, o.conns, o.depth, o.keys, o.sizes, o.threads, o.procs, time.Now().UTC().Format("2006-01-02"))
	fmt.Fprintf(&b, "Each round loads the servers in turn, %v at a time, the order rotated every slice, until each has had %v. Median req/s over %d rounds; in brackets, the ratio to memcached; then the server process's median CPU time per request (user+system, from /proc), which depends less on what else the machine runs, and its read syscalls per request (syscr, from /proc).\n\n", o.slice, o.measure, o.rounds)
	b.WriteString("| op | value |")
	for _, p := range procs {
		fmt.Fprintf(&b, " %s |", p.name)
	}
	b.WriteString("\n| --- | --- |")
	for range procs {
		b.WriteString(" --- |")
	}
	b.WriteString("\n")
	for _, c := range cells {
		rps := func(m sample) float64 { return m.rps }
		base := medianOf(results[procs[0].name][c], rps)
		fmt.Fprintf(&b, "| %s | %d B |", c.op, c.size)
		for i, p := range procs {
			ms := results[p.name][c]
			m := medianOf(ms, rps)
			cpu := medianOf(ms, func(m sample) float64 { return m.cpu })
			reads := medianOf(ms, func(m sample) float64 { return m.reads })
			if i == 0 {
				fmt.Fprintf(&b, " %.0f; %.1f µs; %.2f reads |", m, cpu, reads)
				continue
			}
			fmt.Fprintf(&b, " %.0f (%.2f×); %.1f µs; %.2f reads |", m, m/base, cpu, reads)
		}
		b.WriteString("\n")
	}
	return b.String()
}

// conditions says what the figures were measured under: the machine's
// CPUs and load, which move them more than anything else, and each
// server's threads.
func conditions(o options, before, after string) string {
	threads := "its default 4 threads"
	if o.threads > 0 {
		threads = fmt.Sprintf("%d threads", o.threads)
	}
	procs := fmt.Sprintf("Go's default GOMAXPROCS (%d)", runtime.NumCPU())
	if o.procs > 0 {
		procs = fmt.Sprintf("GOMAXPROCS %d", o.procs)
	}
	s := fmt.Sprintf("\nConditions: %d CPUs, shared by the load generator (%d connections, %d request(s) per write) and the servers, none pinned; load average %s before the run, %s after (1, 5, 15 minutes); memcached with %s, kvcache with %s.\n",
		runtime.NumCPU(), o.conns, o.depth, before, after, threads, procs)
	if cc := hostCongestion(); cc != "reno" {
		s += fmt.Sprintf("\nCongestion control: kvcache and the Go loops answer over Reno, which tcpez gives loopback sockets; memcached over the host's default, %s (bench/README.md, \"memcache\").\n", cc)
	}
	if o.journal {
		s += "\n`kvcache --journal` also appends every write to its log, which it syncs every 100ms (`--sync`'s default): a set of 4 KiB writes 4 KiB more.\n"
	}
	return s
}

// hostCongestion is the host's default TCP congestion control, "?" where
// it cannot be read.
func hostCongestion() string {
	cc, err := loopback.HostDefault()
	if err != nil {
		return "?"
	}
	return cc
}

// loadAverage is the system's load average from /proc/loadavg, "?"
// where there is none.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if err != nil || len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// measureCell measures every server on one cell: it populates and warms
// each up, then loads them in turn, a slice at a time, the order rotated
// every slice, until each has had its measuring window. Slices short
// against the window cancel what drifts over seconds (another tenant's
// load, the host's clock speed), which would otherwise favour whichever
// server's window it fell in.
func measureCell(ctx context.Context, procs []*proc, c cell, o options, round int) ([]sample, error) {
	value := bytes.Repeat([]byte{'x'}, c.size)
	loads := make([]*loadConns, len(procs))
	defer func() {
		for _, l := range loads {
			l.close()
		}
	}()
	for i, p := range procs {
		if c.op == "get" {
			if err := populate(p.addr, o.keys, value); err != nil {
				return nil, fmt.Errorf("%s: %w", p.name, err)
			}
		}
		l, err := dialLoad(p.addr, c, o, value)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p.name, err)
		}
		loads[i] = l
		if _, err := l.run(ctx, o.warmup); err != nil {
			return nil, fmt.Errorf("%s: %w", p.name, err)
		}
	}
	// A turn needs no ramp here, unlike bench/'s: with one request in
	// flight per connection, what a turn's start and end leave out is 16
	// requests of the thousands in a slice.
	slice, slices := o.measure, 1
	if o.slice > 0 && o.slice < o.measure {
		slice, slices = o.slice, int(o.measure/o.slice)
	}
	type total struct {
		n     int64
		cpu   time.Duration
		reads int64
	}
	totals := make([]total, len(procs))
	for s := range slices {
		for k := range procs {
			i := (k + s + round) % len(procs)
			p := procs[i]
			cpuBefore, readsBefore := cpuTime(p.pid), readSyscalls(p.pid)
			n, err := loads[i].run(ctx, slice)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", p.name, err)
			}
			totals[i].n += n
			totals[i].cpu += cpuTime(p.pid) - cpuBefore
			totals[i].reads += readSyscalls(p.pid) - readsBefore
		}
	}
	window := time.Duration(slices) * slice
	ms := make([]sample, len(procs))
	for i, t := range totals {
		ms[i].rps = float64(t.n) / window.Seconds()
		if t.n > 0 {
			ms[i].cpu = float64(t.cpu.Microseconds()) / float64(t.n)
			ms[i].reads = float64(t.reads) / float64(t.n)
		}
	}
	return ms, nil
}

// readSyscalls is how many read syscalls process pid has made, from
// /proc/pid/io (syscr); 0 where there is none. A server that reads until
// a read finds nothing makes two a request at one request per read, one
// that waits for readiness after a short read, one.
func readSyscalls(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "syscr: "); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	return 0
}

// cpuTime is the user and system time of process pid, from
// /proc/pid/stat, in clock ticks of 10ms; 0 where there is no /proc.
func cpuTime(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The fields after the command name, which is in parentheses.
	fields := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(fields) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(fields[11], 10, 64)
	stime, _ := strconv.ParseInt(fields[12], 10, 64)
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

func key(i int) string { return "key:" + strconv.Itoa(i) }

func setRequest(k string, value []byte) []byte {
	b := fmt.Appendf(nil, "set %s 0 0 %d\r\n", k, len(value))
	return append(append(b, value...), '\r', '\n')
}

func populate(addr string, keys int, value []byte) error {
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer nc.Close()
	w := bufio.NewWriter(nc)
	for i := range keys {
		w.Write(setRequest(key(i), value))
	}
	if err := w.Flush(); err != nil {
		return err
	}
	r := bufio.NewReader(nc)
	for range keys {
		line, err := r.ReadString('\n')
		if err != nil {
			return err
		}
		if line != "STORED\r\n" {
			return fmt.Errorf("populating: %q", line)
		}
	}
	return nil
}

// loadConns is the load generator's connections to one server, kept
// open across the slices of a cell.
type loadConns struct {
	conns []*connLoad
}

// connLoad is one connection's load and where it stands in its keys.
type connLoad struct {
	nc          net.Conn
	r           *bufio.Reader
	reqs, resps [][]byte
	next, depth int
	wbuf, got   []byte
}

func dialLoad(addr string, c cell, o options, value []byte) (*loadConns, error) {
	l := &loadConns{}
	for seed := range o.conns {
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			l.close()
			return nil, err
		}
		l.conns = append(l.conns, newConnLoad(nc, c, o, value, seed))
	}
	return l, nil
}

func (l *loadConns) close() {
	if l == nil {
		return
	}
	for _, cl := range l.conns {
		cl.nc.Close()
	}
}

// run drives every connection for d and returns the responses checked.
func (l *loadConns) run(ctx context.Context, d time.Duration) (int64, error) {
	var (
		stop  atomic.Bool
		total atomic.Int64
		wg    sync.WaitGroup
		errMu sync.Mutex
		first error
	)
	for _, cl := range l.conns {
		wg.Go(func() {
			n, err := cl.loop(&stop)
			total.Add(n)
			if err != nil {
				errMu.Lock()
				first = errors.Join(first, err)
				errMu.Unlock()
			}
		})
	}
	select {
	case <-time.After(d):
	case <-ctx.Done():
	}
	stop.Store(true)
	wg.Wait()
	if first == nil {
		first = ctx.Err()
	}
	return total.Load(), first
}

// newConnLoad prepares one connection's requests and the responses they
// must get, each connection starting at its own key.
func newConnLoad(nc net.Conn, c cell, o options, value []byte, seed int) *connLoad {
	cl := &connLoad{nc: nc, r: bufio.NewReaderSize(nc, 64<<10), depth: o.depth}
	for i := range o.keys {
		k := key((i + seed*7919) % o.keys)
		if c.op == "get" {
			cl.reqs = append(cl.reqs, []byte("get "+k+"\r\n"))
			resp := fmt.Appendf(nil, "VALUE %s 0 %d\r\n", k, len(value))
			cl.resps = append(cl.resps, append(append(resp, value...), "\r\nEND\r\n"...))
		} else {
			cl.reqs = append(cl.reqs, setRequest(k, value))
			cl.resps = append(cl.resps, []byte("STORED\r\n"))
		}
	}
	cl.got = make([]byte, len(cl.resps[0])+64)
	return cl
}

// loop writes depth requests at once and reads their responses, each
// checked, until stop; every response of what it wrote is read before it
// returns, so the next slice starts on a quiet connection.
func (cl *connLoad) loop(stop *atomic.Bool) (int64, error) {
	var n int64
	for !stop.Load() {
		cl.wbuf = cl.wbuf[:0]
		start := cl.next
		for range cl.depth {
			cl.wbuf = append(cl.wbuf, cl.reqs[cl.next%len(cl.reqs)]...)
			cl.next++
		}
		if _, err := cl.nc.Write(cl.wbuf); err != nil {
			return n, err
		}
		for j := start; j < cl.next; j++ {
			want := cl.resps[j%len(cl.resps)]
			got := cl.got[:len(want)]
			if _, err := io.ReadFull(cl.r, got); err != nil {
				return n, err
			}
			// The first and last bytes: the status and the terminator.
			if !bytes.Equal(got[:5], want[:5]) || !bytes.Equal(got[len(want)-5:], want[len(want)-5:]) {
				return n, fmt.Errorf("response %q, want %q", got[:min(len(want), 64)], want[:min(len(want), 64)])
			}
			n++
		}
	}
	return n, nil
}
