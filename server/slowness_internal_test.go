package server

import "testing"

// TestSlowness: one handler over inlineBudget does not make handlers
// slow, slowAfter in a row do, and a fast one makes them fast again; a
// handler the watcher took the reading from makes them slow at once.
func TestSlowness(t *testing.T) {
	var s slowness
	over, under := inlineBudget+1, inlineBudget
	steps := []struct {
		note func()
		want bool
	}{
		{func() { s.note(over) }, false}, // a stall of the host, maybe
		{func() { s.note(under) }, false},
		{func() { s.note(over) }, false},
		{func() { s.note(over) }, true}, // slowAfter in a row
		{func() { s.note(over) }, true},
		{func() { s.note(under) }, false},
		{func() { s.set() }, true},
		{func() { s.note(over) }, true},
		{func() { s.note(under) }, false},
	}
	for i, st := range steps {
		st.note()
		if got := s.is(); got != st.want {
			t.Fatalf("step %d: slow %v, want %v", i, got, st.want)
		}
	}
}
