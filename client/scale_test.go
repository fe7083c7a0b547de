package client_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/sirupsen/logrus"

	"github.com/tcpez/tcpez/client"
	"github.com/tcpez/tcpez/server"
	"github.com/tcpez/tcpez/span"
	"github.com/tcpez/tcpez/stats"
)

// These tests run the client against real parts: tcpez servers from the
// server package, and a DNS server on loopback that the client's
// DNSResolver queries through a net.Resolver dialling it.

// testDNS is an authoritative DNS server for the test's names, over UDP
// and TCP, whose records the test changes as it goes.
type testDNS struct {
	udpAddr, tcpAddr string
	queries          atomic.Int64
	// dialled holds the resolver's open connections. A lookup that its
	// caller abandoned goes on in the background until it has an answer
	// or its read times out; cleanup closes them so it ends at once.
	dialled sync.Map // net.Conn → bool

	mu   sync.Mutex
	a    map[string][]net.IP // fully qualified name → A records
	srv  map[string][]srvRec // fully qualified name → SRV records
	fail bool                // answer every query with SERVFAIL
}

type srvRec struct {
	target string
	port   uint16
}

func newTestDNS(t testing.TB) *testDNS {
	t.Helper()
	d := &testDNS{a: make(map[string][]net.IP), srv: make(map[string][]srvRec)}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		pc.Close()
		t.Fatal(err)
	}
	d.udpAddr, d.tcpAddr = pc.LocalAddr().String(), ln.Addr().String()
	h := dns.HandlerFunc(d.serve)
	for _, s := range []*dns.Server{{PacketConn: pc, Handler: h}, {Listener: ln, Handler: h}} {
		started := make(chan struct{})
		s.NotifyStartedFunc = func() { close(started) }
		done := make(chan error, 1)
		go func() { done <- s.ActivateAndServe() }()
		select {
		case <-started:
		case err := <-done:
			t.Fatal("dns server:", err)
		}
		t.Cleanup(func() {
			s.Shutdown()
			<-done
		})
	}
	t.Cleanup(func() {
		pc.Close()
		d.dialled.Range(func(nc, _ any) bool {
			nc.(net.Conn).Close()
			return true
		})
	})
	return d
}

// trackedConn leaves set when it is closed.
type trackedConn struct {
	net.Conn
	set *sync.Map
}

func (c *trackedConn) Close() error {
	c.set.Delete(c)
	return c.Conn.Close()
}

type trackedUDPConn struct {
	*net.UDPConn
	set *sync.Map
}

func (c *trackedUDPConn) Close() error {
	c.set.Delete(c)
	return c.UDPConn.Close()
}

// resolver is a net.Resolver that asks d, whatever the system's settings.
func (d *testDNS) resolver() *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		addr := d.tcpAddr
		if strings.HasPrefix(network, "udp") {
			addr = d.udpAddr
		}
		var dl net.Dialer
		nc, err := dl.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		var tc net.Conn = &trackedConn{Conn: nc, set: &d.dialled}
		if uc, ok := nc.(*net.UDPConn); ok {
			// The resolver frames its messages by whether the
			// connection is a net.PacketConn.
			tc = &trackedUDPConn{UDPConn: uc, set: &d.dialled}
		}
		d.dialled.Store(tc, true)
		return tc, nil
	}}
}

func (d *testDNS) setA(name string, ips ...string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	var list []net.IP
	for _, ip := range ips {
		list = append(list, net.ParseIP(ip))
	}
	d.a[name] = list
}

func (d *testDNS) setSRV(name string, recs ...srvRec) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.srv[name] = recs
}

func (d *testDNS) setFail(fail bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.fail = fail
}

