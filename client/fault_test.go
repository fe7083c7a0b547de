package client_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/tcpez/tcpez/client"
	"github.com/tcpez/tcpez/frame"
	"github.com/tcpez/tcpez/internal/faultproxy"
	"github.com/tcpez/tcpez/server"
	"github.com/tcpez/tcpez/span"
)

// countingServer is the tcpez byte server answering "ans:"+req, counting
// how many times each request was executed.
type countingServer struct {
	addr string
	stop func() // shuts the server down, after which counts are final

	mu    sync.Mutex
	execs map[string]int
}

func newCountingServer(t *testing.T) *countingServer {
	t.Helper()
	cs := &countingServer{execs: make(map[string]int)}
	logger := logrus.New()
	logger.SetOutput(io.Discard)
	srv := server.New(server.HandlerFunc(func(_ context.Context, req []byte, _ *span.Span) ([]byte, error) {
		cs.mu.Lock()
		cs.execs[string(req)]++
		cs.mu.Unlock()
		return answerOf(req), nil
	}), server.Config{Logger: logger})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cs.addr = ln.Addr().String()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	var once sync.Once
	cs.stop = func() {
		once.Do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := srv.Shutdown(ctx); err != nil {
				t.Errorf("Shutdown: %v", err)
			}
			if err := <-served; !errors.Is(err, server.ErrServerClosed) {
				t.Errorf("Serve: %v", err)
			}
		})
	}
	t.Cleanup(cs.stop)
	return cs
}

func (cs *countingServer) count(id string) int {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return cs.execs[id]
}

// callRecord is the outcome of one call of the load: its requests (one,
// or a pipeline's), whether it was marked idempotent, and whether it
// succeeded.
type callRecord struct {
	reqs []string
	idem bool
	ok   bool
}

// outcomes tallies the kinds of results the load saw.
type outcomes struct {
	ok, connLost, noConn, deadline, protocol atomic.Int64
	// overshoot is the furthest past its deadline that a call returned.
	overshoot atomic.Int64
}

func (o *outcomes) String() string {
	return fmt.Sprintf("ok %d, ErrConnLost %d (protocol %d), ErrNoConnection %d, DeadlineExceeded %d",
		o.ok.Load(), o.connLost.Load(), o.protocol.Load(), o.noConn.Load(), o.deadline.Load())
}

func (o *outcomes) noteTime(took time.Duration) {
	late := int64(took - faultCallTimeout)
	for {
		cur := o.overshoot.Load()
		if late <= cur || o.overshoot.CompareAndSwap(cur, late) {
			return
		}
	}
}

// classify counts err and reports whether it is one of the typed errors a
// call may end with under faults.
func (o *outcomes) classify(err error) bool {
	if errors.Is(err, frame.ErrProtocol) {
		o.protocol.Add(1)
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		o.deadline.Add(1)
	case errors.Is(err, client.ErrConnLost):
		o.connLost.Add(1)
	case errors.Is(err, client.ErrNoConnection):
		o.noConn.Add(1)
	case errors.Is(err, frame.ErrProtocol):
	default:
		return false
	}
	return true
}

const (
	faultCallTimeout = time.Second
	// faultMargin is how late past its deadline a call may return: the
	// scheduler's delay on a loaded machine, with the race detector on.
	faultMargin   = 500 * time.Millisecond
	faultWorkers  = 32
	faultMaxCalls = 20_000 // per worker: a bound, never reached
)

// payload makes a unique request of 30 to 500 bytes, so that frames
// straddle the points where the proxy cuts connections.
func payload(g, i, m int) []byte {
	p := fmt.Appendf(nil, "g%02d-c%06d-m%d|", g, i, m)
	return append(p, bytes.Repeat([]byte{'a' + byte(i%26)}, (g*131+i*71+m*29)%480)...)
}

