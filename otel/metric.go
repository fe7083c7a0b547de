package tcpezotel

import (
	"context"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/metric"

	"github.com/tcpez/tcpez/client"
	"github.com/tcpez/tcpez/server"
)

// Recorder is a stats.Recorder that records to an OpenTelemetry meter:
// gauges to Int64Gauges, timings to Float64Histograms in seconds, and
// counts to Int64Counters or Int64UpDownCounters (see Count), each
// instrument made on the first use of its name. A name the meter refuses
// is dropped, after OnError hears of it.
type Recorder struct {
	meter metric.Meter
	// OnError, when set, hears of instruments the meter could not make.
	OnError func(name string, err error)

	counters   sync.Map // name → metric.Int64Counter or metric.Int64UpDownCounter
	gauges     sync.Map // name → metric.Int64Gauge
	histograms sync.Map // name → metric.Float64Histogram
}

// NewRecorder returns a Recorder for the meter mp gives this package.
func NewRecorder(mp metric.MeterProvider) *Recorder {
	return &Recorder{meter: mp.Meter(ScopeName)}
}

// Count adds delta to the counter name.
//
// The counts tcpez itself makes only grow (the server's and the client's
// Stat constants, such as requests or client.calls, and the rpc.server.*
// and rpc.client.* counts of protoserver/middleware): they go to
// Int64Counters, monotonic sums, which a backend can take rates of. Any
// other name, notably a span's counters, which span.Span.Add lets go
// down, goes to an Int64UpDownCounter, a non-monotonic sum: a delta of -3
// is exported as such, not as a monotonic counter that fell.
func (r *Recorder) Count(name string, delta int64) {
	if !monotonic(name) {
		if c, ok := instrument(r, &r.counters, name, func() (metric.Int64UpDownCounter, error) {
			return r.meter.Int64UpDownCounter(name)
		}); ok {
			c.Add(context.Background(), delta)
		}
		return
	}
	if c, ok := instrument(r, &r.counters, name, func() (metric.Int64Counter, error) {
		return r.meter.Int64Counter(name)
	}); ok {
		c.Add(context.Background(), delta)
	}
}

// monotonic reports whether Recorder counts name on a monotonic
// Int64Counter: whether it is one of the counts tcpez makes itself, which
// only grow (see Count).
func monotonic(name string) bool {
	return ownCounts[name] || strings.HasPrefix(name, "rpc.server.") || strings.HasPrefix(name, "rpc.client.")
}

// ownCounts are the names of the server's and the client's Stat
// constants (gauges and timings among them, which never reach Count).
// A test checks the list against the constants.
var ownCounts = func() map[string]bool {
	m := map[string]bool{}
	for _, name := range []string{
		server.StatConnsAccepted, server.StatConnsRefused, server.StatConnsRefusedPeer,
		server.StatConnsHandshakeEvicted, server.StatConnsOpen, server.StatConnsIdleTimeout,
		server.StatRequests, server.StatRequestsInFlight, server.StatRequestTime,
		server.StatBytesIn, server.StatBytesOut, server.StatMemoryHeld, server.StatConnsMux,
		server.StatRequestsCancelled, server.StatErrHandler, server.StatErrPanic,
		server.StatErrHandlerTimeout, server.StatErrProtocol, server.StatErrReadTimeout,
		server.StatErrWriteTimeout, server.StatErrMemory, server.StatErrTLS, server.StatErrForeign,
		server.StatErrAuth, server.StatErrConn, server.StatErrRefused, server.StatErrFrameTooLarge,
		server.StatErrPushDropped,

		client.StatCalls, client.StatErrors, client.StatCallTime, client.StatRetries,
		client.StatConns, client.StatDialErrors, client.StatConnected, client.StatDisconnected,
		client.StatReconnected, client.StatErrTimeout, client.StatErrCanceled, client.StatErrClosed,
		client.StatErrNoConn, client.StatErrProtocol, client.StatErrConnLost, client.StatErrOther,
		client.StatEjected, client.StatRestored, client.StatProbeErrors, client.StatOverdue,
		client.StatExtraDialed, client.StatExtraClosed, client.StatFallbacks, client.StatResolveErrors,
		client.StatBulkWaits, client.StatBulkImpatient,
	} {
		m[name] = true
	}
	return m
}()

// Gauge sets the gauge name to value.
func (r *Recorder) Gauge(name string, value int64) {
	if g, ok := instrument(r, &r.gauges, name, func() (metric.Int64Gauge, error) {
		return r.meter.Int64Gauge(name)
	}); ok {
		g.Record(context.Background(), value)
	}
}

// Timing records d, in seconds, to the histogram name.
func (r *Recorder) Timing(name string, d time.Duration) {
	if h, ok := instrument(r, &r.histograms, name, func() (metric.Float64Histogram, error) {
		return r.meter.Float64Histogram(name, metric.WithUnit("s"))
	}); ok {
		h.Record(context.Background(), d.Seconds())
	}
}

// instrument returns the instrument of name in m, making it the first time.
func instrument[I any](r *Recorder, m *sync.Map, name string, newInstrument func() (I, error)) (I, bool) {
	if v, ok := m.Load(name); ok {
		i, ok := v.(I)
		return i, ok
	}
	i, err := newInstrument()
	if err != nil {
		if r.OnError != nil {
			r.OnError(name, err)
		}
		m.Store(name, nil) // refused once, refused for good
		var zero I
		return zero, false
	}
	v, _ := m.LoadOrStore(name, i)
	i, ok := v.(I)
	return i, ok
}
