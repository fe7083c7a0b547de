package server_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tcpez/tcpez/frame"
	"github.com/tcpez/tcpez/internal/israce"
	"github.com/tcpez/tcpez/server"
	"github.com/tcpez/tcpez/span"
	"github.com/tcpez/tcpez/stats"
)

// The tests of this file back the figures of docs/RELIABILITY.md. They
// assert outcomes only; the figures they measure are printed with t.Logf
// (run with -v to see them).

// percentiles formats the usual percentiles of ds, which it sorts.
func percentiles(ds []time.Duration) string {
	if len(ds) == 0 {
		return "no samples"
	}
	slices.Sort(ds)
	at := func(q float64) time.Duration { return ds[min(int(q*float64(len(ds))), len(ds)-1)] }
	return fmt.Sprintf("n=%d p50=%v p90=%v p99=%v max=%v", len(ds), at(0.50), at(0.90), at(0.99), ds[len(ds)-1])
}

// heapAndStack is the memory the runtime has in use for the heap and for
// goroutine stacks, after a collection.
func heapAndStack() int64 {
	h, s := heapStack()
	return h + s
}

func heapStack() (heap, stack int64) {
	runtime.GC()
	runtime.GC() // the first may leave finalizers' garbage for the second
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapInuse), int64(m.StackInuse)
}

// TestTricklingConnectionsHitReadTimeout opens 1,000 connections that
// start a frame and never finish it within ReadTimeout (200 ms): half send
// one header byte and stall; half trickle a byte every 60 ms, which would
// keep a deadline that is re-armed per read alive forever. Every one of
// them is closed and counted in errors.read_timeout, exactly 1,000, and a
// fresh connection is served afterwards.
func TestTricklingConnectionsHitReadTimeout(t *testing.T) {
	const (
		conns      = 1000
		readTO     = 200 * time.Millisecond
		trickleGap = 60 * time.Millisecond
		maxBytes   = 100 // a trickler gives up after this many (6 s)
	)
	rec := stats.NewMemory()
	_, addr := startServer(t, echo, server.Config{ReadTimeout: readTO, Stats: rec})
	frameBytes := append(frame.AppendHeader(nil, 50), make([]byte, 50)...)

	type result struct {
		sent    int           // bytes sent before the close
		elapsed time.Duration // from the first byte to the close
		err     error
	}
	results := make([]result, conns)
	var wg sync.WaitGroup
	var dialErr atomic.Value
	for i := range conns {
		c, err := net.DialTimeout("tcp", addr, safety)
		if err != nil {
			dialErr.Store(err)
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close()
			trickle := i%2 == 1
			start := time.Now()
			r := &results[i]
			buf := make([]byte, 64)
			for r.sent < maxBytes {
				if _, err := c.Write(frameBytes[r.sent : r.sent+1]); err != nil {
					break // closed while we wrote: the read below says how
				}
				r.sent++
				wait := safety
				if trickle {
					wait = trickleGap
				}
				_ = c.SetReadDeadline(time.Now().Add(wait))
				n, err := c.Read(buf)
				if n > 0 {
					r.err = fmt.Errorf("got %d bytes of answer to an unfinished frame", n)
					return
				}
				if !errors.Is(err, os.ErrDeadlineExceeded) {
					break // closed (EOF or reset)
				}
				if !trickle {
					r.err = fmt.Errorf("not closed within %v", safety)
					return
				}
			}
			if r.sent == maxBytes {
				r.err = fmt.Errorf("still open after %d bytes over %v", r.sent, time.Since(start))
				return
			}
			// Make sure the connection is closed, not just failing a write.
			_ = c.SetReadDeadline(time.Now().Add(safety))
			if _, err := c.Read(buf); errors.Is(err, os.ErrDeadlineExceeded) {
				r.err = fmt.Errorf("not closed within %v", safety)
				return
			}
			r.elapsed = time.Since(start)
		}()
	}
	wg.Wait()
	if err := dialErr.Load(); err != nil {
		t.Fatalf("dial: %v", err)
	}
	var stall, trickle []time.Duration
	maxSent := 0
	for i, r := range results {
		if r.err != nil {
			t.Fatalf("connection %d: %v", i, r.err)
		}
		if i%2 == 1 {
			trickle = append(trickle, r.elapsed)
			maxSent = max(maxSent, r.sent)
		} else {
			stall = append(stall, r.elapsed)
		}
	}
	waitFor(t, func() bool { return rec.Counter("errors.read_timeout") >= conns }, "errors.read_timeout to reach 1000")
	waitFor(t, func() bool { v, _ := rec.GaugeValue("conns.open"); return v == 0 }, "every connection to end")
	if n := rec.Counter("errors.read_timeout"); n != conns {
		t.Fatalf("errors.read_timeout = %d, want %d", n, conns)
	}
	roundTrip(t, addr, "served after the slowloris")
	t.Logf("ReadTimeout %v, stalled after 1 byte: time to close %s", readTO, percentiles(stall))
	t.Logf("ReadTimeout %v, trickling 1 byte/%v: time to close %s; at most %d bytes sent", readTO, trickleGap, percentiles(trickle), maxSent)
}