// loadCall makes call i of worker g, of a kind chosen by i, checks that
// its answer is its own, and records it.
func loadCall(c *client.Client, g, i int, idem bool, o *outcomes) (callRecord, error) {
	ctx, cancel := context.WithTimeout(context.Background(), faultCallTimeout)
	defer cancel()
	if idem {
		ctx = client.WithIdempotent(ctx)
	}
	rec := callRecord{idem: idem}
	start := time.Now()
	var err error
	var wrong error
	switch i % 4 {
	case 0, 1, 2:
		req := payload(g, i, 0)
		rec.reqs = []string{string(req)}
		var ans []byte
		switch i % 4 {
		case 0:
			ans, err = c.Call(ctx, req)
		case 1:
			ans, err = c.CallAppend(ctx, make([]byte, 0, 64), req)
		case 2:
			ans, err = c.Go(ctx, req).Wait()
		}
		if err == nil && !bytes.Equal(ans, answerOf(req)) {
			wrong = fmt.Errorf("%.20s…: got the answer %.24q…", req, ans)
		}
	default:
		p := c.Pipeline()
		var reqs [][]byte
		for m := range 3 {
			req := payload(g, i, m)
			reqs = append(reqs, req)
			rec.reqs = append(rec.reqs, string(req))
			p.Enqueue(req)
		}
		var answers [][]byte
		answers, err = p.Flush(ctx)
		switch {
		case err == nil && len(answers) != len(reqs):
			wrong = fmt.Errorf("pipeline: %d answers to %d requests and no error", len(answers), len(reqs))
		case err != nil && answers != nil:
			wrong = fmt.Errorf("pipeline: %d answers and the error %v", len(answers), err)
		case err == nil:
			for k := range reqs {
				if !bytes.Equal(answers[k], answerOf(reqs[k])) {
					wrong = fmt.Errorf("pipeline %.20s…: answer %d is %.24q…", reqs[0], k, answers[k])
				}
			}
		}
	}
	took := time.Since(start)
	o.noteTime(took)
	switch {
	case wrong != nil:
		return rec, wrong
	case took > faultCallTimeout+faultMargin:
		return rec, fmt.Errorf("call returned %v after it began, past its %v deadline (err %v)", took, faultCallTimeout, err)
	case err == nil:
		o.ok.Add(1)
		rec.ok = true
	case !o.classify(err):
		return rec, fmt.Errorf("untyped error: %w", err)
	}
	return rec, nil
}

// faultCase is one fault applied to the proxy under load.
type faultCase struct {
	name string
	// apply starts the fault; it is called every tick while the fault
	// lasts (most faults are idempotent; ResetAll repeats).
	apply  func(p *faultproxy.Proxy)
	lasts  time.Duration
	repeat bool
}

// TestFaultsUnderLoad runs the client against the tcpez server through a
// fault-injecting proxy, with 32 workers making unique calls of every kind
// (Call, CallAppend, Go, Pipeline of 3; a quarter of the workers
// mark theirs idempotent), and switches a fault on, then off. Throughout:
//
//   - every call ends within its deadline (plus a margin for the
//     scheduler) with its own answer or a typed error;
//   - a pipeline returns all its answers or an error, never part;
//   - a call that succeeded was executed by the server; a call not marked
//     idempotent was never executed twice;
//   - once the fault clears, calls succeed again: the recovery time is
//     reported.
func TestFaultsUnderLoad(t *testing.T) {
	cases := []faultCase{
		{name: "latency 50ms each way", apply: func(p *faultproxy.Proxy) { p.SetLatency(50 * time.Millisecond) }, lasts: 500 * time.Millisecond},
		{name: "bandwidth 8KiB per second", apply: func(p *faultproxy.Proxy) { p.SetBandwidth(8 << 10) }, lasts: 1500 * time.Millisecond},
		{name: "answers cut mid-frame", apply: func(p *faultproxy.Proxy) { p.CutAfter(faultproxy.Downstream, 1000) }, lasts: 500 * time.Millisecond},
		{name: "requests cut mid-frame", apply: func(p *faultproxy.Proxy) { p.CutAfter(faultproxy.Upstream, 1000) }, lasts: 500 * time.Millisecond},
		{name: "black hole longer than the deadline", apply: func(p *faultproxy.Proxy) { p.SetBlackhole(true) }, lasts: 1500 * time.Millisecond},
		{name: "connections reset every 50ms", apply: (*faultproxy.Proxy).ResetAll, lasts: 500 * time.Millisecond, repeat: true},
	}
	// Both protocols: the multiplexed mode, the default, fails calls and
	// batches its own way (a Pipeline batch went back to the pool while
	// its reader still wrote it, seen only here).
	for _, proto := range []client.Protocol{client.ProtocolV1, client.ProtocolMux} {
		for _, fc := range cases {
			t.Run(proto.String()+"/"+fc.name, func(t *testing.T) { runFault(t, fc, proto) })
		}
	}
}

