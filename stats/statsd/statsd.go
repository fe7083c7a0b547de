// Package statsd sends tcpez's metrics to a statsd daemon over UDP. Make a
// Recorder with New, give it to the server or client as their
// stats.Recorder, and Close it at exit:
//
//	rec, err := statsd.New(statsd.Config{Address: "127.0.0.1:8125", Prefix: "myservice"})
//	if err != nil { ... }
//	defer rec.Close()
//	srv := server.New(h, server.Config{Stats: rec})
//
// It lives apart from package stats so that only programs that send to
// statsd link the statsd client library.
package statsd

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	cactus "github.com/cactus/go-statsd-client/v5/statsd"

	"github.com/tcpez/tcpez/stats"
)

// ErrInvalidConfig is wrapped by the error New returns for a
// Config it rejects; the message names the offending field.
var ErrInvalidConfig = errors.New("tcpez/statsd: invalid config")

// Defaults for the zero fields of Config.
const (
	DefaultFlushInterval = 100 * time.Millisecond
	// DefaultFlushBytes is the largest statsd packet that fits in one
	// Ethernet frame, so that no packet is fragmented on the way.
	DefaultFlushBytes = 1432
	DefaultQueueSize  = 8192
)

// maxUDPPayload is the most an IPv4 UDP datagram can carry. A larger
// FlushBytes would make every full packet fail to send.
const maxUDPPayload = 65507

// Config configures New. Zero fields take the documented
// defaults.
type Config struct {
	// Address is the host:port of the statsd daemon (UDP). Required.
	Address string
	// Prefix is prepended, with a dot, to every metric name, e.g.
	// "myservice.tcpez". May be empty.
	Prefix string
	// FlushInterval bounds how long a metric waits in the client's packet
	// buffer before it is sent. Default DefaultFlushInterval.
	FlushInterval time.Duration
	// FlushBytes is the packet size at which the buffer is sent before the
	// interval is up. Default DefaultFlushBytes.
	FlushBytes int
	// QueueSize is how many events may wait for the background goroutine
	// before new ones are dropped. Default DefaultQueueSize.
	QueueSize int
	// SampleRate applies to Timing only, whose volume is one event per
	// request; counters are cheap to aggregate and stay exact. 0 means 1.0;
	// otherwise it must be in (0, 1].
	SampleRate float32
}

// validate returns cfg with defaults filled in, or an error wrapping
// ErrInvalidConfig.
func (cfg Config) validate() (Config, error) {
	if cfg.Address == "" {
		return cfg, fmt.Errorf("%w: Address is required", ErrInvalidConfig)
	}
	if _, _, err := net.SplitHostPort(cfg.Address); err != nil {
		return cfg, fmt.Errorf("%w: Address %q: %w", ErrInvalidConfig, cfg.Address, err)
	}
	if cfg.FlushInterval < 0 {
		return cfg, fmt.Errorf("%w: negative FlushInterval %v", ErrInvalidConfig, cfg.FlushInterval)
	}
	if cfg.FlushBytes < 0 || cfg.FlushBytes > maxUDPPayload {
		return cfg, fmt.Errorf("%w: FlushBytes %d outside [0, %d]", ErrInvalidConfig, cfg.FlushBytes, maxUDPPayload)
	}
	if cfg.QueueSize < 0 {
		return cfg, fmt.Errorf("%w: negative QueueSize %d", ErrInvalidConfig, cfg.QueueSize)
	}
	// Negated so that NaN, which fails every comparison, is rejected too.
	if !(cfg.SampleRate >= 0 && cfg.SampleRate <= 1) {
		return cfg, fmt.Errorf("%w: SampleRate %v outside (0, 1]", ErrInvalidConfig, cfg.SampleRate)
	}
	if cfg.FlushInterval == 0 {
		cfg.FlushInterval = DefaultFlushInterval
	}
	if cfg.FlushBytes == 0 {
		cfg.FlushBytes = DefaultFlushBytes
	}
	if cfg.QueueSize == 0 {
		cfg.QueueSize = DefaultQueueSize
	}
	if cfg.SampleRate == 0 {
		cfg.SampleRate = 1
	}
	return cfg, nil
}

// Recorder is a stats.Recorder that sends metrics to a statsd daemon over UDP.
//
// Recording never waits: the event goes into a bounded queue that one
// background goroutine feeds to a buffered statsd client, and when the
// queue is full the event is dropped and counted in Dropped. Call Close to
// send what is queued and stop the goroutine.
type Recorder struct {
	queue   chan event
	done    chan struct{} // closed by Close: drain the queue and return
	drained chan struct{} // closed by the drainer once it has returned
	closed  atomic.Bool
	dropped atomic.Uint64

	client    sink
	rate      float32
	closeOnce sync.Once
}

