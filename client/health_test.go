package client_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tcpez/tcpez/client"
	"github.com/tcpez/tcpez/server"
	"github.com/tcpez/tcpez/span"
	"github.com/tcpez/tcpez/stats"
)

// waitEvent waits for an event st about addr, at index from or later in
// ev, and returns the index after it.
func waitEvent(t testing.TB, ev *events, addr string, st client.State, from int) int {
	t.Helper()
	safety := time.After(20 * time.Second)
	for {
		ev.mu.Lock()
		for i := from; i < len(ev.list); i++ {
			if ev.list[i].Addr == addr && ev.list[i].State == st {
				ev.mu.Unlock()
				return i + 1
			}
		}
		changed := ev.changed
		ev.mu.Unlock()
		select {
		case <-changed:
		case <-safety:
			t.Fatalf("no %v event for %s", st, addr)
		}
	}
}

// tally makes n calls one after the other and counts the answers by
// server; every call must succeed.
func tally(t testing.TB, c *client.Client, n int) map[string]int {
	t.Helper()
	ctx := ctxFor(t)
	seen := make(map[string]int)
	for i := range n {
		req := fmt.Appendf(nil, "t%d", i)
		ans, err := c.Call(ctx, req)
		if err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		id, err := serverOf(ans, req)
		if err != nil {
			t.Fatal(err)
		}
		seen[id]++
	}
	return seen
}

func threeServers(t testing.TB) []*idServer {
	var out []*idServer
	for i := range 3 {
		out = append(out, startIDServer(t, fmt.Sprintf("s%d", i+1), "127.0.0.1:0"))
	}
	return out
}

func addrsOf(servers []*idServer) []string {
	var out []string
	for _, s := range servers {
		out = append(out, s.addr)
	}
	return out
}

// TestHealthCheckFrameProbe: a server that stops answering (its handler
// hangs) fails the default probe, an empty frame, and is ejected: calls
// succeed on the others and none reaches it. When it answers again a
// probe succeeds and it is restored.
func TestHealthCheckFrameProbe(t *testing.T) {
	servers := threeServers(t)
	sick := servers[1]
	ev := newEvents()
	mem := stats.NewMemory()
	c := newClient(t, addrsOf(servers), fast(client.Config{
		OnStateChange: ev.hook,
		Stats:         mem,
		HealthCheck:   client.HealthCheck{Interval: 20 * time.Millisecond, Timeout: 500 * time.Millisecond},
	}))
	tally(t, c, 30)

	sick.setWedged(true)
	next := waitEvent(t, ev, sick.addr, client.Ejected, 0)
	seen := tally(t, c, 300)
	if seen[sick.id] != 0 {
		t.Fatalf("calls while %s was ejected went to %v", sick.id, seen)
	}
	t.Logf("while ejected: %v", seen)

	sick.setWedged(false)
	waitEvent(t, ev, sick.addr, client.Restored, next)
	seen = tally(t, c, 300)
	if seen[sick.id] == 0 {
		t.Fatalf("calls after %s recovered went to %v", sick.id, seen)
	}
	t.Logf("after recovery: %v; %s=%d %s=%d %s=%d", seen, client.StatEjected, mem.Counter(client.StatEjected),
		client.StatRestored, mem.Counter(client.StatRestored), client.StatProbeErrors, mem.Counter(client.StatProbeErrors))
}

// TestHealthCheckCustomProbe: the Probe hook judges the answer, as a
// service-mode health method will: a server that answers "sick" is
// ejected while it keeps answering calls.
func TestHealthCheckCustomProbe(t *testing.T) {
	servers := threeServers(t)
	sick := servers[2]
	probe := func(ctx context.Context, addr string, call func(context.Context, []byte) ([]byte, error)) error {
		ans, err := call(ctx, []byte("health"))
		if err != nil {
			return err
		}
		if !bytes.HasSuffix(ans, []byte(":health")) {
			return fmt.Errorf("%s says %q", addr, ans)
		}
		return nil
	}
	ev := newEvents()
	c := newClient(t, addrsOf(servers), fast(client.Config{
		OnStateChange: ev.hook,
		HealthCheck:   client.HealthCheck{Interval: 10 * time.Millisecond, Timeout: time.Second, Probe: probe},
	}))
	sick.setSick(true)
	next := waitEvent(t, ev, sick.addr, client.Ejected, 0)
	ev.mu.Lock()
	cause := ev.list[next-1].Err
	ev.mu.Unlock()
	if cause == nil || !bytes.Contains([]byte(cause.Error()), []byte(`says "sick"`)) {
		t.Errorf("Ejected with %v, want the probe's error", cause)
	}
	if seen := tally(t, c, 200); seen[sick.id] != 0 {
		t.Fatalf("calls while %s was ejected went to %v", sick.id, seen)
	}
	sick.setSick(false)
	waitEvent(t, ev, sick.addr, client.Restored, next)
	if seen := tally(t, c, 300); seen[sick.id] == 0 {
		t.Fatalf("calls after %s recovered went to %v", sick.id, seen)
	}
}