func (d *testDNS) serve(w dns.ResponseWriter, req *dns.Msg) {
	d.queries.Add(1)
	m := new(dns.Msg)
	m.SetReply(req)
	m.Authoritative = true
	d.mu.Lock()
	defer d.mu.Unlock()
	switch {
	case d.fail:
		m.Rcode = dns.RcodeServerFailure
	case len(req.Question) != 1:
		m.Rcode = dns.RcodeFormatError
	default:
		q := req.Question[0]
		name := strings.ToLower(q.Name)
		a, hasA := d.a[name]
		recs, hasSRV := d.srv[name]
		hdr := dns.RR_Header{Name: q.Name, Rrtype: q.Qtype, Class: dns.ClassINET, Ttl: 1}
		switch {
		case !hasA && !hasSRV:
			m.Rcode = dns.RcodeNameError
		case q.Qtype == dns.TypeA:
			for _, ip := range a {
				m.Answer = append(m.Answer, &dns.A{Hdr: hdr, A: ip})
			}
		case q.Qtype == dns.TypeSRV:
			for _, r := range recs {
				m.Answer = append(m.Answer, &dns.SRV{Hdr: hdr, Priority: 10, Weight: 10, Port: r.port, Target: r.target})
			}
		}
		// Anything else, AAAA included: the name exists, no records.
	}
	_ = w.WriteMsg(m)
}

// idServer is a tcpez byte server whose answers are its id, a colon and
// the request, so that the test sees which server answered. It can be
// wedged: its handler then holds every request until it is unwedged.
type idServer struct {
	id       string
	addr     string
	srv      *server.Server
	served   chan error
	requests atomic.Int64
	open     atomic.Int64 // connections accepted and not yet closed

	mu    sync.Mutex
	wedge chan struct{}
	sick  bool // answer "health" with "sick"
	fail  bool // fail every request: the server closes the connection
	once  sync.Once
}

func startIDServer(t testing.TB, id, listenAddr string) *idServer {
	t.Helper()
	ln, err := net.Listen("tcp", listenAddr)
	if err != nil {
		t.Fatal(err)
	}
	return serveID(t, id, ln)
}

func serveID(t testing.TB, id string, ln net.Listener) *idServer {
	logger := logrus.New()
	logger.SetOutput(io.Discard)
	s := &idServer{id: id, addr: ln.Addr().String(), served: make(chan error, 1)}
	s.srv = server.New(server.HandlerFunc(s.respond), server.Config{Logger: logger})
	go func() { s.served <- s.srv.Serve(&countingListener{Listener: ln, open: &s.open}) }()
	t.Cleanup(func() {
		s.unwedge()
		s.stop(t, false)
	})
	return s
}

func (s *idServer) respond(ctx context.Context, req []byte, _ *span.Span) ([]byte, error) {
	s.requests.Add(1)
	s.mu.Lock()
	wedge, sick, fail := s.wedge, s.sick, s.fail
	s.mu.Unlock()
	if fail {
		return nil, errors.New("failing on purpose")
	}
	if wedge != nil {
		select {
		case <-wedge:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if sick && string(req) == "health" {
		return []byte("sick"), nil
	}
	return append([]byte(s.id+":"), req...), nil
}

func (s *idServer) setWedged(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case on && s.wedge == nil:
		s.wedge = make(chan struct{})
	case !on && s.wedge != nil:
		close(s.wedge)
		s.wedge = nil
	}
}

func (s *idServer) unwedge() { s.setWedged(false) }

func (s *idServer) setFailing(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail = on
}

func (s *idServer) setSick(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sick = on
}

// stop ends the server, gracefully (Shutdown) or at once (Close), and
// waits for Serve to return; later calls do nothing.
func (s *idServer) stop(t testing.TB, graceful bool) {
	s.once.Do(func() {
		if graceful {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := s.srv.Shutdown(ctx); err != nil {
				t.Error("Shutdown:", err)
			}
		} else {
			s.srv.Close()
		}
		if err := <-s.served; !errors.Is(err, server.ErrServerClosed) {
			t.Error("Serve:", err)
		}
	})
}

// countingListener counts the connections it accepted that are still open.
type countingListener struct {
	net.Listener
	open *atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	nc, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.open.Add(1)
	return &countedConn{Conn: nc, open: l.open}, nil
}

type countedConn struct {
	net.Conn
	open *atomic.Int64
	once sync.Once
}

func (c *countedConn) Close() error {
	c.once.Do(func() { c.open.Add(-1) })
	return c.Conn.Close()
}

func portOf(t testing.TB, addr string) uint16 {
	t.Helper()
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return ap.Port()
}

// serverOf returns the id in an answer, checking that the rest echoes req.
func serverOf(ans, req []byte) (string, error) {
	id, rest, ok := strings.Cut(string(ans), ":")
	if !ok || rest != string(req) {
		return "", fmt.Errorf("answer %q to %q", ans, req)
	}
	return id, nil
}

// setWatcher wraps a Resolver and remembers the last set the client was
// given, and how many it was given.
type setWatcher struct {
	client.Resolver
	mu      sync.Mutex
	last    []string
	updates int
}

func (w *setWatcher) Watch(ctx context.Context, u client.Updater) error {
	return w.Resolver.Watch(ctx, watchedUpdater{u, w})
}

// watchedUpdater passes a Resolver's reports on and notes each set.
type watchedUpdater struct {
	client.Updater
	w *setWatcher
}

func (u watchedUpdater) Update(addrs []string) {
	u.Updater.Update(addrs) // applied: removed addresses are draining
	u.w.mu.Lock()
	u.w.last, u.w.updates = slices.Clone(addrs), u.w.updates+1
	u.w.mu.Unlock()
}

func (w *setWatcher) current() ([]string, int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.last), w.updates
}