func runFault(t *testing.T, fc faultCase, proto client.Protocol) {
	srv := newCountingServer(t)
	proxy, err := faultproxy.New(srv.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	c := newClient(t, []string{proxy.Addr()}, fast(client.Config{Protocol: proto, ConnsPerAddr: 2}))

	var (
		o       outcomes
		stop    = make(chan struct{})
		wg      sync.WaitGroup
		records = make([][]callRecord, faultWorkers)
		errs    = make(chan error, 16)
	)
	for g := range faultWorkers {
		wg.Go(func() {
			for i := range faultMaxCalls {
				select {
				case <-stop:
					return
				default:
				}
				rec, err := loadCall(c, g, i, g%4 == 3, &o)
				records[g] = append(records[g], rec)
				if err != nil {
					select {
					case errs <- fmt.Errorf("worker %d call %d: %w", g, i, err):
					default:
					}
				}
			}
		})
	}
	stopLoad := func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		wg.Wait()
	}
	defer stopLoad()

	waitOK := func(n int64, what string) {
		t.Helper()
		target := o.ok.Load() + n
		deadline := time.Now().Add(20 * time.Second)
		for o.ok.Load() < target {
			if time.Now().After(deadline) {
				t.Fatalf("%s: successes stuck at %d (%s)", what, o.ok.Load(), &o)
			}
			time.Sleep(time.Millisecond)
		}
	}
	waitOK(200, "before the fault")
	before := o.String()

	fc.apply(proxy)
	end := time.Now().Add(fc.lasts)
	for fc.repeat && time.Now().Before(end) {
		time.Sleep(50 * time.Millisecond)
		fc.apply(proxy)
	}
	time.Sleep(time.Until(end))
	during := o.String()

	proxy.Clear()
	cleared := time.Now()
	// A probe of its own: how long until a fresh call succeeds.
	var recovery time.Duration
	for i := 0; ; i++ {
		if time.Since(cleared) > 20*time.Second {
			t.Fatalf("no successful call %v after the fault cleared (%s)", time.Since(cleared), &o)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		req := fmt.Appendf(nil, "probe-%d", i)
		ans, err := c.Call(ctx, req)
		cancel()
		if err == nil {
			if !bytes.Equal(ans, answerOf(req)) {
				t.Fatalf("probe %d: got %q", i, ans)
			}
			recovery = time.Since(cleared)
			break
		}
		time.Sleep(time.Millisecond)
	}
	waitOK(200, "after the fault")
	stopLoad()
	c.Close()
	proxy.Close()
	srv.stop() // every handler has returned: the counts are final

	close(errs)
	for err := range errs {
		t.Error(err)
	}
	calls, maxIdem := 0, 0
	for _, rs := range records {
		for _, r := range rs {
			calls++
			for _, id := range r.reqs {
				n := srv.count(id)
				switch {
				case r.ok && n == 0:
					t.Errorf("%.20s…: succeeded but never executed", id)
				case !r.idem && n > 1:
					t.Errorf("%.20s…: not idempotent, executed %d times (ok=%v)", id, n, r.ok)
				}
				if r.idem {
					maxIdem = max(maxIdem, n)
				}
			}
		}
	}
	t.Logf("%s: %d calls; before the fault %s", fc.name, calls, before)
	t.Logf("%s: at the end of the fault (%v): %s", fc.name, fc.lasts, during)
	t.Logf("%s: in all: %s; idempotent requests executed at most %d times", fc.name, &o, maxIdem)
	if late := time.Duration(o.overshoot.Load()); late > 0 {
		t.Logf("%s: the latest call returned %v after its %v deadline", fc.name, late, faultCallTimeout)
	}
	t.Logf("%s: recovery: a fresh call succeeded %v after the fault cleared", fc.name, recovery)
}
