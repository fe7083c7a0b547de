package server_test

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
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tcpez/tcpez/frame"
	"github.com/tcpez/tcpez/internal/israce"
	"github.com/tcpez/tcpez/server"
	"github.com/tcpez/tcpez/span"
	"github.com/tcpez/tcpez/stats"
)

// soakFull runs TestSoak at the size of issue #19's attacks, against the
// default memory budget, and reports the figures of docs/SECURITY.md:
//
//	go test -count=1 -v -run TestSoak ./server/ -args -soak.full
var soakFull = flag.Bool("soak.full", false, "run TestSoak at full size (minutes, GiBs)")

// soakSlack is the memory over the budget the soak allows: the Go heap,
// connection buffers and the test's own clients.
const soakSlack = 64 << 20

// TestSoak runs the hostile loads of issue #19 against a real server on
// loopback and asserts the process's resident memory (which includes the
// attacking clients) against the memory budget; an honest client's PINGs,
// on a connection of its own, must all succeed throughout.
func TestSoak(t *testing.T) {
	if testing.Short() {
		t.Skip("soak: not with -short")
	}
	if israce.Enabled || runtime.GOOS != "linux" {
		t.Skip("soak: measures RSS, which the race detector inflates; Linux only")
	}
	t.Run("SlowLargeFrames", func(t *testing.T) {
		at := slowAttack{conns: 24, size: 4 << 20, chunk: 64 << 10, every: 10 * time.Millisecond,
			limits: limits{budget: 32 << 20, wait: 2 * time.Second}}
		if *soakFull {
			at = slowAttack{conns: 200, size: 16 << 20, chunk: 64 << 10, every: 100 * time.Millisecond}
		}
		soak(t, at.cfg(), echo, at.run)
	})
	t.Run("PipelinedLargeFrames", func(t *testing.T) {
		at := pipelinedAttack{conns: 4, depth: 32, size: 1 << 20, handler: 100 * time.Millisecond,
			limits: limits{budget: 16 << 20, wait: 5 * time.Second}}
		if *soakFull {
			// The handler took 10 s; a connection whose frames each
			// arrive just as it reads them runs them one at a time, so that
			// would take 21 minutes.
			at = pipelinedAttack{conns: 20, depth: 128, size: 1 << 20, handler: 200 * time.Millisecond}
		}
		soak(t, at.cfg(), slowLarge(at.handler), at.run)
	})
	t.Run("PipelinedMediumFrames", func(t *testing.T) {
		// Frames under 64 KiB arrive several per read, so they are read
		// ahead of a slow handler up to MaxInFlight: the budget, not the
		// handler, is what bounds them.
		at := pipelinedAttack{conns: 8, depth: 128, size: 60 << 10, handler: 20 * time.Millisecond,
			limits: limits{budget: 4 << 20, wait: 5 * time.Second}}
		if *soakFull {
			at = pipelinedAttack{conns: 20, depth: 128, size: 60 << 10, handler: time.Second}
		}
		soak(t, at.cfg(), slowLarge(at.handler), at.run)
	})
}

// attackResult is what the attackers saw: frames answered whole and
// correct, and connections the server closed.
type attackResult struct{ answered, closed int }

