package server

import (
	"testing"
	"time"
)

// TestLargeSize: a buffer lent for n bytes has room for them, wastes at
// most a quarter of n, and is a whole number of pages.
func TestLargeSize(t *testing.T) {
	for _, n := range []int{64<<10 + 1, 80 << 10, 1<<20 - 1, 1 << 20, 1<<20 + 1, 3 << 19, 16<<20 - 5, 16 << 20} {
		s := largeSize(n)
		if s < n || s > n+n/4 || s%4096 != 0 {
			t.Errorf("largeSize(%d) = %d", n, s)
		}
	}
	for n := 1; n <= 64<<10; n++ {
		if s := largeSize(n); s < n || s >= n+4096 || s%4096 != 0 {
			t.Fatalf("largeSize(%d) = %d", n, s)
		}
	}
}

// TestLargeBuffersStayWithinTheBudget: pooled buffers count against the
// budget, are reused, are freed when a request needs their room, and are
// all freed by close.
func TestLargeBuffersStayWithinTheBudget(t *testing.T) {
	const size = 1 << 20
	b, p := newMemory(16 * size) // the pool keeps up to an eighth
	defer p.close()
	a := b.NewAccount()
	if !a.TryAcquire(size) {
		t.Fatal("1 MiB of a 4 MiB budget refused")
	}
	buf := p.get(size)
	if cap(buf) != size {
		t.Fatalf("got a buffer of %d", cap(buf))
	}
	buf = append(buf, 1, 2, 3)
	p.put(a, buf)
	if a.Held() != 0 || b.Used() != size {
		t.Fatalf("after put: account holds %d, budget used %d; want 0 and %d (parked)", a.Held(), b.Used(), size)
	}
	if !a.TryAcquire(size) {
		t.Fatal("refused with room")
	}
	again := p.get(size)
	if &again[:1][0] != &buf[0] {
		t.Error("the pooled buffer was not reused")
	}
	if b.Used() != size {
		t.Fatalf("budget used %d after reuse, want %d", b.Used(), size)
	}
	p.put(a, again)
	// The whole budget: only freeing the parked buffer makes room.
	if !a.TryAcquire(16 * size) {
		t.Fatal("the parked buffer was not freed to make room")
	}
	if b.Used() != 16*size {
		t.Fatalf("budget used %d, want %d", b.Used(), 16*size)
	}
	a.Release(16 * size)
	a.TryAcquire(size)
	p.put(a, p.get(size))
	p.close()
	if b.Used() != 0 {
		t.Fatalf("budget used %d after close, want 0", b.Used())
	}
}

// TestPoolTrimsAfterReuse: a size class emptied by get leaves nothing for
// the trimmer to trip on, and trimming frees only what is idle.
func TestPoolTrimsAfterReuse(t *testing.T) {
	const size = 1 << 20
	b, p := newMemory(64 * size)
	defer p.close()
	a := b.NewAccount()
	for _, n := range []int{size, 2 * size} {
		a.TryAcquire(int64(n))
		p.put(a, p.get(n))
	}
	a.TryAcquire(size)
	buf := p.get(size) // empties its class
	p.drop(-1, time.Now().Add(time.Hour))
	if b.Used() != size {
		t.Fatalf("used %d, want %d: only the buffer in use", b.Used(), size)
	}
	p.put(a, buf)
	p.drop(-1, time.Now().Add(-time.Hour))
	if b.Used() != size {
		t.Fatalf("used %d, want %d: a fresh buffer was trimmed", b.Used(), size)
	}
}

// TestDroppedMappingStaysReadable: a handler that keeps a large request
// past Respond, against the Handler contract, reads zeros once the pool
// has given the memory back, rather than faulting the whole process; and
// the discarded mapping is what the next request of its size gets.
func TestDroppedMappingStaysReadable(t *testing.T) {
	const size = 1 << 20
	b, p := newMemory(64 * size)
	defer p.close()
	a := b.NewAccount()
	a.TryAcquire(size)
	kept := p.get(size)[:size]
	for i := range kept {
		kept[i] = 0xAB
	}
	p.put(a, kept)
	p.drop(-1, time.Time{}) // as the trimmer does once it is idle
	if b.Used() != 0 {
		t.Fatalf("budget used %d after the drop, want 0", b.Used())
	}
	for i := 0; i < size; i += 4096 {
		if kept[i] == 0xAB {
			t.Fatalf("byte %d still holds the old request: the memory was not given back", i)
		}
	}
	a.TryAcquire(size)
	if again := p.get(size); &again[:1][0] != &kept[0] {
		t.Error("a new mapping was made while a discarded one of the size waited")
	}
}
