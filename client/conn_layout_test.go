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
	type field struct {
		name       string
		start, end uintptr
	}
	at := func(name string, off, size uintptr) field { return field{name, off, off + size} }
	groups := [][]field{
		{ // set once, read by every call
			at("c", unsafe.Offsetof(cn.c), unsafe.Sizeof(cn.c)),
			at("slots", unsafe.Offsetof(cn.slots), unsafe.Sizeof(cn.slots)),
			at("broken", unsafe.Offsetof(cn.broken), unsafe.Sizeof(cn.broken)),
			at("mux", unsafe.Offsetof(cn.mux), unsafe.Sizeof(cn.mux)),
			at("bulk", unsafe.Offsetof(cn.bulk), unsafe.Sizeof(cn.bulk)),
		},
		{at("prog", unsafe.Offsetof(cn.prog), unsafe.Sizeof(cn.prog))},
		{ // the writer's
			at("mu", unsafe.Offsetof(cn.mu), unsafe.Sizeof(cn.mu)),
			at("out", unsafe.Offsetof(cn.out), unsafe.Sizeof(cn.out)),
		},
		{ // the reader's
			at("aheadAt", unsafe.Offsetof(cn.aheadAt), unsafe.Sizeof(cn.aheadAt)),
			at("in", unsafe.Offsetof(cn.in), unsafe.Sizeof(cn.in)),
		},
	}
	const line = 64
	for i, g := range groups {
		for _, h := range groups[i+1:] {
			for _, a := range g {
				for _, b := range h {
					if b.start < a.end+line && a.start < b.end+line {
						t.Errorf("conn.%s [%d,%d) and conn.%s [%d,%d) may share a cache line", a.name, a.start, a.end, b.name, b.start, b.end)
					}
				}
			}
		}
	}
}
