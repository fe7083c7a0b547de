package span

import (
	"sync"
	"sync/atomic"
	"time"
)

// maxKeptEntries bounds what Reset keeps of a slice's capacity, so that one
// request that noted hundreds of entries does not pin that memory in a
// pooled Span for the life of the connection.
const maxKeptEntries = 64

// Span records what one request did. Create one with New, or reuse one with
// Reset. Its methods other than Reset are safe for concurrent use.
//
// A Span belongs to the request it was handed for: it must not be used
// after the handler returns, because the server then reuses it.
//
// Names are looked up linearly: a span holds a handful of entries, for
// which a slice scan beats a map and, unlike a map, can be emptied without
// losing its memory. Attributes, counters and timings are kept apart, so
// one name may be used for one of each, but Fields then gives the later
// kind's value for a name that an attribute and a counter share.
//
// A nil *Span is valid: it records nothing and reports nothing, so handler
// code can run without a server, for example in tests.
type Span struct {
	// id is written only by New and Reset, which run while nothing else
	// holds the span, so ID reads it without the lock.
	id ID

	// touched is set, under mu, with the first entry and cleared by Reset.
	// It is atomic so that the per-request checks Touched and Reset make on
	// an untouched span cost a plain load instead of a lock.
	touched atomic.Bool
	// measured is set, under mu, with the first counter or timing and
	// cleared by Reset: Record, which records only those, skips a span of
	// attributes alone (a server's command name, say) without the lock.
	measured atomic.Bool

	mu       sync.Mutex
	parent   ID
	trace    TraceID // zero until set or asked for (see TraceID)
	attrs    []attr
	counters []counter
	timings  []timing
}

type attr struct {
	key, value string
}

type counter struct {
	name  string
	value int64
}

type timing struct {
	name    string
	start   time.Time // valid while running
	d       time.Duration
	running bool // Start was called and Finish not yet
	done    bool // d holds a measurement
}

// New returns an empty Span with a fresh ID and no parent.
func New() *Span {
	return &Span{id: NewID()}
}

// Reset empties s for reuse by another request and gives it the ID id,
// normally NewID(). The parent and trace ids are cleared. Memory is kept, up to a bound,
// so that a reused Span does not allocate again.
//
// Reset must not run while anything else uses s: the server calls it
// between requests. It takes no lock, which keeps it cheap and lets the
// race detector report a handler goroutine that outlived its request.
func (s *Span) Reset(id ID) {
	if s == nil {
		return
	}
	s.id = id
	s.parent = 0
	s.trace = TraceID{}
	// An untouched span has no entries, so there is nothing to empty.
	if s.touched.Load() {
		s.attrs = reuse(s.attrs)
		s.counters = reuse(s.counters)
		s.timings = reuse(s.timings)
		s.touched.Store(false)
		s.measured.Store(false)
	}
}

// reuse empties entries but keeps their backing array unless it grew too
// large. The old entries are zeroed so that the strings they point to, such
// as attribute values taken from a request, can be collected.
func reuse[E any](entries []E) []E {
	if cap(entries) > maxKeptEntries {
		return nil
	}
	clear(entries)
	return entries[:0]
}

// ID returns the span's ID.
func (s *Span) ID() ID {
	if s == nil {
		return 0
	}
	return s.id
}

// ParentID returns the ID of the caller's span, or 0 if there is none.
func (s *Span) ParentID() ID {
	if s == nil {
		return 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.parent
}

// SetParentID sets the ID of the caller's span, which links this request to
// the one that caused it. It does not make the span Touched.
func (s *Span) SetParentID(id ID) {
	if s == nil {
		return
	}
	s.mu.Lock()
	s.parent = id
	s.mu.Unlock()
}

// Attr sets the attribute key to value, replacing any earlier value but
// keeping its position in the output.
func (s *Span) Attr(key, value string) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.attrs {
		if s.attrs[i].key == key {
			s.attrs[i].value = value
			return
		}
	}
	s.attrs = append(s.attrs, attr{key: key, value: value})
	s.touch()
}

// Add adds delta to the counter name, which starts at 0, and returns the
// new value.
func (s *Span) Add(name string, delta int64) int64 {
	if s == nil {
		return 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.counters {
		if s.counters[i].name == name {
			s.counters[i].value += delta
			return s.counters[i].value
		}
	}
	s.counters = append(s.counters, counter{name: name, value: delta})
	s.touchMeasured()
	return delta
}

// Increment adds 1 to the counter name and returns the new value.
func (s *Span) Increment(name string) int64 {
	return s.Add(name, 1)
}

// Touched reports whether anything was noted on s since it was created or
// Reset: an attribute, a counter or a timing. The server skips logging and
// recording for an untouched span.
func (s *Span) Touched() bool {
	return s != nil && s.touched.Load()
}

// touchMeasured marks s as having counters or timings, and entries.
// s.mu must be held.
func (s *Span) touchMeasured() {
	if !s.measured.Load() {
		s.measured.Store(true)
	}
	s.touch()
}

// touch marks s as having entries. s.mu must be held. Storing only on the
// first entry spares later ones an atomic write.
func (s *Span) touch() {
	if !s.touched.Load() {
		s.touched.Store(true)
	}
}