// waitSet waits until the client has been given exactly want.
func (w *setWatcher) waitSet(t testing.TB, want ...string) {
	t.Helper()
	slices.Sort(want)
	waitUntil(t, fmt.Sprintf("address set %v", want), func() bool {
		got, _ := w.current()
		return slices.Equal(got, want)
	})
}

// waitUntil polls cond for at most 20 seconds.
func waitUntil(t testing.TB, what string, cond func() bool) {
	t.Helper()
	safety := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(safety) {
			t.Fatal("timed out waiting for", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// load runs workers goroutines making calls until stop is closed or each
// has made maxCalls, and tallies where the answers came from and which
// calls failed.
type load struct {
	ok    atomic.Int64
	phase atomic.Int32 // the test's phase, stamped on each failure

	mu      sync.Mutex
	servers map[string]int
	fails   []loadFailure

	stop chan struct{}
	wg   sync.WaitGroup
}

type loadFailure struct {
	phase int32
	err   error
}

func startLoad(t testing.TB, c *client.Client, workers, maxCalls int) *load {
	l := &load{servers: make(map[string]int), stop: make(chan struct{})}
	base := ctxFor(t)
	for w := range workers {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			counts := make(map[string]int)
			defer func() {
				l.mu.Lock()
				for id, n := range counts {
					l.servers[id] += n
				}
				l.mu.Unlock()
			}()
			for i := range maxCalls {
				select {
				case <-l.stop:
					return
				default:
				}
				req := fmt.Appendf(nil, "w%d-%d", w, i)
				ctx, cancel := context.WithTimeout(base, 10*time.Second)
				ans, err := c.Call(ctx, req)
				cancel()
				var id string
				if err == nil {
					id, err = serverOf(ans, req)
				}
				if err != nil {
					l.mu.Lock()
					l.fails = append(l.fails, loadFailure{l.phase.Load(), err})
					l.mu.Unlock()
					continue
				}
				counts[id]++
				l.ok.Add(1)
			}
		}()
	}
	t.Cleanup(l.finish)
	return l
}

// finish stops the load and waits for it; it may be called again.
func (l *load) finish() {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	l.wg.Wait()
}

// more waits until n more calls have succeeded.
func (l *load) more(t testing.TB, n int64) {
	t.Helper()
	want := l.ok.Load() + n
	waitUntil(t, fmt.Sprintf("%d successful calls", want), func() bool { return l.ok.Load() >= want })
}

func (l *load) failures() []loadFailure {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.fails)
}

func (l *load) spread() map[string]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.servers
}

