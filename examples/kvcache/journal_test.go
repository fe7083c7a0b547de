package main

import (
	"bytes"
	"context"
	"errors"
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

// FuzzJournalReplay: whatever the file holds, replay stops cleanly, or
// reports corruption when a bad record has more after it than zeros.
func FuzzJournalReplay(f *testing.F) {
	f.Add(appendPut(nil, "k", item{value: []byte("v"), flags: 1, expires: 5, cas: 9}))
	f.Add(appendRecord(nil, recDel, func(b []byte) []byte { return append(b, "k"...) }))
	f.Add(appendRecord(nil, recFlush, func(b []byte) []byte { return append(b, 0x80) }))
	f.Fuzz(func(t *testing.T, data []byte) {
		s := NewStore(StoreConfig{})
		if err := replay(bytes.NewReader(data), s); err != nil && !errors.Is(err, ErrJournalCorrupt) {
			t.Fatal(err)
		}
	})
}

// TestJournalCorruption: a journal with a bad record that more records
// follow, or a file that is no journal, stops OpenJournal with
// ErrJournalCorrupt and is left as it was; a tail of zeros after the last
// record, as a crash may leave, is no corruption. (A flipped byte used to
// drop every record after it without a word, and the compaction that
// follows made that final; a file that was no journal was emptied.)
func TestJournalCorruption(t *testing.T) {
	var good []byte
	for i := range 20 {
		good = appendPut(good, fmt.Sprintf("k%d", i), item{value: bytes.Repeat([]byte{'v'}, 100), cas: uint64(i + 1)})
	}
	flipped := bytes.Clone(good)
	flipped[len(flipped)/2] ^= 0x40
	for _, tc := range []struct {
		name    string
		data    []byte
		corrupt bool
		keys    int
	}{
		{"whole", good, false, 20},
		{"zeros after the last record", append(bytes.Clone(good), make([]byte, 4096)...), false, 20},
		{"a byte flipped in the middle", flipped, true, 0},
		{"not a journal", []byte("listen = 127.0.0.1:11211\nthreads = 4\n"), true, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "j")
			if err := os.WriteFile(path, tc.data, 0o644); err != nil {
				t.Fatal(err)
			}
			s := NewStore(StoreConfig{})
			j, err := OpenJournal(JournalConfig{Path: path, SyncEvery: -1}, s)
			if tc.corrupt {
				if !errors.Is(err, ErrJournalCorrupt) {
					t.Fatalf("OpenJournal: %v; want ErrJournalCorrupt", err)
				}
				if got, _ := os.ReadFile(path); !bytes.Equal(got, tc.data) {
					t.Fatalf("the file was changed: %d bytes, was %d", len(got), len(tc.data))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer j.Close()
			if s.Len() != tc.keys {
				t.Fatalf("%d keys, want %d", s.Len(), tc.keys)
			}
			if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o644 {
				t.Fatalf("after compaction: %v, %v; want the file's mode kept, 0644", fi.Mode(), err)
			}
		})
	}
}
