package statsd

import (
	"errors"
	"math"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	cactus "github.com/cactus/go-statsd-client/v5/statsd"
)

// listen opens the UDP socket that plays the statsd daemon.
func listen(t *testing.T) net.PacketConn {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	return pc
}

// readLines reads packets until n statsd lines have arrived. Close has
// flushed every packet to the loopback socket before the tests call this,
// so the deadline only keeps a broken test from hanging.
func readLines(t *testing.T, pc net.PacketConn, n int) []string {
	t.Helper()
	if err := pc.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	var lines []string
	buf := make([]byte, 64<<10)
	for len(lines) < n {
		m, _, err := pc.ReadFrom(buf)
		if err != nil {
			t.Fatalf("got %d of %d lines %q: %v", len(lines), n, lines, err)
		}
		lines = append(lines, strings.Split(string(buf[:m]), "\n")...)
	}
	return lines
}

// expectNoMore fails if another packet is waiting. Everything was sent
// before Close returned and loopback delivery is immediate, so a short
// deadline is enough to see a surplus packet.
func expectNoMore(t *testing.T, pc net.PacketConn) {
	t.Helper()
	if err := pc.SetReadDeadline(time.Now().Add(50 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64<<10)
	if n, _, err := pc.ReadFrom(buf); err == nil {
		t.Errorf("unexpected extra packet %q", buf[:n])
	}
}

func newTestRecorder(t *testing.T, cfg Config) *Recorder {
	t.Helper()
	s, err := New(cfg)
	if err != nil {
		t.Fatalf("New(%+v): %v", cfg, err)
	}
	return s
}

func TestStatsdSendsLines(t *testing.T) {
	pc := listen(t)
	s := newTestRecorder(t, Config{Address: pc.LocalAddr().String(), Prefix: "myprefix"})

	s.Count("requests", 3)
	s.Count("requests", -2)
	s.Gauge("conns", 5)
	s.Timing("req", 1500*time.Microsecond)
	s.Timing("slow", 2*time.Second)
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	want := []string{
		"myprefix.requests:3|c",
		"myprefix.requests:-2|c",
		"myprefix.conns:5|g",
		"myprefix.req:1.5|ms",
		"myprefix.slow:2000|ms",
	}
	if got := readLines(t, pc, len(want)); !slices.Equal(got, want) {
		t.Errorf("received lines\n%q\nwant\n%q", got, want)
	}
	expectNoMore(t, pc)
	if d := s.Dropped(); d != 0 {
		t.Errorf("Dropped() = %d, want 0", d)
	}
}

func TestStatsdEmptyPrefix(t *testing.T) {
	pc := listen(t)
	s := newTestRecorder(t, Config{Address: pc.LocalAddr().String()})
	s.Count("requests", 1)
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if got, want := readLines(t, pc, 1), []string{"requests:1|c"}; !slices.Equal(got, want) {
		t.Errorf("received lines %q, want %q", got, want)
	}
}

func TestStatsdSampleRateMarksTimings(t *testing.T) {
	pc := listen(t)
	s := newTestRecorder(t, Config{Address: pc.LocalAddr().String(), SampleRate: 0.5})
	// Sampling is random, so test only the mark on what is sent: one
	// counter line always arrives, and some timing lines with it.
	const timings = 200
	for range timings {
		s.Timing("t", time.Millisecond)
	}
	s.Count("end", 1)
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	var got []string
	for !slices.Contains(got, "end:1|c") {
		got = append(got, readLines(t, pc, 1)...)
	}
	sampled := 0
	for _, line := range got {
		switch line {
		case "end:1|c":
		case "t:1|ms|@0.500000":
			sampled++
		default:
			t.Errorf("unexpected line %q", line)
		}
	}
	// The chance of all 200 or none being kept is 2^-199.
	if sampled == 0 || sampled == timings {
		t.Errorf("%d of %d timings sent with SampleRate 0.5, want some but not all", sampled, timings)
	}
}

// gatedSink holds the drainer inside its first call until release is
// closed, so that a test can fill the queue behind it deterministically.
type gatedSink struct {
	sink
	once     sync.Once
	entered  chan struct{}
	release  chan struct{}
	released sync.Once
}

func newGatedSink(s sink) *gatedSink {
	return &gatedSink{sink: s, entered: make(chan struct{}), release: make(chan struct{})}
}

func (g *gatedSink) Inc(stat string, value int64, rate float32, tags ...cactus.Tag) error {
	g.once.Do(func() {
		close(g.entered)
		<-g.release
	})
	return g.sink.Inc(stat, value, rate, tags...)
}

func (g *gatedSink) open() { g.released.Do(func() { close(g.release) }) }

func TestStatsdDropsWhenQueueFull(t *testing.T) {
	pc := listen(t)
	cfg, err := Config{Address: pc.LocalAddr().String(), Prefix: "p", QueueSize: 4}.validate()
	if err != nil {
		t.Fatal(err)
	}
	client, err := cactus.NewClientWithConfig(&cactus.ClientConfig{Address: cfg.Address, Prefix: cfg.Prefix, UseBuffered: true})
	if err != nil {
		t.Fatal(err)
	}
	gate := newGatedSink(client)
	s := newRecorder(cfg, gate)
	defer s.Close()
	defer gate.open() // runs first, so a failing test cannot leave Close stuck

	s.Count("held", 1)
	<-gate.entered // the drainer has taken "held" and is stuck; the queue is empty

	const extra = 10
	for range extra {
		s.Count("queued", 1)
	}
	if got, want := s.Dropped(), uint64(extra-cfg.QueueSize); got != want {
		t.Errorf("Dropped() with the drainer stuck = %d, want %d", got, want)
	}

	gate.open()
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	want := []string{"p.held:1|c"}
	for range cfg.QueueSize {
		want = append(want, "p.queued:1|c")
	}
	if got := readLines(t, pc, len(want)); !slices.Equal(got, want) {
		t.Errorf("received lines %q, want %q", got, want)
	}
	expectNoMore(t, pc)
	if sent, got := 1+extra, len(want)+int(s.Dropped()); got != sent {
		t.Errorf("received %d + dropped %d = %d, want the %d sent", len(want), s.Dropped(), got, sent)
	}
}

func TestStatsdConcurrentCountsAddUp(t *testing.T) {
	pc := listen(t)
	s := newTestRecorder(t, Config{Address: pc.LocalAddr().String(), QueueSize: 256})

	const goroutines, perGoroutine = 4, 250
	var wg sync.WaitGroup
	for range goroutines {
		wg.Go(func() {
			for range perGoroutine {
				s.Count("c", 1)
			}
		})
	}
	wg.Wait()
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	dropped := int(s.Dropped())
	lines := readLines(t, pc, goroutines*perGoroutine-dropped)
	for _, line := range lines {
		if line != "c:1|c" {
			t.Fatalf("unexpected line %q", line)
		}
	}
	expectNoMore(t, pc)
	if got := len(lines) + dropped; got != goroutines*perGoroutine {
		t.Errorf("received %d + dropped %d = %d, want %d", len(lines), dropped, got, goroutines*perGoroutine)
	}
}

func TestStatsdRecordingAfterCloseIsDropped(t *testing.T) {
	pc := listen(t)
	s := newTestRecorder(t, Config{Address: pc.LocalAddr().String()})
	if err := s.Close(); err != nil {
		t.Fatalf("first Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	s.Count("c", 1)
	s.Gauge("g", 1)
	s.Timing("t", time.Second)
	if got := s.Dropped(); got != 3 {
		t.Errorf("Dropped() after 3 events past Close = %d, want 3", got)
	}
	expectNoMore(t, pc)
}

// Run under -race: recording while several goroutines Close must neither
// panic nor race, and every Close must return only once shutdown is done.
func TestStatsdCloseWhileRecording(t *testing.T) {
	pc := listen(t)
	s := newTestRecorder(t, Config{Address: pc.LocalAddr().String(), QueueSize: 16})

	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for i := range 500 {
				s.Count("c", 1)
				s.Timing("t", time.Duration(i))
			}
		})
	}
	errs := make(chan error, 3)
	for range 3 {
		wg.Go(func() { errs <- s.Close() })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("Close: %v", err)
		}
	}
	before := s.Dropped()
	s.Count("c", 1)
	if got := s.Dropped(); got != before+1 {
		t.Errorf("Dropped() went from %d to %d after one Count past Close, want +1", before, got)
	}
}

func TestNewInvalidConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"no address", Config{}},
		{"address without port", Config{Address: "localhost"}},
		{"negative flush interval", Config{Address: "127.0.0.1:8125", FlushInterval: -time.Second}},
		{"negative flush bytes", Config{Address: "127.0.0.1:8125", FlushBytes: -1}},
		{"flush bytes over UDP max", Config{Address: "127.0.0.1:8125", FlushBytes: 70000}},
		{"negative queue size", Config{Address: "127.0.0.1:8125", QueueSize: -1}},
		{"negative sample rate", Config{Address: "127.0.0.1:8125", SampleRate: -0.1}},
		{"sample rate above 1", Config{Address: "127.0.0.1:8125", SampleRate: 1.5}},
		{"NaN sample rate", Config{Address: "127.0.0.1:8125", SampleRate: float32(math.NaN())}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := New(tc.cfg)
			if !errors.Is(err, ErrInvalidConfig) {
				t.Errorf("New(%+v) error = %v, want one matching ErrInvalidConfig", tc.cfg, err)
			}
			if s != nil {
				t.Errorf("New returned a Recorder with an error")
				s.Close()
			}
		})
	}
}

func TestConfigDefaults(t *testing.T) {
	got, err := Config{Address: "127.0.0.1:8125"}.validate()
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		Address:       "127.0.0.1:8125",
		FlushInterval: 100 * time.Millisecond,
		FlushBytes:    1432,
		QueueSize:     8192,
		SampleRate:    1,
	}
	if got != want {
		t.Errorf("defaults = %+v, want %+v", got, want)
	}
}
