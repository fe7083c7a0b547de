package stats

import (
	"slices"
	"testing"
	"time"
)

func TestMultiEmptyIsNop(t *testing.T) {
	for name, r := range map[string]Recorder{
		"no args":      Multi(),
		"only nops":    Multi(Nop{}, &Nop{}, nil),
		"nested empty": Multi(Multi(), Multi(Nop{})),
	} {
		if _, ok := r.(Nop); !ok {
			t.Errorf("%s: Multi returned %T, want Nop", name, r)
		}
	}
}

func TestMultiSingleReturnedAsIs(t *testing.T) {
	m := NewMemory()
	if got := Multi(Nop{}, m, nil); got != Recorder(m) {
		t.Errorf("Multi(Nop, m, nil) = %T %p, want m itself", got, got)
	}
}

func TestMultiFansOut(t *testing.T) {
	a, b, c := NewMemory(), NewMemory(), NewMemory()
	r := Multi(Multi(a, Nop{}), b, c)
	if got, ok := r.(multi); !ok || len(got) != 3 {
		t.Fatalf("Multi(Multi(a, Nop), b, c) = %T of %d recorders, want a flat multi of 3", r, len(got))
	}
	r.Count("n", 2)
	r.Gauge("g", 3)
	r.Timing("t", time.Second)
	for i, m := range []*Memory{a, b, c} {
		if got := m.Counter("n"); got != 2 {
			t.Errorf("recorder %d: Counter(n) = %d, want 2", i, got)
		}
		if v, ok := m.GaugeValue("g"); !ok || v != 3 {
			t.Errorf("recorder %d: GaugeValue(g) = %d, %t; want 3, true", i, v, ok)
		}
		if got := m.Timings("t"); !slices.Equal(got, []time.Duration{time.Second}) {
			t.Errorf("recorder %d: Timings(t) = %v, want [1s]", i, got)
		}
	}
}