// TestHealthCheckAllEjected: ejecting every address would fail every
// call; the client uses the ejected ones instead.
func TestHealthCheckAllEjected(t *testing.T) {
	servers := threeServers(t)[:2]
	ev := newEvents()
	c := newClient(t, addrsOf(servers), fast(client.Config{
		OnStateChange: ev.hook,
		HealthCheck: client.HealthCheck{Interval: 10 * time.Millisecond, Probe: func(context.Context, string, func(context.Context, []byte) ([]byte, error)) error {
			return errors.New("always sick")
		}},
	}))
	for _, s := range servers {
		waitEvent(t, ev, s.addr, client.Ejected, 0)
	}
	if seen := tally(t, c, 100); len(seen) != 2 {
		t.Fatalf("calls with every address ejected went to %v, want both", seen)
	}
}

// TestOutlierEjectionTimeouts: a server that accepts calls and never
// answers is ejected after exactly OutlierFailures calls in a row time
// out on it, and calls then avoid it.
func TestOutlierEjectionTimeouts(t *testing.T) {
	const failures = 5
	servers := threeServers(t)
	bad := servers[0]
	ev := newEvents()
	var last lastCall
	// Random spreads the calls whatever the load: PowerOfTwo would shun
	// the silent server after its first unanswered call by itself, and so
	// would routing around overdue answers.
	c := newClient(t, addrsOf(servers), fast(client.Config{
		Balancer:        client.Random,
		OverdueAfter:    -1, // keep calls on the silent server
		OnStateChange:   ev.hook,
		Observer:        last.observe,
		OutlierFailures: failures,
		OutlierBackoff:  client.Backoff{Base: time.Minute, Max: time.Minute},
	}))
	tally(t, c, 30)

	bad.setWedged(true)
	// The fifth timeout on the silent server proves that four did not
	// eject it (the others being up, an ejected address gets no calls);
	// the calls after it prove that five did.
	ok := timeoutsOn(t, c, &last, bad.addr, failures)
	waitEvent(t, ev, bad.addr, client.Ejected, 0)
	seen := tally(t, c, 300)
	if seen[bad.id] != 0 {
		t.Fatalf("calls after the ejection went to %v", seen)
	}
	t.Logf("ejected after %d timeouts in a row (%d calls answered by the others meanwhile); then %v", failures, ok, seen)
}

// TestOutlierEjectionReturns: an ejected address comes back when its
// ejection ends; still failing, it is ejected again; recovered, it serves.
func TestOutlierEjectionReturns(t *testing.T) {
	const failures = 3
	servers := threeServers(t)
	bad := servers[0]
	ev := newEvents()
	var last lastCall
	c := newClient(t, addrsOf(servers), fast(client.Config{
		Balancer:        client.Random,
		OverdueAfter:    -1, // keep calls on the silent server
		OnStateChange:   ev.hook,
		Observer:        last.observe,
		OutlierFailures: failures,
		OutlierBackoff:  client.Backoff{Base: 50 * time.Millisecond, Max: time.Second},
	}))
	bad.setWedged(true)
	timeoutsOn(t, c, &last, bad.addr, failures)
	next := waitEvent(t, ev, bad.addr, client.Ejected, 0)
	next = waitEvent(t, ev, bad.addr, client.Restored, next)
	timeoutsOn(t, c, &last, bad.addr, failures)
	next = waitEvent(t, ev, bad.addr, client.Ejected, next)
	bad.setWedged(false)
	waitEvent(t, ev, bad.addr, client.Restored, next)
	if seen := tally(t, c, 300); seen[bad.id] == 0 {
		t.Fatalf("calls after recovery went to %v", seen)
	}
}

