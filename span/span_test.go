package span

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tcpez/tcpez/stats"
)

func TestNew(t *testing.T) {
	a, b := New(), New()
	if a.ID() == 0 {
		t.Error("New().ID() = 0, want a fresh ID")
	}
	if a.ID() == b.ID() {
		t.Errorf("two New spans share ID %v", a.ID())
	}
	if p := a.ParentID(); p != 0 {
		t.Errorf("New().ParentID() = %v, want 0", p)
	}
	if a.Touched() {
		t.Error("New().Touched() = true, want false")
	}
}

func TestAttrOverwrites(t *testing.T) {
	s := New()
	s.Reset(1)
	s.Attr("a", "1")
	s.Attr("b", "2")
	s.Attr("a", "3")
	if got, want := s.String(), "span_id=0000000000000001 a=3 b=2"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

func TestAddAndIncrement(t *testing.T) {
	s := New()
	if got := s.Add("n", 5); got != 5 {
		t.Errorf("Add(n, 5) on a new counter = %d, want 5", got)
	}
	if got := s.Increment("n"); got != 6 {
		t.Errorf("Increment(n) = %d, want 6", got)
	}
	if got := s.Add("n", -10); got != -4 {
		t.Errorf("Add(n, -10) = %d, want -4", got)
	}
	if got := s.Increment("m"); got != 1 {
		t.Errorf("Increment(m) on a new counter = %d, want 1", got)
	}
}

func TestFinishWithoutStartRecordsZero(t *testing.T) {
	s := New()
	if d := s.Finish("never"); d != 0 {
		t.Errorf("Finish without Start = %v, want 0", d)
	}
	f := s.Fields(nil)
	if v, ok := f["never_ms"]; !ok || v != 0.0 {
		t.Errorf(`Fields()["never_ms"] = %v, %t; want 0.0, true`, v, ok)
	}
}

func TestFinishReturnsRecordedDuration(t *testing.T) {
	s := New()
	s.Start("step")
	d := s.Finish("step")
	if got := s.Duration("step"); got != d {
		t.Errorf("Duration(step) = %v, want %v as returned by Finish", got, d)
	}
	if again := s.Finish("step"); again != d {
		t.Errorf("second Finish(step) = %v, want the first result %v unchanged", again, d)
	}
}

func TestObserve(t *testing.T) {
	s := New()
	s.Observe("db", 3*time.Millisecond)
	if got := s.Duration("db"); got != 3*time.Millisecond {
		t.Errorf("Duration(db) = %v, want 3ms", got)
	}
	s.Observe("db", time.Millisecond)
	if got := s.Duration("db"); got != time.Millisecond {
		t.Errorf("Duration(db) after a second Observe = %v, want 1ms", got)
	}
	// Observe ends a running Start, so Finish keeps the observed value.
	s.Start("rpc")
	s.Observe("rpc", 7*time.Second)
	if got := s.Finish("rpc"); got != 7*time.Second {
		t.Errorf("Finish(rpc) after Observe = %v, want 7s", got)
	}
}

func TestDurationOfUnfinished(t *testing.T) {
	s := New()
	s.Start("running")
	if got := s.Duration("running"); got != 0 {
		t.Errorf("Duration of a started, unfinished timing = %v, want 0", got)
	}
	if got := s.Duration("unknown"); got != 0 {
		t.Errorf("Duration(unknown) = %v, want 0", got)
	}
}

func TestTouched(t *testing.T) {
	for name, touch := range map[string]func(*Span){
		"Attr":      func(s *Span) { s.Attr("k", "v") },
		"Add":       func(s *Span) { s.Add("n", 0) },
		"Increment": func(s *Span) { s.Increment("n") },
		"Start":     func(s *Span) { s.Start("t") },
		"Finish":    func(s *Span) { s.Finish("t") },
		"Observe":   func(s *Span) { s.Observe("t", 0) },
	} {
		s := New()
		s.SetParentID(NewID())
		_ = s.Duration("t")
		_ = s.Fields(nil)
		_ = s.String()
		s.Record(stats.NewMemory())
		if s.Touched() {
			t.Fatalf("%s: span touched before %s", name, name)
		}
		touch(s)
		if !s.Touched() {
			t.Errorf("Touched() = false after %s", name)
		}
	}
}

func TestResetClearsEverything(t *testing.T) {
	s := New()
	s.SetParentID(99)
	s.Attr("k", "v")
	s.Add("n", 5)
	s.Observe("db", time.Second)
	s.Start("open")

	s.Reset(42)
	if s.ID() != 42 {
		t.Errorf("ID() after Reset(42) = %v, want 42", s.ID())
	}
	if p := s.ParentID(); p != 0 {
		t.Errorf("ParentID() after Reset = %v, want 0", p)
	}
	if s.Touched() {
		t.Error("Touched() after Reset = true, want false")
	}
	if d := s.Duration("db"); d != 0 {
		t.Errorf("Duration(db) after Reset = %v, want 0", d)
	}
	if got, want := s.Fields(nil), (map[string]any{"span_id": "000000000000002a"}); !reflect.DeepEqual(got, want) {
		t.Errorf("Fields() after Reset = %v, want %v", got, want)
	}
	if got := s.Add("n", 1); got != 1 {
		t.Errorf("Add(n, 1) after Reset = %d, want 1: the counter was not cleared", got)
	}
}

func TestResetKeepsSmallCapacity(t *testing.T) {
	s := New()
	for i := range 8 {
		name := fmt.Sprint(i)
		s.Attr(name, "v")
		s.Add(name, 1)
		s.Observe(name, 1)
	}
	attrs, counters, timings := cap(s.attrs), cap(s.counters), cap(s.timings)
	s.Reset(1)
	if cap(s.attrs) != attrs || cap(s.counters) != counters || cap(s.timings) != timings {
		t.Errorf("capacities after Reset = %d, %d, %d; want %d, %d, %d kept",
			cap(s.attrs), cap(s.counters), cap(s.timings), attrs, counters, timings)
	}
	// The old entries must not keep their strings reachable.
	for i, a := range s.attrs[:cap(s.attrs)] {
		if a != (attr{}) {
			t.Fatalf("attrs[%d] after Reset = %+v, want zeroed", i, a)
		}
	}
}

func TestResetDropsLargeCapacity(t *testing.T) {
	s := New()
	for i := range maxKeptEntries + 1 {
		name := fmt.Sprint(i)
		s.Attr(name, "v")
		s.Add(name, 1)
		s.Observe(name, 1)
	}
	s.Reset(1)
	if s.attrs != nil || s.counters != nil || s.timings != nil {
		t.Errorf("capacities after Reset of a large span = %d, %d, %d; want all released",
			cap(s.attrs), cap(s.counters), cap(s.timings))
	}
	s.Attr("k", "v")
	if got, want := s.String(), "span_id=0000000000000001 k=v"; got != want {
		t.Errorf("String() after reuse = %q, want %q", got, want)
	}
}

// fill gives s one of everything, with known values.
func fill(s *Span) {
	s.Reset(0x1234)
	s.SetParentID(0xabc)
	s.Attr("method", "get")
	s.Attr("note", "two words")
	s.Attr("method", "put")
	s.Add("rows", 3)
	s.Increment("cache_miss")
	s.Observe("db", 1500*time.Microsecond)
	s.Finish("unstarted")
	s.Start("pending") // never finished: not reported
}

func TestFields(t *testing.T) {
	s := New()
	fill(s)
	want := map[string]any{
		"span_id":      "0000000000001234",
		"parent_id":    "0000000000000abc",
		"method":       "put",
		"note":         "two words",
		"rows":         int64(3),
		"cache_miss":   int64(1),
		"db_ms":        1.5,
		"unstarted_ms": 0.0,
	}
	if got := s.Fields(nil); !reflect.DeepEqual(got, want) {
		t.Errorf("Fields(nil) =\n%#v\nwant\n%#v", got, want)
	}
}

func TestFieldsNoParent(t *testing.T) {
	s := New()
	s.Reset(7)
	s.Attr("k", "v")
	if got, want := s.Fields(nil), (map[string]any{"span_id": "0000000000000007", "k": "v"}); !reflect.DeepEqual(got, want) {
		t.Errorf("Fields(nil) = %v, want %v", got, want)
	}
}

func TestFieldsIntoExisting(t *testing.T) {
	s := New()
	s.Reset(7)
	s.Add("n", 2)
	s.Attr("span_id", "spoofed")
	dst := map[string]any{"remote": "10.0.0.1:5000"}
	got := s.Fields(dst)
	want := map[string]any{"remote": "10.0.0.1:5000", "span_id": "0000000000000007", "n": int64(2)}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Fields(dst) = %v, want %v", got, want)
	}
	if !reflect.DeepEqual(dst, want) {
		t.Errorf("Fields did not fill dst in place: dst = %v", dst)
	}
}

