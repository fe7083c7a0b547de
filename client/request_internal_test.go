package client

import (
	"context"
	"runtime"
	"testing"
)

// TestKickedRequest walks a request through the orders in which a
// watcher's kick, the reader's delivery and its caller's look can come
// (see stateKicked): the caller gets its answer, gives up, or waits on,
// and no token is left behind in a request that goes back to the pool.
func TestKickedRequest(t *testing.T) {
	live := context.Background()
	ended, cancel := context.WithCancel(context.Background())
	cancel()
	fresh := func() *request { return &request{done: make(chan struct{}, 1)} }
	expect := func(t *testing.T, rq *request, state uint32, tokens int) {
		t.Helper()
		if s := rq.state.Load(); s != state {
			t.Fatalf("state %d, want %d", s, state)
		}
		if n := len(rq.done); n != tokens {
			t.Fatalf("%d tokens, want %d", n, tokens)
		}
	}

	t.Run("kick for a live context, then the answer", func(t *testing.T) {
		rq := fresh()
		rq.kick()
		<-rq.done
		if ok, again := rq.woken(live); ok || !again {
			t.Fatalf("woken: ok %v, again %v; want to wait on", ok, again)
		}
		expect(t, rq, statePending, 0)
		rq.complete([]byte("a"), nil, nil, false)
		<-rq.done
		if ok, again := rq.woken(live); !ok || again || string(rq.ans) != "a" {
			t.Fatalf("woken: ok %v, again %v, answer %q", ok, again, rq.ans)
		}
	})
	t.Run("answer between the kick and the caller's look", func(t *testing.T) {
		rq := fresh()
		rq.kick()
		rq.complete([]byte("a"), nil, nil, false)
		expect(t, rq, stateDone, 1) // the kick's token only
		<-rq.done
		if ok, _ := rq.woken(ended); !ok || string(rq.ans) != "a" {
			t.Fatalf("woken: ok %v, answer %q; the answer came first", ok, rq.ans)
		}
	})
	t.Run("answer after the caller took the kick's token", func(t *testing.T) {
		rq := fresh()
		rq.kick()
		<-rq.done
		rq.complete([]byte("a"), nil, nil, false)
		// No second token: it would be left for the request's next call.
		expect(t, rq, stateDone, 0)
		if ok, _ := rq.woken(live); !ok || string(rq.ans) != "a" {
			t.Fatalf("woken: ok %v, answer %q", ok, rq.ans)
		}
	})
	t.Run("kick for an ended context", func(t *testing.T) {
		rq := fresh()
		rq.kick()
		<-rq.done
		if ok, again := rq.woken(ended); ok || again {
			t.Fatalf("woken: ok %v, again %v; want to give up", ok, again)
		}
		expect(t, rq, stateAbandoned, 0)
		rq.complete([]byte("late"), nil, nil, false) // dropped
		expect(t, rq, stateAbandoned, 0)
	})
	t.Run("caller selecting gives up after a kick", func(t *testing.T) {
		rq := fresh()
		rq.kick()
		if rq.giveUp(ended) {
			t.Fatal("giveUp took an answer that never came")
		}
		expect(t, rq, stateAbandoned, 0)
	})
	t.Run("a kick of an idle request", func(t *testing.T) {
		rq := fresh()
		rq.state.Store(stateDone)
		rq.kick()
		expect(t, rq, stateDone, 0)
	})
	t.Run("token left from a kick before the request was reused", func(t *testing.T) {
		rq := fresh()
		rq.done <- struct{}{}
		<-rq.done
		if ok, again := rq.woken(live); ok || !again {
			t.Fatalf("woken on a stale token: ok %v, again %v", ok, again)
		}
		rq.done <- struct{}{}
		// The delivery must not block on the stale token, and the
		// caller finds the answer behind it.
		rq.complete([]byte("a"), nil, nil, false)
		expect(t, rq, stateDone, 1)
		<-rq.done
		if ok, _ := rq.woken(live); !ok || string(rq.ans) != "a" {
			t.Fatalf("woken: ok %v, answer %q", ok, rq.ans)
		}
	})
}

// TestSharedDoneSamplesTwice: a done channel earns a watcher only when two
// samples in a row find it, so that contexts made per call do not.
func TestSharedDoneSamplesTwice(t *testing.T) {
	s := &sharedDone{spawn: func(func()) bool { return true }}
	a, b := make(chan struct{}), make(chan struct{})
	s.sample(a)
	s.sample(b)
	s.sample(a)
	// lookup, not find: find samples too, now and then.
	if s.lookup(a) != nil || s.lookup(b) != nil {
		t.Fatal("a watcher for a channel sampled twice, but not in a row")
	}
	s.sample(a)
	if s.lookup(a) == nil {
		t.Fatal("no watcher for a channel sampled twice in a row")
	}
	for range maxWatched {
		c := make(chan struct{})
		s.sample(c)
		s.sample(c)
	}
	n := 0
	for i := range s.slots {
		if s.slots[i].Load() != nil {
			n++
		}
	}
	if n != maxWatched {
		t.Fatalf("%d watchers, want at most %d", n, maxWatched)
	}
}

// TestSharedDoneSweepsDeadRequests: the register of requests drops those
// the pool let go of when it fills, rather than growing with every
// request the pool ever made, and keeps the live ones.
func TestSharedDoneSweepsDeadRequests(t *testing.T) {
	s := &sharedDone{}
	for range 64 {
		s.add(&request{}) // garbage as soon as added
	}
	runtime.GC()
	live := make([]*request, 64)
	for i := range live {
		live[i] = &request{}
		s.add(live[i])
	}
	if len(s.reqs) != 64 || cap(s.reqs) != 64 {
		t.Fatalf("%d requests registered in room for %d, want the 64 live ones in the first 64 places", len(s.reqs), cap(s.reqs))
	}
	for i, p := range s.reqs {
		if p.Value() != live[i] {
			t.Fatalf("place %d holds %p, want live request %d", i, p.Value(), i)
		}
	}
	s.add(&request{}) // full of live ones: room doubles
	if cap(s.reqs) < 128 {
		t.Fatalf("room for %d after a sweep found every request alive", cap(s.reqs))
	}
	runtime.KeepAlive(live)
}