// TestSlowConsumerDoesNotSlowOthers: a client that pipelines large
// requests and never reads its answers is cut off by WriteTimeout, while
// another connection's calls, made throughout the episode, all succeed.
// Their latency during the episode is reported, not asserted.
func TestSlowConsumerDoesNotSlowOthers(t *testing.T) {
	rec := stats.NewMemory()
	const writeTO = 200 * time.Millisecond
	_, addr := startServer(t, echo, server.Config{WriteTimeout: writeTO, Stats: rec})
	other := dial(t, addr)
	oneRoundTrip(t, other, "warm up")

	hog := dial(t, addr)
	_ = hog.SetReadBuffer(4096)
	payload := make([]byte, 64<<10)
	hogDone := make(chan int)
	start := time.Now()
	go func() {
		w := frame.NewWriter(hog)
		sent := 0
		for range 1000 { // 64 MiB: far more than socket buffers hold
			if w.WriteFrame(payload) != nil {
				break
			}
			sent++
		}
		_ = w.Flush()
		hogDone <- sent
	}()

	var lat []time.Duration
	req := frame.AppendFrame(nil, []byte("other"))
	ans := make([]byte, len(req))
	for i := 0; rec.Counter("errors.write_timeout") == 0; i++ {
		if i == 1_000_000 || time.Since(start) > safety {
			t.Fatalf("no write timeout after %d calls, %v", i, time.Since(start))
		}
		t0 := time.Now()
		write(t, other, req)
		if _, err := io.ReadFull(other, ans); err != nil || string(ans) != string(req) {
			t.Fatalf("call %d of the other connection during the episode: % x, %v", i, ans, err)
		}
		lat = append(lat, time.Since(t0))
	}
	episode := time.Since(start)
	// errors.write_timeout is counted once the server has closed the
	// socket; what it had queued may take long to trickle into the hog's
	// tiny receive buffer, so look at the server's side instead.
	waitFor(t, func() bool { v, _ := rec.GaugeValue("conns.open"); return v == 1 }, "the slow consumer's connection to end")
	_ = hog.SetLinger(0)
	hog.Close()
	var sent int
	select {
	case sent = <-hogDone:
	case <-time.After(safety):
		t.Fatal("the slow consumer's writes did not end")
	}
	if n := rec.Counter("errors.write_timeout"); n != 1 {
		t.Fatalf("errors.write_timeout = %d, want 1", n)
	}
	oneRoundTrip(t, other, "after the episode")
	t.Logf("WriteTimeout %v: the slow consumer was cut off %v after it started (%d frames of 64 KiB sent)", writeTO, episode, sent)
	t.Logf("other connection during the episode: %s", percentiles(lat))
}

// raiseFileLimit raises the soft RLIMIT_NOFILE towards want and returns
// the limit in force.
func raiseFileLimit(t *testing.T, want uint64) uint64 {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Skipf("getrlimit: %v", err)
	}
	if lim.Cur < want && lim.Cur < lim.Max {
		old := lim.Cur
		lim.Cur = min(want, lim.Max)
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			lim.Cur = old
		}
	}
	return lim.Cur
}

