package stats

import (
	"slices"
	"sync"
	"time"
)

// Memory is a Recorder that keeps everything in memory, for tests and for
// commands that print a summary at exit. It keeps every Timing it is given,
// so it is not meant for a long-running server.
//
// The zero value is not usable; call NewMemory.
type Memory struct {
	mu       sync.Mutex
	counters map[string]int64
	gauges   map[string]int64
	timings  map[string][]time.Duration
}

// NewMemory returns an empty Memory.
func NewMemory() *Memory {
	return &Memory{
		counters: make(map[string]int64),
		gauges:   make(map[string]int64),
		timings:  make(map[string][]time.Duration),
	}
}

// Count adds delta to the counter name.
func (m *Memory) Count(name string, delta int64) {
	m.mu.Lock()
	m.counters[name] += delta
	m.mu.Unlock()
}

// Gauge sets the gauge name to value.
func (m *Memory) Gauge(name string, value int64) {
	m.mu.Lock()
	m.gauges[name] = value
	m.mu.Unlock()
}

// Timing appends d to the durations recorded for name.
func (m *Memory) Timing(name string, d time.Duration) {
	m.mu.Lock()
	m.timings[name] = append(m.timings[name], d)
	m.mu.Unlock()
}

// Counter returns the sum of the deltas counted for name, 0 if none.
func (m *Memory) Counter(name string) int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.counters[name]
}

// GaugeValue returns the last value set for the gauge name. The bool is
// false if the gauge was never set, to tell that apart from a gauge at 0.
func (m *Memory) GaugeValue(name string) (int64, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.gauges[name]
	return v, ok
}

// Timings returns the durations recorded for name, in the order they were
// recorded. The slice is a copy: the caller may keep or modify it while
// recording goes on.
func (m *Memory) Timings(name string) []time.Duration {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.timings[name])
}

// Names returns, sorted and without duplicates, every name that was
// counted, gauged or timed.
func (m *Memory) Names() []string {
	m.mu.Lock()
	names := make([]string, 0, len(m.counters)+len(m.gauges)+len(m.timings))
	for n := range m.counters {
		names = append(names, n)
	}
	for n := range m.gauges {
		names = append(names, n)
	}
	for n := range m.timings {
		names = append(names, n)
	}
	m.mu.Unlock()
	slices.Sort(names)
	return slices.Compact(names)
}