// soak serves h with cfg, runs attack while an honest client PINGs, and
// checks memory: the peak against the budget, and the return close to
// idle once the attackers have left.
func soak(t *testing.T, cfg server.Config, h server.HandlerFunc, attack func(t *testing.T, addr string) attackResult) {
	rec := stats.NewMemory()
	cfg.Stats = rec
	budget := cfg.MemoryBudget
	if budget == 0 {
		budget = server.DefaultMemoryBudget()
	}
	_, addr := startServer(t, h, cfg)
	roundTrip(t, addr, "warm")
	runtime.GC()
	idle := rss(t, "VmRSS")
	peak := watchPeak(t)

	ctx, stopPinging := context.WithCancel(context.Background())
	pings := make(chan []time.Duration, 1)
	started := time.Now()
	var res attackResult
	var wg sync.WaitGroup
	wg.Go(func() { res = attack(t, addr) })
	go func() { pings <- pingLoop(t, ctx, addr, started) }()
	wg.Wait()
	stopPinging()
	lat := <-pings
	left := time.Now()
	high := peak()

	t.Logf("attack: %v; %d frames answered, %d connections closed (%s %d)",
		left.Sub(started).Round(time.Millisecond), res.answered, res.closed, server.StatErrMemory, rec.Counter(server.StatErrMemory))
	t.Logf("budget %d MiB; RSS idle %.1f MiB, peak %.1f MiB (budget + %.1f MiB)",
		budget>>20, mib(idle), mib(high), mib(high-budget))
	logPings(t, lat)
	if res.answered == 0 {
		t.Error("no attacking frame was answered: the budget starved everyone")
	}
	if int64(res.closed) != rec.Counter(server.StatErrMemory) {
		t.Errorf("attackers saw %d closes, %s = %d", res.closed, server.StatErrMemory, rec.Counter(server.StatErrMemory))
	}
	if high > idle+budget+soakSlack {
		t.Errorf("peak RSS %.1f MiB over idle %.1f + budget %d + %d MiB", mib(high), mib(idle), budget>>20, soakSlack>>20)
	}

	// Given back: the pool unmaps what it keeps within twice its idle
	// time. The bound is the issue's: twice idle plus 32 MiB.
	target := 2*idle + 32<<20
	deadline := left.Add(3 * safety)
	for now := rss(t, "VmRSS"); now > target; now = rss(t, "VmRSS") {
		if time.Now().After(deadline) {
			t.Fatalf("RSS %.1f MiB %v after the attack, want at most %.1f", mib(now), time.Since(left).Round(time.Second), mib(target))
		}
		time.Sleep(100 * time.Millisecond)
	}
	back := time.Since(left)
	if *soakFull {
		time.Sleep(max(0, 10*time.Second-back))
	}
	t.Logf("RSS back under 2×idle+32 MiB (%.1f MiB) %v after the attackers left; %.1f MiB at %v",
		mib(target), back.Round(10*time.Millisecond), mib(rss(t, "VmRSS")), time.Since(left).Round(100*time.Millisecond))
}

// slowAttack: connections each send one large frame slowly, chunk by
// chunk, and read its echo.
type slowAttack struct {
	conns, size, chunk int
	every              time.Duration
	limits
}

// limits are the server's memory settings for an attack: zero for the
// defaults.
type limits struct {
	budget int64
	wait   time.Duration
}

func (l limits) cfg() server.Config {
	return server.Config{MemoryBudget: l.budget, MemoryWait: l.wait}
}

func (a slowAttack) run(t *testing.T, addr string) attackResult {
	chunk := bytes.Repeat([]byte{'s'}, a.chunk)
	return attackers(t, a.conns, addr, func(c net.Conn) (int, error) {
		write := func(b []byte) error { _, err := c.Write(b); return err }
		if err := write(frame.AppendHeader(nil, frame.Header(a.size))); err != nil {
			return 0, err
		}
		tick := time.NewTicker(a.every)
		defer tick.Stop()
		for sent := 0; sent < a.size; sent += a.chunk {
			if err := write(chunk[:min(a.chunk, a.size-sent)]); err != nil {
				return 0, err
			}
			<-tick.C
		}
		return 1, checkEchoes(c, 's', a.size, 1)
	})
}

// pipelinedAttack: connections each pipeline depth large frames against a
// slow handler.
type pipelinedAttack struct {
	conns, depth, size int
	handler            time.Duration
	limits
}

func (a pipelinedAttack) run(t *testing.T, addr string) attackResult {
	msg := frame.AppendFrame(nil, bytes.Repeat([]byte{'p'}, a.size))
	return attackers(t, a.conns, addr, func(c net.Conn) (int, error) {
		sent := make(chan error, 1)
		go func() {
			var err error
			for range a.depth {
				if _, err = c.Write(msg); err != nil {
					break
				}
			}
			sent <- err
		}()
		err := checkEchoes(c, 'p', a.size, a.depth)
		if werr := <-sent; err == nil {
			err = werr
		}
		return a.depth, err
	})
}

// slowLarge echoes, taking d over each request larger than 4 KiB.
func slowLarge(d time.Duration) server.HandlerFunc {
	return func(ctx context.Context, req []byte, _ *span.Span) ([]byte, error) {
		if len(req) > 4<<10 {
			t := time.NewTimer(d)
			defer t.Stop()
			select {
			case <-t.C:
			case <-ctx.Done():
			}
		}
		return req, nil
	}
}

