package span

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
)

// TraceID identifies a trace: every span of one request tree shares it. It
// has the 16 bytes of a W3C trace-context trace-id (and an OpenTelemetry
// TraceID), as ID has the 8 bytes of a parent-id (span id). The zero
// TraceID means none.
type TraceID [16]byte

// NewTraceID returns a random non-zero TraceID.
func NewTraceID() TraceID {
	var t TraceID
	for t.IsZero() {
		binary.BigEndian.PutUint64(t[:8], rand.Uint64())
		binary.BigEndian.PutUint64(t[8:], rand.Uint64())
	}
	return t
}

// IsZero reports whether t is the zero TraceID.
func (t TraceID) IsZero() bool { return t == TraceID{} }

// String returns t as 32 lowercase hex digits, the W3C form.
func (t TraceID) String() string { return hex.EncodeToString(t[:]) }

// ParseTraceID parses the form String returns: exactly 32 hex digits.
func ParseTraceID(s string) (TraceID, error) {
	var t TraceID
	if len(s) != 32 {
		return t, fmt.Errorf("%w %q: want 32 hex digits, got %d characters", ErrInvalidID, s, len(s))
	}
	if _, err := hex.Decode(t[:], []byte(s)); err != nil {
		return TraceID{}, fmt.Errorf("%w %q: %w", ErrInvalidID, s, err)
	}
	return t, nil
}

// TraceID returns the span's trace id. A span that was given none (a root:
// no caller passed one) gets a new random one on the first call, so that
// a trace id costs nothing to requests whose span nobody traces.
func (s *Span) TraceID() TraceID {
	if s == nil {
		return TraceID{}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.trace.IsZero() {
		s.trace = NewTraceID()
	}
	return s.trace
}

// SetTraceID sets the span's trace id, normally the caller's. It does not
// make the span Touched.
func (s *Span) SetTraceID(t TraceID) {
	if s == nil {
		return
	}
	s.mu.Lock()
	s.trace = t
	s.mu.Unlock()
}

// Traceparent returns the W3C traceparent header value for s as the parent
// of the calls it makes: version 00, its trace id, its span id, sampled.
func (s *Span) Traceparent() string {
	return "00-" + s.TraceID().String() + "-" + s.ID().String() + "-01"
}

// Child returns a new span in s's trace with s as its parent: the span of a
// call s's request makes. A nil s gives a root span.
func (s *Span) Child() *Span {
	c := New()
	if s != nil {
		c.parent, c.trace = s.id, s.TraceID()
	}
	return c
}

type ctxKey struct{}

// NewContext returns a context that carries s: calls made with it, through
// clients that propagate spans (protoserver's), carry s as their parent.
func NewContext(ctx context.Context, s *Span) context.Context {
	return context.WithValue(ctx, ctxKey{}, s)
}

// FromContext returns the span ctx carries, or nil.
func FromContext(ctx context.Context) *Span {
	s, _ := ctx.Value(ctxKey{}).(*Span)
	return s
}

// Context is a context.Context that carries a span, as NewContext makes
// one, for a server that keeps one per reusable request slot instead of
// allocating one per request: it sets both fields before each request. Like
// the Span, it must not be used once the request is answered.
type Context struct {
	context.Context
	Span *Span
}

// Value returns the span for FromContext, and defers to the parent for
// every other key.
func (c *Context) Value(key any) any {
	if key == (ctxKey{}) {
		return c.Span
	}
	return c.Context.Value(key)
}
