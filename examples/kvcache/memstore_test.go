package main

import (
	"bytes"
	"testing"
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
	var snap bytes.Buffer
	if err := s.WriteSnapshot(&snap); err != nil {
		t.Fatal(err)
	}
	r := NewStore(StoreConfig{})
	defer r.Close()
	if err := r.ReadSnapshot(&snap); err != nil {
		t.Fatal(err)
	}
	for key, flags := range map[string]uint32{"\xff\x01key": 7, "plain": 4294967295} {
		if it, ok := r.GetItem(key); !ok || it.Flags != flags {
			t.Errorf("%q after the round trip: %+v, %t; want flags %d", key, it, ok, flags)
		}
	}
}
