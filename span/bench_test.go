package span

import (
	"testing"

	"github.com/tcpez/tcpez/stats"
)

// BenchmarkUntouched is the server's per-request cost when the handler
// ignores its span.
func BenchmarkUntouched(b *testing.B) {
	b.ReportAllocs()
	s := New()
	for b.Loop() {
		s.Reset(NewID())
		if s.ID() == 0 || s.Touched() {
			b.Fatal("unexpected span state")
		}
	}
}

func BenchmarkNewID(b *testing.B) {
	b.ReportAllocs()
	var sink ID
	for b.Loop() {
		sink ^= NewID()
	}
	if sink == 0 {
		b.Log("xor of IDs happened to be 0")
	}
}

// BenchmarkAttrCounterTiming is a handler that notes two attributes, one
// counter and one timing on a span the server reuses.
func BenchmarkAttrCounterTiming(b *testing.B) {
	b.ReportAllocs()
	s := New()
	for b.Loop() {
		s.Reset(NewID())
		s.Attr("method", "get")
		s.Attr("cache", "miss")
		s.Increment("db_calls")
		s.Start("db")
		s.Finish("db")
		if !s.Touched() {
			b.Fatal("span not touched")
		}
	}
}

// BenchmarkAttrRecorded is a server's per-request span work when the
// handler notes one attribute (textserver's command name): Reset, Attr,
// Record.
func BenchmarkAttrRecorded(b *testing.B) {
	b.ReportAllocs()
	s, rec := New(), stats.Recorder(stats.Nop{})
	for b.Loop() {
		s.Reset(NewID())
		s.Attr("command", "get")
		if s.Touched() {
			s.Record(rec)
		}
	}
}