// sink is the part of cactus.Statter that Recorder uses. Tests put their own
// in front of the real client to hold the drainer still.
type sink interface {
	Inc(stat string, value int64, rate float32, tags ...cactus.Tag) error
	Gauge(stat string, value int64, rate float32, tags ...cactus.Tag) error
	TimingDuration(stat string, d time.Duration, rate float32, tags ...cactus.Tag) error
	Close() error
}

type eventKind uint8

const (
	kindCount eventKind = iota
	kindGauge
	kindTiming
)

// event is passed by value so that queueing it does not allocate.
type event struct {
	name  string
	value int64 // the delta, the gauge value, or the duration in nanoseconds
	kind  eventKind
}

// New validates cfg, creates a buffered statsd client and starts the
// goroutine that feeds it. Close must be called to stop that goroutine.
func New(cfg Config) (*Recorder, error) {
	cfg, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	client, err := cactus.NewClientWithConfig(&cactus.ClientConfig{
		Address:       cfg.Address,
		Prefix:        cfg.Prefix,
		UseBuffered:   true,
		FlushInterval: cfg.FlushInterval,
		FlushBytes:    cfg.FlushBytes,
	})
	if err != nil {
		return nil, fmt.Errorf("tcpez/statsd: creating the client for %s: %w", cfg.Address, err)
	}
	return newRecorder(cfg, client), nil
}

// newRecorder takes a validated cfg.
func newRecorder(cfg Config, client sink) *Recorder {
	s := &Recorder{
		queue:   make(chan event, cfg.QueueSize),
		done:    make(chan struct{}),
		drained: make(chan struct{}),
		client:  client,
		rate:    cfg.SampleRate,
	}
	go s.drain()
	return s
}

// Count queues an increment of the statsd counter name by delta.
func (s *Recorder) Count(name string, delta int64) {
	s.enqueue(event{name: name, value: delta, kind: kindCount})
}

// Gauge queues setting the statsd gauge name to value.
func (s *Recorder) Gauge(name string, value int64) {
	s.enqueue(event{name: name, value: value, kind: kindGauge})
}

// Timing queues d as a statsd timer, sent in (fractional) milliseconds.
// With a SampleRate below 1 only that fraction is sent, marked with the
// rate so that the daemon scales it back up.
func (s *Recorder) Timing(name string, d time.Duration) {
	s.enqueue(event{name: name, value: int64(d), kind: kindTiming})
}

// Dropped returns how many events were discarded because the queue was
// full or Recorder was closed.
func (s *Recorder) Dropped() uint64 {
	return s.dropped.Load()
}

// enqueue never closes or blocks on the queue, so that a call racing with
// Close cannot panic or stall the request it is made for. An event that
// passes the closed check just as Close runs may be left in the queue
// unsent and uncounted; that window is as narrow as the two lines below.
func (s *Recorder) enqueue(e event) {
	if s.closed.Load() {
		s.dropped.Add(1)
		return
	}
	select {
	case s.queue <- e:
	default:
		s.dropped.Add(1)
	}
}

func (s *Recorder) drain() {
	defer close(s.drained)
	for {
		select {
		case e := <-s.queue:
			s.send(e)
		case <-s.done:
			for {
				select {
				case e := <-s.queue:
					s.send(e)
				default:
					return
				}
			}
		}
	}
}

// send ignores errors: the buffered client only fails once it is closed,
// which happens after the drainer returns, and a metrics failure must not
// become a request failure anyway.
func (s *Recorder) send(e event) {
	switch e.kind {
	case kindCount:
		_ = s.client.Inc(e.name, e.value, 1)
	case kindGauge:
		_ = s.client.Gauge(e.name, e.value, 1)
	case kindTiming:
		_ = s.client.TimingDuration(e.name, time.Duration(e.value), s.rate)
	}
}

// Close stops accepting events, sends those already queued, flushes and
// closes the statsd client, and waits for the background goroutine to
// exit. Events recorded after Close are dropped and counted in Dropped.
//
// Close is safe to call more than once and concurrently; every call returns
// once shutdown is complete, and calls after the first return nil.
func (s *Recorder) Close() error {
	var err error
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		close(s.done)
		<-s.drained
		if cerr := s.client.Close(); cerr != nil {
			err = fmt.Errorf("tcpez/statsd: closing the client: %w", cerr)
		}
	})
	return err
}

var _ stats.Recorder = (*Recorder)(nil)