func TestFieldsEncodeAsJSON(t *testing.T) {
	s := New()
	fill(s)
	b, err := json.Marshal(s.Fields(nil))
	if err != nil {
		t.Fatalf("json.Marshal(Fields()): %v", err)
	}
	var back map[string]any
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back["db_ms"] != 1.5 || back["rows"] != 3.0 || back["span_id"] != "0000000000001234" {
		t.Errorf("Fields() as JSON = %s, want db_ms 1.5, rows 3, span_id 0000000000001234", b)
	}
}

func TestRecord(t *testing.T) {
	s := New()
	fill(s)
	m := stats.NewMemory()
	s.Record(m)
	s.Record(m) // a second request's span recorded into the same Memory
	if got := m.Counter("rows"); got != 6 {
		t.Errorf("Counter(rows) = %d, want 6", got)
	}
	if got := m.Counter("cache_miss"); got != 2 {
		t.Errorf("Counter(cache_miss) = %d, want 2", got)
	}
	want := []time.Duration{1500 * time.Microsecond, 1500 * time.Microsecond}
	if got := m.Timings("db"); !slices.Equal(got, want) {
		t.Errorf("Timings(db) = %v, want %v", got, want)
	}
	if got, want := m.Names(), []string{"cache_miss", "db", "rows", "unstarted"}; !slices.Equal(got, want) {
		t.Errorf("Names() = %q, want %q: attributes and unfinished timings must not be recorded", got, want)
	}
}

