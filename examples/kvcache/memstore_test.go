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
