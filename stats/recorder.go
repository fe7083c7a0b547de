package stats

import "time"

// Recorder receives metrics.
//
// Implementations must be safe for concurrent use and must never block the
// caller for long: they are called on the request path, once or more per
// request.
type Recorder interface {
	// Count adds delta to the counter name.
	Count(name string, delta int64)
	// Gauge sets the gauge name to value.
	Gauge(name string, value int64)
	// Timing records one observed duration for name.
	Timing(name string, d time.Duration)
}

// Nop is a Recorder that discards everything. It is the default so that
// code paths never need a nil check, and its methods inline to nothing.
type Nop struct{}

// Count does nothing.
func (Nop) Count(string, int64) {}

// Gauge does nothing.
func (Nop) Gauge(string, int64) {}

// Timing does nothing.
func (Nop) Timing(string, time.Duration) {}