// steadySpread waits for n more calls and returns how many requests each
// of servers got meanwhile.
func steadySpread(t testing.TB, l *load, servers []*idServer, n int64) map[string]int64 {
	t.Helper()
	before := make([]int64, len(servers))
	for i, s := range servers {
		before[i] = s.requests.Load()
	}
	l.more(t, n)
	out := make(map[string]int64)
	for i, s := range servers {
		out[s.id] = s.requests.Load() - before[i]
	}
	return out
}

// retire takes s out of DNS the way an operator should: remove its
// records (update does, and returns the address set that is left), wait
// for the client to drop it and drain its connections, and only then
// shut it down gracefully.
func retire(t testing.TB, w *setWatcher, s *idServer, update func() []string) {
	t.Helper()
	w.waitSet(t, update()...)
	waitUntil(t, s.id+" drained", func() bool { return s.open.Load() == 0 })
	s.stop(t, true)
}

const (
	srvName      = "_tcpez._tcp.svc.tcpez.test."
	workers      = 32
	callsPerWork = 20000 // a bound; the test stops the load long before
)

// TestDNSSRVScaleOut runs 32 goroutines of calls while servers come and
// go in SRV records: added servers take load, a removed server drains and
// shuts down gracefully with zero failed calls, and a server killed while
// still listed fails only the calls that were in flight on it.
func TestDNSSRVScaleOut(t *testing.T) {
	d := newTestDNS(t)
	var servers []*idServer
	// set lists servers idx in the SRV records and returns their addresses.
	set := func(idx ...int) []string {
		var recs []srvRec
		var addrs []string
		for _, i := range idx {
			s := servers[i]
			recs = append(recs, srvRec{target: s.id + ".tcpez.test.", port: portOf(t, s.addr)})
			addrs = append(addrs, s.addr)
		}
		d.setSRV(srvName, recs...)
		return addrs
	}
	for i := range 4 {
		s := startIDServer(t, fmt.Sprintf("s%d", i+1), "127.0.0.1:0")
		servers = append(servers, s)
		d.setA(s.id+".tcpez.test.", "127.0.0.1")
	}
	initial := set(0, 1)

	var dnsErrs atomic.Int64
	w := &setWatcher{Resolver: client.DNSResolver{
		Name:        srvName,
		Interval:    20 * time.Millisecond,
		NetResolver: d.resolver(),
		OnError:     func(error) { dnsErrs.Add(1) },
	}}
	ev := newEvents()
	c := newClient(t, nil, fast(client.Config{Resolver: w, OnStateChange: ev.hook}))
	w.waitSet(t, initial...)

	l := startLoad(t, c, workers, callsPerWork)
	l.more(t, 1000)

	// Scale out: s3 appears and takes its share.
	w.waitSet(t, set(0, 1, 2)...)
	waitCount(t, &servers[2].requests, 500)

	// Scale in, gracefully: s1 leaves DNS, drains, shuts down.
	retire(t, w, servers[0], func() []string { return set(1, 2) })
	l.more(t, 1000)

	// s4 appears.
	w.waitSet(t, set(1, 2, 3)...)
	waitCount(t, &servers[3].requests, 500)
	if f := l.failures(); len(f) > 0 {
		t.Fatalf("%d calls failed while servers came and went gracefully; first: %v", len(f), f[0].err)
	}
	steady := steadySpread(t, l, servers[1:], 3000)

	// A crash: s2 dies while still listed. Only the calls in flight on it
	// may fail.
	l.phase.Store(1)
	servers[1].stop(t, false)
	waitEvent(t, ev, servers[1].addr, client.Disconnected, 0)
	l.phase.Store(2)
	w.waitSet(t, set(2, 3)...)
	l.more(t, 1000)
	l.finish()

	var crashed int
	for _, f := range l.failures() {
		var ce *client.ConnError
		if f.phase == 0 || !errors.As(f.err, &ce) || ce.Addr != servers[1].addr {
			t.Errorf("unexpected failure in phase %d: %v", f.phase, f.err)
			continue
		}
		crashed++
	}
	if crashed > workers {
		t.Errorf("%d calls failed with the crashed server; at most %d were in flight", crashed, workers)
	}
	_, updates := w.current()
	t.Logf("SRV: %d calls ok, %d failed with the crashed server (of %d workers), %d address sets, %d DNS queries, %d lookup errors; per server over the test: %v; 3000 calls over s2-s4: %v",
		l.ok.Load(), crashed, workers, updates, d.queries.Load(), dnsErrs.Load(), l.spread(), steady)
}

