package client

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestSlotsLimitAndWakeups: many callers over few slots never hold more
// than the limit, and none is left waiting while a slot is free (a lost
// wake-up would end in the deadline instead).
func TestSlotsLimitAndWakeups(t *testing.T) {
	const limit, callers, rounds = 3, 40, 300
	s := newSlots(limit)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var inside, most atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range rounds {
				if !s.tryAcquire() {
					if ok, err := s.acquire(ctx, nil); !ok {
						errs <- err
						return
					}
				}
				n := inside.Add(1)
				for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
				}
				inside.Add(-1)
				s.release()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("a caller never got a slot: %v", err)
	}
	if m := most.Load(); m > limit {
		t.Fatalf("%d slots held at once, limit %d", m, limit)
	}
	if n := s.load(); n != 0 {
		t.Fatalf("%d slots held after every release", n)
	}
}

// TestSlotsAcquireEnds: a full semaphore's waiter leaves when changed
// closes or its context ends.
func TestSlotsAcquireEnds(t *testing.T) {
	s := newSlots(1)
	if !s.tryAcquire() || s.tryAcquire() {
		t.Fatal("one slot: the first try must get it, the second not")
	}
	changed := make(chan struct{})
	close(changed)
	if ok, err := s.acquire(context.Background(), changed); ok || err != nil {
		t.Fatalf("changed closed: %v, %v; want false, nil", ok, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if ok, err := s.acquire(ctx, nil); ok || !errors.Is(err, context.Canceled) {
		t.Fatalf("context cancelled: %v, %v; want false, context.Canceled", ok, err)
	}
	s.release()
	if ok, err := s.acquire(context.Background(), nil); !ok || err != nil {
		t.Fatalf("after a release: %v, %v; want a slot", ok, err)
	}
}

// TestSlotsTwoFreedAtOnce: two slots freed back to back, while two callers
// wait, reach both.
func TestSlotsTwoFreedAtOnce(t *testing.T) {
	s := newSlots(2)
	s.tryAcquire()
	s.tryAcquire()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	got := make(chan error, 2)
	for range 2 {
		go func() {
			_, err := s.acquire(ctx, nil)
			got <- err
		}()
	}
	for s.waiting.Load() != 2 {
		time.Sleep(time.Millisecond)
	}
	s.release()
	s.release()
	for range 2 {
		if err := <-got; err != nil {
			t.Fatalf("a waiter missed its slot: %v", err)
		}
	}
}
