package stats

import (
	"slices"
	"sync"
	"testing"
	"time"
)

func TestMemoryCounter(t *testing.T) {
	m := NewMemory()
	m.Count("requests", 3)
	m.Count("requests", 4)
	m.Count("requests", -2)
	if got := m.Counter("requests"); got != 5 {
		t.Errorf("Counter(requests) = %d, want 5", got)
	}
	if got := m.Counter("unknown"); got != 0 {
		t.Errorf("Counter(unknown) = %d, want 0", got)
	}
}

func TestMemoryGauge(t *testing.T) {
	m := NewMemory()
	if v, ok := m.GaugeValue("conns"); ok {
		t.Errorf("GaugeValue(conns) before any Gauge = %d, true; want false", v)
	}
	m.Gauge("conns", 5)
	m.Gauge("conns", 0)
	if v, ok := m.GaugeValue("conns"); !ok || v != 0 {
		t.Errorf("GaugeValue(conns) = %d, %t; want 0, true", v, ok)
	}
	m.Gauge("conns", 7)
	if v, ok := m.GaugeValue("conns"); !ok || v != 7 {
		t.Errorf("GaugeValue(conns) = %d, %t; want 7, true", v, ok)
	}
}

func TestMemoryTimingsAreCopied(t *testing.T) {
	m := NewMemory()
	m.Timing("req", time.Millisecond)
	m.Timing("req", 2*time.Millisecond)

	got := m.Timings("req")
	want := []time.Duration{time.Millisecond, 2 * time.Millisecond}
	if !slices.Equal(got, want) {
		t.Fatalf("Timings(req) = %v, want %v", got, want)
	}
	got[0] = time.Hour
	if again := m.Timings("req"); !slices.Equal(again, want) {
		t.Errorf("modifying the returned slice changed Memory: Timings(req) = %v, want %v", again, want)
	}
	if got := m.Timings("unknown"); len(got) != 0 {
		t.Errorf("Timings(unknown) = %v, want empty", got)
	}
}

func TestMemoryNames(t *testing.T) {
	m := NewMemory()
	if got := m.Names(); len(got) != 0 {
		t.Errorf("Names() of empty Memory = %q, want empty", got)
	}
	m.Timing("b", time.Second)
	m.Count("c", 1)
	m.Gauge("a", 1)
	m.Count("b", 1) // the same name as a timing is listed once
	want := []string{"a", "b", "c"}
	if got := m.Names(); !slices.Equal(got, want) {
		t.Errorf("Names() = %q, want %q", got, want)
	}
}

func TestMemoryConcurrent(t *testing.T) {
	const goroutines, perGoroutine = 8, 500
	m := NewMemory()
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range perGoroutine {
				m.Count("n", 1)
				m.Gauge("g", int64(g))
				m.Timing("t", time.Duration(i))
				_ = m.Names()
			}
		})
	}
	wg.Wait()
	if got := m.Counter("n"); got != goroutines*perGoroutine {
		t.Errorf("Counter(n) = %d, want %d", got, goroutines*perGoroutine)
	}
	if got := len(m.Timings("t")); got != goroutines*perGoroutine {
		t.Errorf("len(Timings(t)) = %d, want %d", got, goroutines*perGoroutine)
	}
	if v, ok := m.GaugeValue("g"); !ok || v < 0 || v >= goroutines {
		t.Errorf("GaugeValue(g) = %d, %t; want one of the values set", v, ok)
	}
}