// TestRecordAttributesOnly: a span with attributes alone records nothing,
// and one Reset and given a counter records it.
func TestRecordAttributesOnly(t *testing.T) {
	s := New()
	s.Attr("command", "get")
	m := stats.NewMemory()
	s.Record(m)
	if got := m.Names(); len(got) != 0 {
		t.Errorf("Names() = %q after recording attributes only, want none", got)
	}
	s.Reset(NewID())
	s.Attr("command", "set")
	s.Increment("rows")
	s.Record(m)
	if got := m.Counter("rows"); got != 1 {
		t.Errorf("Counter(rows) = %d after Reset and Increment, want 1", got)
	}
	s.Reset(NewID())
	s.Start("db")
	s.Finish("db")
	s.Record(m)
	if got := m.Timings("db"); len(got) != 1 {
		t.Errorf("Timings(db) = %v after Reset, Start and Finish, want one", got)
	}
}

func TestString(t *testing.T) {
	s := New()
	fill(s)
	want := `span_id=0000000000001234 parent_id=0000000000000abc method=put note="two words" rows=3 cache_miss=1 db_ms=1.5 unstarted_ms=0`
	if got := s.String(); got != want {
		t.Errorf("String() =\n%s\nwant\n%s", got, want)
	}
}

func TestStringQuotesAmbiguousValues(t *testing.T) {
	for value, want := range map[string]string{
		"plain":      "plain",
		"":           `""`,
		"a=b":        `"a=b"`,
		`say "hi"`:   `"say \"hi\""`,
		"tab\there":  `"tab\there"`,
		"line\nnext": `"line\nnext"`,
		"\xff":       `"\xff"`,
		"café":       "café",
	} {
		s := New()
		s.Reset(1)
		s.Attr("v", value)
		if got, want := s.String(), "span_id=0000000000000001 v="+want; got != want {
			t.Errorf("Attr(v, %q): String() = %s, want %s", value, got, want)
		}
	}
}

func TestNilSpan(t *testing.T) {
	var s *Span
	s.Reset(1)
	s.SetParentID(2)
	s.Attr("k", "v")
	s.Start("t")
	s.Observe("o", time.Second)
	if got := s.Add("n", 1) + s.Increment("n"); got != 0 {
		t.Errorf("counters on a nil span returned %d, want 0", got)
	}
	if s.ID() != 0 || s.ParentID() != 0 || s.Touched() || s.Finish("t") != 0 || s.Duration("o") != 0 {
		t.Error("a nil span reported something")
	}
	if f := s.Fields(nil); f != nil {
		t.Errorf("Fields(nil) on a nil span = %v, want nil", f)
	}
	m := stats.NewMemory()
	s.Record(m)
	if names := m.Names(); len(names) != 0 {
		t.Errorf("Record from a nil span recorded %q", names)
	}
	if got := s.String(); got != "<nil>" {
		t.Errorf("String() of a nil span = %q, want <nil>", got)
	}
}

// Run under -race: the goroutines a handler starts share its span.
func TestConcurrentUse(t *testing.T) {
	const goroutines, perGoroutine = 8, 500
	s := New()
	var wg sync.WaitGroup
	for g := range goroutines {
		own := fmt.Sprint("g", g)
		wg.Go(func() {
			for i := range perGoroutine {
				s.Add("shared", 2)
				s.Increment(own)
				s.Attr("last", own)
				s.Attr(own, fmt.Sprint(i))
				s.Start(own)
				s.Finish(own)
				_ = s.Duration(own)
				_ = s.Touched()
				if i%100 == 0 {
					_ = s.Fields(nil)
					_ = s.String()
					s.Record(stats.Nop{})
				}
			}
		})
	}
	wg.Wait()

	f := s.Fields(nil)
	if got := f["shared"]; got != int64(2*goroutines*perGoroutine) {
		t.Errorf("shared = %v, want %d", got, 2*goroutines*perGoroutine)
	}
	for g := range goroutines {
		own := fmt.Sprint("g", g)
		if got := f[own]; got != int64(perGoroutine) {
			t.Errorf("counter %s = %v, want %d", own, got, perGoroutine)
		}
		if _, ok := f[own+"_ms"]; !ok {
			t.Errorf("timing %s missing from Fields", own)
		}
	}
	if last, _ := f["last"].(string); len(last) < 2 || last[0] != 'g' {
		t.Errorf(`attr "last" = %q, want one of the goroutines' names`, f["last"])
	}
}
