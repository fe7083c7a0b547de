package stats

import "time"

// Multi returns a Recorder that passes every event to each of recs, in
// order.
//
// Nil and Nop entries are left out, and nested Multis are flattened, so
// that wiring code can pass whatever it has without paying for a fan-out
// it does not need: with nothing left Multi returns Nop, and with one
// Recorder left it returns that Recorder itself.
func Multi(recs ...Recorder) Recorder {
	var out multi
	for _, r := range recs {
		switch r := r.(type) {
		case nil, Nop, *Nop:
		case multi:
			out = append(out, r...)
		default:
			out = append(out, r)
		}
	}
	switch len(out) {
	case 0:
		return Nop{}
	case 1:
		return out[0]
	}
	return out
}

// multi is never modified after Multi builds it, so it needs no lock.
type multi []Recorder

func (m multi) Count(name string, delta int64) {
	for _, r := range m {
		r.Count(name, delta)
	}
}

func (m multi) Gauge(name string, value int64) {
	for _, r := range m {
		r.Gauge(name, value)
	}
}

func (m multi) Timing(name string, d time.Duration) {
	for _, r := range m {
		r.Timing(name, d)
	}
}