// sharedPortServers starts n servers on 127.0.0.2, 127.0.0.3, ... all on
// one port, as A records need; it skips the test where those loopback
// addresses cannot be bound.
func sharedPortServers(t *testing.T, n int) []*idServer {
	t.Helper()
	for range 10 {
		var lns []net.Listener
		first, err := net.Listen("tcp", "127.0.0.2:0")
		if err != nil {
			t.Skip("cannot listen on 127.0.0.2:", err)
		}
		lns = append(lns, first)
		_, port, _ := net.SplitHostPort(first.Addr().String())
		for i := 1; i < n && err == nil; i++ {
			var ln net.Listener
			if ln, err = net.Listen("tcp", fmt.Sprintf("127.0.0.%d:%s", i+2, port)); err == nil {
				lns = append(lns, ln)
			}
		}
		if err != nil {
			for _, ln := range lns {
				ln.Close()
			}
			continue // the port is taken on another address: try another
		}
		var out []*idServer
		for i, ln := range lns {
			out = append(out, serveID(t, fmt.Sprintf("a%d", i+1), ln))
		}
		return out
	}
	t.Skip("found no port free on every loopback address")
	return nil
}

// TestDNSAScaleOut is TestDNSSRVScaleOut with A records, as a Kubernetes
// headless Service gives: one port, an address per server.
func TestDNSAScaleOut(t *testing.T) {
	servers := sharedPortServers(t, 4)
	const name = "svc.tcpez.test."
	d := newTestDNS(t)
	// set lists servers idx in the A records and returns their addresses.
	set := func(idx ...int) []string {
		var ips, addrs []string
		for _, i := range idx {
			host, _, _ := net.SplitHostPort(servers[i].addr)
			ips = append(ips, host)
			addrs = append(addrs, servers[i].addr)
		}
		d.setA(name, ips...)
		return addrs
	}
	w := &setWatcher{Resolver: client.DNSResolver{
		Name:        fmt.Sprint(name, ":", portOf(t, servers[0].addr)),
		Interval:    20 * time.Millisecond,
		NetResolver: d.resolver(),
	}}
	c := newClient(t, nil, fast(client.Config{Resolver: w}))
	w.waitSet(t, set(0, 1)...)

	l := startLoad(t, c, workers, callsPerWork)
	l.more(t, 1000)
	w.waitSet(t, set(0, 1, 2)...)
	waitCount(t, &servers[2].requests, 500)
	retire(t, w, servers[0], func() []string { return set(1, 2) })
	w.waitSet(t, set(1, 2, 3)...)
	waitCount(t, &servers[3].requests, 500)
	retire(t, w, servers[1], func() []string { return set(2, 3) })
	steady := steadySpread(t, l, servers[2:], 3000)
	l.finish()
	if f := l.failures(); len(f) > 0 {
		t.Fatalf("%d calls failed while servers came and went gracefully; first: %v", len(f), f[0].err)
	}
	t.Logf("A records: %d calls ok, 0 failed; per server over the test: %v; 3000 calls over a3-a4: %v", l.ok.Load(), l.spread(), steady)
}

