package tcpezotel

import (
	"context"
	"sync"
	"time"

	"go.opentelemetry.io/otel/metric"
)

// Recorder is a stats.Recorder that records to an OpenTelemetry meter:
// counts to Int64Counters, gauges to Int64Gauges and timings to
// Float64Histograms in seconds, each instrument made on the first use of
// its name. A name the meter refuses is dropped, after OnError hears of it.
type Recorder struct {
	meter metric.Meter
	// OnError, when set, hears of instruments the meter could not make.
	OnError func(name string, err error)

	counters   sync.Map // name → metric.Int64Counter
	gauges     sync.Map // name → metric.Int64Gauge
	histograms sync.Map // name → metric.Float64Histogram
}

// NewRecorder returns a Recorder for the meter mp gives this package.
func NewRecorder(mp metric.MeterProvider) *Recorder {
	return &Recorder{meter: mp.Meter(ScopeName)}
}

// Count adds delta to the counter name.
func (r *Recorder) Count(name string, delta int64) {
	if c, ok := instrument(r, &r.counters, name, func() (metric.Int64Counter, error) {
		return r.meter.Int64Counter(name)
	}); ok {
		c.Add(context.Background(), delta)
	}
}

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
