package client

import (
	"context"
	"sync/atomic"
)

// slots is a connection's in-flight limit: a counting semaphore whose
// uncontended acquire and release are one atomic operation each
// (docs/DESIGN.md, "In-flight slots"). Only callers that find it full
// wait, on freed.
type slots struct {
	held    atomic.Int64
	waiting atomic.Int64
	max     int64
	// freed holds a wake-up per slot freed while anyone waited. Room for
	// one per slot means a release drops its wake-up only when the channel
	// is full, and then a waiter finds one there anyway; a wake-up left
	// over costs a waiter one more try.
	freed chan struct{}
}

func newSlots(limit int) *slots {
	return &slots{max: int64(limit), freed: make(chan struct{}, limit)}
}

// load is the number of slots held: the load the balancer compares.
func (s *slots) load() int { return int(s.held.Load()) }

func (s *slots) tryAcquire() bool {
	for {
		n := s.held.Load()
		if n >= s.max {
			return false
		}
		if s.held.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// release frees a slot. A waiter either sees it in its own tryAcquire or
// is counted in waiting before release looks, and is woken.
func (s *slots) release() {
	s.held.Add(-1)
	if s.waiting.Load() > 0 {
		select {
		case s.freed <- struct{}{}:
		default: // full: a waiter finds a wake-up there anyway
		}
	}
}

// acquire waits for a slot. It returns false without one when changed is
// closed (nil: never) and ctx's error when ctx ends first.
func (s *slots) acquire(ctx context.Context, changed <-chan struct{}) (bool, error) {
	s.waiting.Add(1)
	defer s.waiting.Add(-1)
	for {
		if s.tryAcquire() {
			return true, nil
		}
		select {
		case <-s.freed:
		case <-changed:
			return false, nil
		case <-ctx.Done():
			return false, ctxError(ctx)
		}
	}
}