// TestManyIdleConnections opens as many idle connections as the file
// limit allows both ends to have (10,000 if it can), each having made one
// call, and reports the memory each costs the server and the latency of a
// separate client meanwhile. It asserts only a loose bound on the memory
// (256 KiB a connection) and that everything is served.
//
// Skipped under -short and -race (the race detector allows 8,128
// goroutines); run it with
//
//	go test -run TestManyIdleConnections -v ./server/
func TestManyIdleConnections(t *testing.T) {
	if testing.Short() {
		t.Skip("opens 10,000 connections; skipped under -short")
	}
	if israce.Enabled {
		t.Skip("opens 10,000 connections, more goroutines than the race detector allows; run without -race")
	}
	const wantConns = 10_000
	const spareFDs = 200 // the test binary's own, the listener, the other client
	limit := raiseFileLimit(t, 2*wantConns+spareFDs)
	n := min(wantConns, (int(limit)-spareFDs)/2)
	if n < 1000 {
		t.Skipf("RLIMIT_NOFILE is %d: too low for 1,000 connections at both ends", limit)
	}
	if n < wantConns {
		t.Logf("RLIMIT_NOFILE is %d: using %d connections instead of %d (each needs a descriptor at both ends)", limit, n, wantConns)
	}

	// The control: the same number of bare loopback connection pairs, to
	// tell the cost of the sockets themselves from tcpez's.
	control := func() int64 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		accepted := make(chan []net.Conn, 1)
		go func() {
			var cs []net.Conn
			for len(cs) < n {
				c, err := ln.Accept()
				if err != nil {
					break
				}
				cs = append(cs, c)
			}
			accepted <- cs
		}()
		before := heapAndStack()
		clients := dialMany(t, ln.Addr().String(), n)
		servers := <-accepted
		grown := heapAndStack() - before
		closeAll(clients)
		closeAll(servers)
		if len(servers) != n {
			t.Fatalf("control: accepted %d of %d", len(servers), n)
		}
		return grown
	}()

	rec := stats.NewMemory()
	// Every connection comes from 127.0.0.1: lift the per-peer limit.
	_, addr := startServer(t, echo, server.Config{Stats: rec, StatsInterval: time.Hour, MaxConnsPerPeer: -1})
	other := dial(t, addr)
	oneRoundTrip(t, other, "warm up")
	// Let the control's closed connections be reaped first.
	waitFor(t, func() bool { v, _ := rec.GaugeValue("conns.open"); return v == 1 }, "the server to settle")

	heap0, stack0 := heapStack()
	cs := dialMany(t, addr, n)
	defer closeAll(cs)
	req := frame.AppendFrame(nil, []byte("idle soon"))
	for _, c := range cs {
		write(t, c, req)
	}
	for i, c := range cs {
		got := make([]byte, len(req))
		if _, err := io.ReadFull(c, got); err != nil || string(got) != string(req) {
			t.Fatalf("connection %d: % x, %v", i, got, err)
		}
	}
	if v, _ := rec.GaugeValue("conns.open"); v != int64(n)+1 {
		t.Fatalf("conns.open = %d, want %d", v, n+1)
	}
	heap1, stack1 := heapStack()
	grown := heap1 + stack1 - heap0 - stack0

	var lat []time.Duration
	for i := range 2000 {
		t0 := time.Now()
		oneRoundTrip(t, other, fmt.Sprintf("call %d", i))
		lat = append(lat, time.Since(t0))
	}

	perConn := float64(grown) / float64(n)
	socketPair := float64(control) / float64(n)
	server := perConn - socketPair/2
	t.Logf("%d idle connections: heap+stack %+.1f MiB, %.1f KiB per connection (both ends: heap %.1f KiB, stacks %.1f KiB); bare socket pairs %.1f KiB; tcpez server per connection ≈ %.1f KiB (target 16 KiB)",
		n, float64(grown)/(1<<20), perConn/1024, float64(heap1-heap0)/float64(n)/1024, float64(stack1-stack0)/float64(n)/1024,
		socketPair/1024, server/1024)
	t.Logf("separate client during the %d idle connections: %s", n, percentiles(lat))
	if perConn > 256<<10 {
		t.Errorf("%.1f KiB per idle connection, over the sanity bound of 256 KiB", perConn/1024)
	}
}

