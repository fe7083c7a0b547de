package client

import (
	"testing"
	"unsafe"
)

// TestConnLayout guards the grouping of conn's fields (see conn): a field
// added or moved across a pad would put a line every call reads back
// beside one every call writes, with nothing failing but the speed.
func TestConnLayout(t *testing.T) {
	var cn conn
	type span struct {
		name       string
		start, end uintptr
	}
	field := func(name string, off, size uintptr) span { return span{name, off, off + size} }
	readMostly := []span{
		field("c", unsafe.Offsetof(cn.c), unsafe.Sizeof(cn.c)),
		field("slots", unsafe.Offsetof(cn.slots), unsafe.Sizeof(cn.slots)),
		field("broken", unsafe.Offsetof(cn.broken), unsafe.Sizeof(cn.broken)),
		field("mux", unsafe.Offsetof(cn.mux), unsafe.Sizeof(cn.mux)),
		field("bulk", unsafe.Offsetof(cn.bulk), unsafe.Sizeof(cn.bulk)),
	}
	prog := field("prog", unsafe.Offsetof(cn.prog), unsafe.Sizeof(cn.prog))
	written := []span{
		prog,
		field("mu", unsafe.Offsetof(cn.mu), unsafe.Sizeof(cn.mu)),
		field("out", unsafe.Offsetof(cn.out), unsafe.Sizeof(cn.out)),
		field("aheadAt", unsafe.Offsetof(cn.aheadAt), unsafe.Sizeof(cn.aheadAt)),
		field("in", unsafe.Offsetof(cn.in), unsafe.Sizeof(cn.in)),
	}
	const line = 64
	apart := func(a, b span) bool { return b.start >= a.end+line || a.start >= b.end+line }
	for _, r := range readMostly {
		for _, w := range written {
			if !apart(r, w) {
				t.Errorf("conn.%s [%d,%d) and conn.%s [%d,%d) may share a cache line", r.name, r.start, r.end, w.name, w.start, w.end)
			}
		}
	}
	for _, w := range written[1:] {
		if !apart(prog, w) {
			t.Errorf("conn.prog and conn.%s may share a cache line", w.name)
		}
	}
	// The writer's side (mu, out) and the reader's (aheadAt, in).
	for _, wr := range written[1:3] {
		for _, rd := range written[3:] {
			if !apart(wr, rd) {
				t.Errorf("conn.%s, the writer's, and conn.%s, the reader's, may share a cache line", wr.name, rd.name)
			}
		}
	}
}