// attackers runs n connections of attack, each returning how many frames
// it had answered, or an error if the server closed it before.
func attackers(t *testing.T, n int, addr string, attack func(net.Conn) (int, error)) attackResult {
	var answered, closed atomic.Int64
	var wg sync.WaitGroup
	for range n {
		c, err := net.DialTimeout("tcp", addr, safety)
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(10 * time.Minute))
			k, err := attack(c)
			switch {
			case err == nil:
				answered.Add(int64(k))
			case isClosedByServer(err):
				closed.Add(1)
			default:
				t.Errorf("attacker: %v", err)
			}
		})
	}
	wg.Wait()
	return attackResult{answered: int(answered.Load()), closed: int(closed.Load())}
}

func isClosedByServer(err error) bool {
	var ne *net.OpError
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, frame.ErrTruncated) ||
		(errors.As(err, &ne) && !ne.Timeout())
}

// checkEchoes reads n answers of size bytes of tag, without keeping them.
func checkEchoes(c net.Conn, tag byte, size, n int) error {
	r := frame.NewReader(c, frame.Limits{})
	buf := make([]byte, 64<<10)
	want := bytes.Repeat([]byte{tag}, len(buf))
	for i := range n {
		h, err := r.ReadHeader()
		if err != nil {
			return err
		}
		if h.Len() != size {
			return fmt.Errorf("answer %d: %d bytes, want %d", i, h.Len(), size)
		}
		for left := size; left > 0; {
			k, err := io.ReadFull(r, buf[:min(len(buf), left)])
			if err != nil {
				return err
			}
			if !bytes.Equal(buf[:k], want[:k]) {
				return fmt.Errorf("answer %d: a byte not %q", i, tag)
			}
			left -= k
		}
	}
	return nil
}

// pingLoop PINGs on a connection of its own, opened during the attack,
// until ctx ends, and returns each round trip's time; every PING must be
// answered.
func pingLoop(t *testing.T, ctx context.Context, addr string, started time.Time) []time.Duration {
	c, err := net.DialTimeout("tcp", addr, safety)
	if err != nil {
		t.Error(err)
		return nil
	}
	defer c.Close()
	ping := frame.AppendFrame(nil, []byte("PING"))
	got := make([]byte, len(ping))
	var lat []time.Duration
	var worst time.Duration
	var worstAt time.Time
	defer func() {
		t.Logf("slowest PING began %v into the attack", worstAt.Sub(started).Round(time.Millisecond))
	}()
	for ctx.Err() == nil {
		_ = c.SetDeadline(time.Now().Add(safety))
		began := time.Now()
		if _, err := c.Write(ping); err != nil {
			t.Errorf("honest PING %d: %v", len(lat)+1, err)
			return lat
		}
		if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, ping) {
			t.Errorf("honest PING %d: %q, %v", len(lat)+1, got, err)
			return lat
		}
		d := time.Since(began)
		if d > worst {
			worst, worstAt = d, began
		}
		lat = append(lat, d)
		time.Sleep(time.Millisecond)
	}
	return lat
}

func logPings(t *testing.T, lat []time.Duration) {
	if len(lat) == 0 {
		t.Error("the honest client made no PING")
		return
	}
	slices.Sort(lat)
	q := func(p float64) time.Duration { return lat[int(p*float64(len(lat)-1))] }
	over := len(lat) - sort.Search(len(lat), func(i int) bool { return lat[i] > 50*time.Millisecond })
	t.Logf("honest PINGs: %d, all answered; p50 %v, p99 %v, max %v; %d over 50 ms",
		len(lat), q(0.5), q(0.99), lat[len(lat)-1], over)
}

// watchPeak samples VmRSS until the test ends (the kernel's own high-water
// mark, VmHWM, would include what earlier tests used), and returns the
// highest seen so far.
func watchPeak(t *testing.T) func() int64 {
	var peak atomic.Int64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			if v := rss(t, "VmRSS"); v > peak.Load() {
				peak.Store(v)
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	t.Cleanup(func() { close(stop); <-done })
	return func() int64 { return peak.Load() }
}

// rss reads a memory figure of this process from /proc/self/status, in
// bytes.
func rss(t testing.TB, field string) int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		t.Skip("no /proc/self/status")
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				t.Fatalf("%s: %v", field, err)
			}
			return kb << 10
		}
	}
	t.Fatalf("no %s in /proc/self/status", field)
	return 0
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }
