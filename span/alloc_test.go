package span

import (
	"testing"
	"time"
)

// The untouched path runs for every request whose handler ignores its
// span, so it must not allocate.
func TestUntouchedDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	s := New()
	allocs := testing.AllocsPerRun(1000, func() {
		s.Reset(NewID())
		if s.ID() == 0 || s.Touched() {
			t.Fatal("unexpected span state")
		}
	})
	if allocs != 0 {
		t.Errorf("Reset+ID+Touched allocates %v times per request, want 0", allocs)
	}
}

// A handler that notes a few things on a reused span must not allocate
// once the span's slices have grown to fit.
func TestReusedSpanDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	s := New()
	allocs := testing.AllocsPerRun(1000, func() {
		s.Reset(NewID())
		useLikeAHandler(s)
		if !s.Touched() {
			t.Fatal("span not touched")
		}
	})
	if allocs != 0 {
		t.Errorf("a handler using a reused span allocates %v times per request, want 0", allocs)
	}
}

func useLikeAHandler(s *Span) {
	s.Attr("method", "get")
	s.Attr("cache", "miss")
	s.Increment("db_calls")
	s.Start("db")
	s.Observe("decode", time.Microsecond)
	s.Finish("db")
}
