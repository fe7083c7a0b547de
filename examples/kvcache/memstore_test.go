package main

import (
	"bytes"
	"testing"
	"time"
)

// StoreItem copies what it stores, and overwrites a value in place only
// while nobody outside the store holds it.
func TestStoreItemReusesOnlyItsOwnValues(t *testing.T) {
	s := NewStore(StoreConfig{})
	data := []byte("aaaa")
	s.StoreItem(ModeSet, "k", data, 0, 0, 0)
	copy(data, "zzzz") // the caller's bytes are its own again
	if it, _ := s.GetItem("k"); string(it.Value) != "aaaa" {
		t.Fatalf("stored %q, want a copy of aaaa", it.Value)
	}

	// A value handed out by Get is never overwritten.
	got, _, _ := s.Get("k")
	s.StoreItem(ModeSet, "k", []byte("bbbb"), 0, 0, 0)
	if string(got) != "aaaa" {
		t.Fatalf("a value Get returned became %q", got)
	}

	// A value only ever viewed under the lock is overwritten in place.
	var before, after *byte
	s.ViewItem("k", func(it Item) { before = &it.Value[0] })
	s.StoreItem(ModeSet, "k", []byte("cccc"), 0, 0, 0)
	s.ViewItem("k", func(it Item) { after = &it.Value[0] })
	if before != after {
		t.Fatal("a set of the same size did not reuse the store's own value")
	}
	if it, _ := s.GetItem("k"); !bytes.Equal(it.Value, []byte("cccc")) {
		t.Fatalf("after the set in place: %q", it.Value)
	}

	// A snapshot hands the values out too.
	var buf bytes.Buffer
	if err := s.WriteSnapshot(&buf); err != nil {
		t.Fatal(err)
	}
	s.ViewItem("k", func(it Item) { before = &it.Value[0] })
	s.StoreItem(ModeSet, "k", []byte("dddd"), 0, 0, 0)
	s.ViewItem("k", func(it Item) { after = &it.Value[0] })
	if before == after {
		t.Fatal("a value a snapshot holds was overwritten in place")
	}
}

// TestSnapshotKeepsMemcachedItems: a snapshot keeps the flags of an item
// and keys that are not UTF-8, as the memcached listener takes them.
// Before, the flags came back 0 and one such key made every snapshot fail
// ("string field contains invalid UTF-8").
func TestSnapshotKeepsMemcachedItems(t *testing.T) {
	s := NewStore(StoreConfig{})
	defer s.Close()
	s.StoreItem(ModeSet, "\xff\x01key", []byte("v"), 7, 0, 0)
	s.StoreItem(ModeSet, "plain", []byte("w"), 4294967295, 0, 0)
	r := restored(t, s)
	for key, flags := range map[string]uint32{"\xff\x01key": 7, "plain": 4294967295} {
		if it, ok := r.GetItem(key); !ok || it.Flags != flags {
			t.Errorf("%q after the round trip: %+v, %t; want flags %d", key, it, ok, flags)
		}
	}
}

// restored returns a new store that read a snapshot of s, closed when
// the test ends.
func restored(t *testing.T, s *Store) *Store {
	t.Helper()
	var snap bytes.Buffer
	if err := s.WriteSnapshot(&snap); err != nil {
		t.Fatal(err)
	}
	r := NewStore(StoreConfig{})
	t.Cleanup(r.Close)
	if err := r.ReadSnapshot(&snap); err != nil {
		t.Fatal(err)
	}
	return r
}

// TestSnapshotCASFromBeforeRestartIsStale: a snapshot keeps no cas
// values. The items it loads used to be numbered from 1 again, so that a
// cas read before the restart could match an item changed since: here the
// first value of k, replaced before the snapshot, took the new one's place.
func TestSnapshotCASFromBeforeRestartIsStale(t *testing.T) {
	s := NewStore(StoreConfig{})
	defer s.Close()
	s.StoreItem(ModeSet, "k", []byte("first"), 0, 0, 0)
	first, _ := s.GetItem("k")
	s.StoreItem(ModeSet, "k", []byte("second"), 0, 0, 0)
	r := restored(t, s)
	if got := r.StoreItem(ModeCAS, "k", []byte("third"), 0, 0, first.CAS); got != Exists {
		t.Fatalf("cas %d, read before the value changed and the store restarted: %v, want Exists", first.CAS, storeStatus[got])
	}
	if it, _ := r.GetItem("k"); string(it.Value) != "second" {
		t.Fatalf("k = %q after a stale cas, want second", it.Value)
	}
}

// TestFlushAllDelayed: flush_all with a delay, as memcached does it. Once
// the deadline passes, every item last written before it is gone: those
// held at the command, and those set or touched after it; an item written
// after the deadline stays. A later flush_all replaces a pending
// deadline. (kvcache shortened the expiry of the items held at the
// command: one set after it survived, and a touch undid the flush.)
func TestFlushAllDelayed(t *testing.T) {
	clock := newFakeClock()
	s := newTestStore(t, clock, 0)
	put := func(key string) {
		t.Helper()
		if r := s.StoreItem(ModeSet, key, []byte(key), 0, 0, 0); r != Stored {
			t.Fatalf("set %s: %v", key, r)
		}
	}
	has := func(key string) bool {
		_, ok := s.GetItem(key)
		return ok
	}
	put("before")
	put("touched")
	s.FlushAll(clock.Now().Add(2 * time.Second).UnixNano())
	put("after the command")
	if !s.Touch("touched", clock.Now().Add(time.Hour).UnixNano(), nil) {
		t.Fatal("touch failed")
	}
	if !has("before") || !has("after the command") || !has("touched") {
		t.Fatal("items gone before the deadline")
	}
	clock.Advance(3 * time.Second)
	for _, key := range []string{"before", "touched", "after the command"} {
		if has(key) {
			t.Errorf("%s is still there after the deadline", key)
		}
	}
	put("after the deadline")
	if !has("after the deadline") {
		t.Error("an item written after the deadline is gone")
	}

	// A later flush_all replaces a pending one.
	s.FlushAll(clock.Now().Add(2 * time.Second).UnixNano())
	s.FlushAll(clock.Now().Add(100 * time.Second).UnixNano())
	clock.Advance(3 * time.Second)
	if !has("after the deadline") {
		t.Error("the first deadline still applied after a second flush_all replaced it")
	}
	// And an immediate one drops everything, and the pending deadline.
	s.FlushAll(clock.Now().UnixNano())
	put("later")
	clock.Advance(200 * time.Second)
	if has("after the deadline") || !has("later") {
		t.Errorf("after flush_all: %t, %t; want the old item gone and the later one kept", has("after the deadline"), has("later"))
	}
}