// lastCall keeps the CallInfo of the last call, for tests that make one
// call at a time.
type lastCall struct {
	mu   sync.Mutex
	info client.CallInfo
}

func (l *lastCall) observe(ci client.CallInfo) {
	l.mu.Lock()
	l.info = ci
	l.mu.Unlock()
}

func (l *lastCall) get() client.CallInfo {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.info
}

// timeoutsOn makes calls with a short deadline until n have timed out on
// addr, and returns how many succeeded meanwhile. Calls that time out
// elsewhere (a starved test machine) are tolerated.
func timeoutsOn(t testing.TB, c *client.Client, last *lastCall, addr string, n int) (ok int) {
	t.Helper()
	for failed := 0; failed < n; {
		if ok > 10000 {
			t.Fatal("the silent server was never picked")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		_, err := c.Call(ctx, []byte("x"))
		cancel()
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, context.DeadlineExceeded):
			t.Fatal(err)
		case last.get().Addr == addr:
			failed++
		}
	}
	return ok
}

// TestOutlierEjectionConnErrors: a server whose connections break under
// every call (its handler fails, so it closes them) is ejected even though
// it keeps accepting new connections.
func TestOutlierEjectionConnErrors(t *testing.T) {
	servers := threeServers(t)
	bad := servers[2]
	ev := newEvents()
	c := newClient(t, addrsOf(servers), fast(client.Config{
		Protocol:        client.ProtocolV1, // a v1 handler error closes the connection; mux answers an error frame
		Balancer:        client.RoundRobin,
		OnStateChange:   ev.hook,
		OutlierFailures: 3,
		OutlierBackoff:  client.Backoff{Base: time.Minute, Max: time.Minute},
	}))
	bad.setFailing(true)
	ctx := ctxFor(t)
	lost := 0
	for i := 0; lost < 3; i++ {
		if i > 10000 {
			t.Fatal("the failing server was never picked")
		}
		_, err := c.Call(ctx, []byte("x"))
		switch {
		case errors.Is(err, client.ErrConnLost):
			lost++
		case err != nil:
			t.Fatal(err)
		}
	}
	waitEvent(t, ev, bad.addr, client.Ejected, 0)
	before := bad.requests.Load()
	if seen := tally(t, c, 200); seen[bad.id] != 0 || bad.requests.Load() != before {
		t.Fatalf("calls after the ejection went to %v", seen)
	}
	t.Logf("ejected after %d lost connections", lost)
}

// TestHealthProbeTimeoutCancels: a probe that times out on a mux
// connection is cancelled on the server, as a call whose context ends is:
// its handler's context ends and its slot comes back. (It was left
// running: each such probe held one of the connection's slots until the
// connection closed, so that an address probed while slow could not be
// called, or, balanced by load, got no more calls once restored.)
func TestHealthProbeTimeoutCancels(t *testing.T) {
	cancelled := make(chan error, 16)
	var sick atomic.Bool
	sick.Store(true)
	_, addr, _ := startMux(t, server.HandlerFunc(func(ctx context.Context, req []byte, _ *span.Span) ([]byte, error) {
		if len(req) > 0 || !sick.Load() {
			return req, nil
		}
		select { // a probe, while sick: answered only when given up
		case <-ctx.Done():
			cancelled <- ctx.Err()
			return nil, ctx.Err()
		case <-time.After(safety):
			return nil, errors.New("the probe was never given up")
		}
	}), server.Config{})
	c := newClient(t, []string{addr}, client.Config{
		Protocol:    client.ProtocolMux,
		MaxInFlight: 2,
		HealthCheck: client.HealthCheck{Interval: 10 * time.Millisecond, Timeout: 20 * time.Millisecond},
	})
	for range 3 { // more than MaxInFlight: each one's slot came back
		select {
		case err := <-cancelled:
			// The probe's Timeout passed: the cancel says so.
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("the probe's handler ended with %v", err)
			}
		case <-time.After(safety):
			t.Fatal("a probe that timed out was not cancelled on the server")
		}
	}
	sick.Store(false)
	if got, err := c.Call(ctxFor(t), []byte("after")); err != nil || string(got) != "after" {
		t.Fatalf("a call once the probes pass: %q, %v", got, err)
	}
}
