package server

import "testing"

// TestLargeBufferClasses: a buffer taken for n bytes always has room for
// them. (The pool itself may drop buffers at any time, so only the
// arithmetic is certain.)
func TestLargeBufferClasses(t *testing.T) {
	for _, n := range []int{1, 2, 3, 64<<10 + 1, 1 << 20, 1<<20 + 1, 3 << 19, 16 << 20} {
		for _, c := range []int{n - 1, n, n + 1, 2 * n, 3 << 19} {
			if c < 1 {
				continue
			}
			served := getClass(n) == putClass(c)
			if served && c < n {
				t.Errorf("a buffer of %d would serve a request for %d", c, n)
			}
			if c == n && n&(n-1) == 0 && !served {
				t.Errorf("a buffer of %d would not serve a request for as many", c)
			}
		}
	}
	if putClass(0) != -1 {
		t.Errorf("putClass(0) = %d, want -1", putClass(0))
	}
	var p largeBuffers
	p.put(nil)             // ignored
	p.put(make([]byte, 5)) // too small to matter, but harmless
	if b := p.get(1 << 30); b != nil {
		t.Fatalf("got a buffer of %d for 1 GiB", cap(b))
	}
}
