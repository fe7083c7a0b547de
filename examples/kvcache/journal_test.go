package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestJournalTornTail cuts a journal at every byte of its last record
// and replays it: every record before the cut comes back, and the torn one
// is dropped, never half-applied.
func TestJournalTornTail(t *testing.T) {
	clock := newFakeClock()
	var full []byte
	var ends []int // where each record ends
	for i := range 5 {
		full = appendPut(full, fmt.Sprintf("k%d", i), item{value: []byte(fmt.Sprintf("value %d", i)), flags: uint32(i), cas: uint64(i + 1)})
		ends = append(ends, len(full))
	}
	for cut := ends[3]; cut <= ends[4]; cut++ {
		s := newTestStore(t, clock, 0)
		if err := replay(bytes.NewReader(full[:cut]), s); err != nil {
			t.Fatal(err)
		}
		want := 4
		if cut == ends[4] {
			want = 5
		}
		if s.Len() != want {
			t.Fatalf("cut at %d: %d keys, want %d", cut, s.Len(), want)
		}
		it, ok := s.GetItem("k3")
		if !ok || string(it.Value) != "value 3" || it.Flags != 3 || it.CAS != 4 {
			t.Fatalf("cut at %d: k3 = %+v, %t", cut, it, ok)
		}
	}
}

// TestJournalReplayAndCompact: writes of every kind through a journal,
// closed, reopened into a new store; the keys come back as they were, the
// compacted file holds one record per live key, and cas values keep
// growing past those replayed.
func TestJournalReplayAndCompact(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j")
	s := NewStore(StoreConfig{})
	j, err := OpenJournal(JournalConfig{Path: path, SyncEvery: -1}, s)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	s.Set("a", []byte("1"), 0)
	s.StoreItem(ModeSet, "b", []byte("bee"), 7, 0, 0)
	s.StoreItem(ModeAppend, "b", []byte("s"), 0, 0, 0)
	s.IncrItem("a", 41, false)
	s.Set("gone", []byte("x"), 0)
	s.Delete("gone")
	s.Set("old", []byte("x"), 0)
	s.FlushAll(time.Now().Add(-time.Second).UnixNano())
	s.Set("c", []byte("after the flush"), 0)
	if err := s.Durable(ctx); err != nil {
		t.Fatal(err)
	}
	maxCAS := s.cas.Load()
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}

	s2 := NewStore(StoreConfig{})
	j2, err := OpenJournal(JournalConfig{Path: path, SyncEvery: -1}, s2)
	if err != nil {
		t.Fatal(err)
	}
	defer j2.Close()
	for key, want := range map[string]string{"c": "after the flush"} {
		if it, ok := s2.GetItem(key); !ok || string(it.Value) != want {
			t.Fatalf("%s = %q, %t; want %q", key, it.Value, ok, want)
		}
	}
	for _, key := range []string{"a", "b", "gone", "old"} {
		if it, ok := s2.GetItem(key); ok {
			t.Fatalf("%s = %q after flush_all or delete", key, it.Value)
		}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := len(appendPut(nil, "c", item{value: []byte("after the flush"), cas: maxCAS})); len(data) != want {
		t.Fatalf("compacted journal of %d bytes, want one record of %d", len(data), want)
	}
	s2.Set("d", []byte("x"), 0)
	if it, _ := s2.GetItem("d"); it.CAS <= maxCAS {
		t.Fatalf("cas %d after restart, not above %d", it.CAS, maxCAS)
	}
}

// FuzzJournalReplay: whatever the file holds, replay stops cleanly.
func FuzzJournalReplay(f *testing.F) {
	f.Add(appendPut(nil, "k", item{value: []byte("v"), flags: 1, expires: 5, cas: 9}))
	f.Add(appendRecord(nil, recDel, func(b []byte) []byte { return append(b, "k"...) }))
	f.Add(appendRecord(nil, recFlush, func(b []byte) []byte { return append(b, 0x80) }))
	f.Fuzz(func(t *testing.T, data []byte) {
		s := NewStore(StoreConfig{})
		if err := replay(bytes.NewReader(data), s); err != nil {
			t.Fatal(err)
		}
	})
}