// TestDNSFailureKeepsSet: while DNS fails, the client keeps its servers
// and counts the failed lookups; the set is reported only when it changes.
func TestDNSFailureKeepsSet(t *testing.T) {
	d := newTestDNS(t)
	s1 := startIDServer(t, "s1", "127.0.0.1:0")
	s2 := startIDServer(t, "s2", "127.0.0.1:0")
	const name = "_tcpez._tcp.keep.tcpez.test."
	rec := func(s *idServer) srvRec {
		d.setA(s.id+".tcpez.test.", "127.0.0.1")
		return srvRec{s.id + ".tcpez.test.", portOf(t, s.addr)}
	}
	d.setSRV(name, rec(s1), rec(s2))
	var dnsErrs atomic.Int64
	mem := stats.NewMemory()
	w := &setWatcher{Resolver: client.DNSResolver{
		Name:        name,
		Interval:    10 * time.Millisecond,
		NetResolver: d.resolver(),
		OnError:     func(error) { dnsErrs.Add(1) },
	}}
	c := newClient(t, nil, client.Config{Resolver: w, Stats: mem})
	w.waitSet(t, s1.addr, s2.addr)

	// Unchanged records: many lookups, no new set.
	q := d.queries.Load()
	waitUntil(t, "more lookups", func() bool { return d.queries.Load() >= q+20 })
	if _, n := w.current(); n != 1 {
		t.Fatalf("%d address sets for unchanged records, want 1", n)
	}

	d.setFail(true)
	waitUntil(t, "failed lookups", func() bool { return dnsErrs.Load() >= 3 })
	ctx := ctxFor(t)
	seen := make(map[string]int)
	for i := range 100 {
		req := fmt.Appendf(nil, "%d", i)
		ans, err := c.Call(ctx, req)
		if err != nil {
			t.Fatal("call during the DNS outage:", err)
		}
		id, err := serverOf(ans, req)
		if err != nil {
			t.Fatal(err)
		}
		seen[id]++
	}
	if got, n := w.current(); n != 1 || len(got) != 2 {
		t.Fatalf("DNS outage changed the set to %v (%d sets)", got, n)
	}
	if n := mem.Counter(client.StatResolveErrors); n < 3 {
		t.Errorf("%s = %d, want at least 3", client.StatResolveErrors, n)
	}

	d.setSRV(name, rec(s2))
	d.setFail(false)
	w.waitSet(t, s2.addr)
	if _, n := w.current(); n != 2 {
		t.Errorf("%d address sets, want 2", n)
	}
	t.Logf("%d failed lookups during the outage; calls spread %v", dnsErrs.Load(), seen)
}

// TestDNSFirstLookupFails: with no address known, a failed lookup fails
// calls at once with its error, until the name resolves.
func TestDNSFirstLookupFails(t *testing.T) {
	d := newTestDNS(t)
	s := startIDServer(t, "s1", "127.0.0.1:0")
	const name = "late.tcpez.test."
	c := newClient(t, nil, fast(client.Config{
		Resolver: client.DNSResolver{
			Name:        fmt.Sprint(name, ":", portOf(t, s.addr)),
			Interval:    10 * time.Millisecond,
			NetResolver: d.resolver(),
		},
	}))
	ctx := ctxFor(t)
	var dnsErr *net.DNSError
	waitUntil(t, "a DNS failure", func() bool {
		_, err := c.Call(ctx, []byte("x"))
		if err == nil {
			t.Fatal("call succeeded with no server in DNS")
		}
		return errors.Is(err, client.ErrNoConnection) && errors.As(err, &dnsErr)
	})
	if !dnsErr.IsNotFound {
		t.Errorf("DNS error %v, want not found", dnsErr)
	}

	d.setA(name, "127.0.0.1")
	waitUntil(t, "a call to succeed", func() bool {
		ans, err := c.Call(ctx, []byte("x"))
		return err == nil && string(ans) == "s1:x"
	})
}

// failUpdater fails the test when a Resolver reports anything.
type failUpdater struct {
	t    *testing.T
	name string
}

func (u failUpdater) Update([]string) { u.t.Errorf("%q: Update called", u.name) }
func (u failUpdater) Error(error)     { u.t.Errorf("%q: Error called", u.name) }

func TestDNSResolverBadName(t *testing.T) {
	for _, name := range []string{"", "host", "host:", "host:http", "host:0", ":80", "_svc", "unix:/tmp/x"} {
		r := client.DNSResolver{Name: name}
		err := r.Watch(context.Background(), failUpdater{t, name})
		if !errors.Is(err, client.ErrInvalidConfig) {
			t.Errorf("%q: %v, want ErrInvalidConfig", name, err)
		}
	}
}
