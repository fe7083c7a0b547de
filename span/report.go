package span

import (
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Recorder is what Record reports to: the part of stats.Recorder a span
// uses, declared here so that span depends on no metrics package. Every
// stats.Recorder is one.
type Recorder interface {
	Count(name string, delta int64)
	Timing(name string, d time.Duration)
}

// Fields adds the span to dst and returns it, allocating a map if dst is
// nil. The keys are "span_id", "parent_id" when there is a parent,
// "trace_id" when the span has one, each
// attribute as a string, each counter as an int64, and each finished timing
// as float64 milliseconds under "<name>_ms". All values encode as JSON.
// The two IDs are written last so that no attribute can overwrite them.
// The map is logrus.Fields' type, so it goes to a logrus logger as it is
// (logger.WithFields(sp.Fields(nil))) without span importing logrus.
func (s *Span) Fields(dst map[string]any) map[string]any {
	if s == nil {
		return dst
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if dst == nil {
		dst = make(map[string]any, 2+len(s.attrs)+len(s.counters)+len(s.timings))
	}
	for _, a := range s.attrs {
		dst[a.key] = a.value
	}
	for _, c := range s.counters {
		dst[c.name] = c.value
	}
	for _, t := range s.timings {
		if t.done {
			dst[t.name+"_ms"] = millis(t.d)
		}
	}
	dst["span_id"] = s.id.String()
	if s.parent != 0 {
		dst["parent_id"] = s.parent.String()
	}
	if !s.trace.IsZero() {
		dst["trace_id"] = s.trace.String()
	}
	return dst
}

// Visit calls attr for each attribute, counter for each counter and
// timing for each finished timing, in the order they were first noted,
// for exporters of spans (an OpenTelemetry bridge, for one). The calls run
// with the span locked: they must not use s.
func (s *Span) Visit(attr func(key, value string), counter func(name string, value int64), timing func(name string, d time.Duration)) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, a := range s.attrs {
		attr(a.key, a.value)
	}
	for _, c := range s.counters {
		counter(c.name, c.value)
	}
	for _, t := range s.timings {
		if t.done {
			timing(t.name, t.d)
		}
	}
}

// Record sends the counters to r as Count and the finished timings as
// Timing. Attributes are left out: they are per-request values, which
// would give a metrics backend one series per value. r must not use s.
func (s *Span) Record(r Recorder) {
	if s == nil || r == nil || !s.measured.Load() {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.counters {
		r.Count(c.name, c.value)
	}
	for _, t := range s.timings {
		if t.done {
			r.Timing(t.name, t.d)
		}
	}
}

// String returns the span as space-separated key=value pairs with the same
// keys as Fields: the IDs first, then attributes, counters and finished
// timings, each in the order first noted. Values that would be ambiguous
// unquoted are quoted as Go strings.
func (s *Span) String() string {
	if s == nil {
		return "<nil>"
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var b strings.Builder
	b.WriteString("span_id=")
	b.WriteString(s.id.String())
	if s.parent != 0 {
		b.WriteString(" parent_id=")
		b.WriteString(s.parent.String())
	}
	var num [32]byte
	for _, a := range s.attrs {
		writeKey(&b, a.key)
		if needsQuote(a.value) {
			b.WriteString(strconv.Quote(a.value))
		} else {
			b.WriteString(a.value)
		}
	}
	for _, c := range s.counters {
		writeKey(&b, c.name)
		b.Write(strconv.AppendInt(num[:0], c.value, 10))
	}
	for _, t := range s.timings {
		if t.done {
			writeKey(&b, t.name+"_ms")
			b.Write(strconv.AppendFloat(num[:0], millis(t.d), 'f', -1, 64))
		}
	}
	return b.String()
}

func writeKey(b *strings.Builder, key string) {
	b.WriteByte(' ')
	b.WriteString(key)
	b.WriteByte('=')
}

// needsQuote reports whether v, written bare, could not be told apart from
// the separators around it or would not print cleanly.
func needsQuote(v string) bool {
	if v == "" {
		return true
	}
	for _, r := range v {
		if r == ' ' || r == '=' || r == '"' || r == utf8.RuneError || !unicode.IsPrint(r) {
			return true
		}
	}
	return false
}

// millis is how timings are reported: fractional milliseconds, the unit
// statsd timers use.
func millis(d time.Duration) float64 {
	return float64(d) / float64(time.Millisecond)
}