func dialMany(t *testing.T, addr string, n int) []*net.TCPConn {
	t.Helper()
	cs := make([]*net.TCPConn, 0, n)
	for i := range n {
		c, err := net.DialTimeout("tcp", addr, safety)
		if err != nil {
			closeAll(cs)
			t.Fatalf("dial %d: %v", i, err)
		}
		_ = c.SetDeadline(time.Now().Add(time.Minute))
		cs = append(cs, c.(*net.TCPConn))
	}
	return cs
}

func closeAll[C net.Conn](cs []C) {
	for _, c := range cs {
		c.Close()
	}
}

// TestLargeFrameBufferIsNotRetained sends a 4 MiB frame on each of 20
// connections, then small ones, and requires that the server keeps far
// less than 4 MiB per connection afterwards, while the connections stay
// open: the buffer a large frame needed is dropped once it is answered.
func TestLargeFrameBufferIsNotRetained(t *testing.T) {
	const conns, large = 20, 4 << 20
	_, addr := startServer(t, echo, server.Config{})
	cs := make([]*net.TCPConn, conns)
	for i := range cs {
		cs[i] = dial(t, addr)
		oneRoundTrip(t, cs[i], "small")
	}
	before := heapAndStack()
	func() {
		big := frame.AppendFrame(nil, make([]byte, large))
		var writers sync.WaitGroup
		defer writers.Wait()
		for _, c := range cs {
			writers.Go(func() { _, _ = c.Write(big) })
			if _, err := io.CopyN(io.Discard, c, int64(len(big))); err != nil {
				t.Fatalf("reading the large answer: %v", err)
			}
			for i := range 10 {
				oneRoundTrip(t, c, fmt.Sprintf("small %d", i))
			}
		}
	}()
	grown := heapAndStack() - before
	t.Logf("after a %d MiB frame on each of %d connections: heap+stack %+d KiB in all, %+d KiB per connection",
		large>>20, conns, grown>>10, grown/conns>>10)
	if grown > conns<<20 {
		t.Fatalf("heap grew %d MiB for %d connections: the server keeps its large-frame buffers", grown>>20, conns)
	}
}

// TestShutdownDeliversAnswersDespiteLateBytes: Shutdown promises that
// every request read is answered. Here the peer has answers queued (the
// server wrote them; they wait in its socket's send queue because the peer
// has not read them yet) and sends one more request after Shutdown has
// stopped reading. The server must still deliver every answer it wrote.
func TestShutdownDeliversAnswersDespiteLateBytes(t *testing.T) {
	const size = 32 << 10
	started, release := make(chan struct{}), make(chan struct{})
	h := func(_ context.Context, req []byte, _ *span.Span) ([]byte, error) {
		if string(req) == "slow" {
			close(started)
			<-release
			return []byte("slow done"), nil
		}
		return bytes.Repeat(req[:1], size), nil
	}
	srv := server.New(server.HandlerFunc(h), server.Config{Logger: quietLogger()})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	shutdown := make(chan error, 1)
	defer func() {
		select {
		case <-release:
		default:
			close(release)
		}
		_ = srv.Close()
		<-served
	}()

	c := dial(t, addr)
	var reqs, want []byte
	for _, p := range []string{"a", "b", "c", "d", "e", "f", "g", "h"} {
		reqs = frame.AppendFrame(reqs, []byte(p))
		want = frame.AppendFrame(want, bytes.Repeat([]byte(p), size))
	}
	reqs = frame.AppendFrame(reqs, []byte("slow"))
	want = frame.AppendFrame(want, []byte("slow done"))
	write(t, c, reqs) // and read nothing yet
	select {
	case <-started:
	case <-time.After(safety):
		t.Fatal("the slow request was never read")
	}
	go func() { shutdown <- srv.Shutdown(context.Background()) }()
	// The listener closes, then the connections stop reading, together.
	waitFor(t, func() bool {
		d, err := net.Dial("tcp", addr)
		if err == nil {
			d.Close()
		}
		return err != nil
	}, "new dials to be refused")
	time.Sleep(20 * time.Millisecond)
	write(t, c, frame.AppendFrame(nil, []byte("late, not to be read")))
	close(release)
	select {
	case err := <-shutdown:
		if err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
	case <-time.After(safety):
		t.Fatal("Shutdown did not return")
	}
	got, err := io.ReadAll(c)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("after Shutdown returned nil, the peer got %d of the %d bytes of answers, then %v", len(got), len(want), err)
	}
}
