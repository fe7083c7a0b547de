package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/tcpez/tcpez/examples/kvcache/kvcachepb"
	"github.com/tcpez/tcpez/frame"
)

// A snapshot is a stream of tcpez frames: a SnapshotHeader, then a
// SnapshotRecord per key sorted by key, then one per channel sorted by
// name, each marshalled deterministically, so that a store always writes
// the same bytes (see kvcachepb/kvcache.proto).
const (
	snapshotFormat  = "tcpez-kvcache"
	snapshotVersion = 1
)

var deterministic = proto.MarshalOptions{Deterministic: true}

// WriteSnapshot writes the live keys and the channels of s to w.
func (s *Store) WriteSnapshot(w io.Writer) error {
	s.passFlush()
	var items []*kvcachepb.SnapshotItem
	var chans []*kvcachepb.SnapshotChannel
	now := s.now().UnixNano()
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		for k, it := range sh.items {
			if it.expires != 0 && it.expires <= now {
				continue
			}
			var ms int64
			if it.expires != 0 {
				ms = (it.expires + 999_999) / 1_000_000 // rounded up: never earlier
			}
			sh.share(k, it) // written out after the lock is let go
			items = append(items, &kvcachepb.SnapshotItem{Key: []byte(k), Value: it.value, ExpiresUnixMs: ms, Flags: it.flags})
		}
		for name, ch := range sh.chans {
			if ch.last == 0 {
				continue // only listened to
			}
			chans = append(chans, &kvcachepb.SnapshotChannel{Name: name, LastSeq: ch.last, Messages: ch.retained()})
		}
		sh.mu.Unlock()
	}
	slices.SortFunc(items, func(a, b *kvcachepb.SnapshotItem) int { return bytes.Compare(a.Key, b.Key) })
	slices.SortFunc(chans, func(a, b *kvcachepb.SnapshotChannel) int { return strings.Compare(a.Name, b.Name) })

	fw := frame.NewWriter(w)
	var buf []byte
	put := func(m proto.Message) error {
		var err error
		if buf, err = deterministic.MarshalAppend(buf[:0], m); err != nil {
			return err
		}
		return fw.WriteFrame(buf)
	}
	if err := put(&kvcachepb.SnapshotHeader{Format: snapshotFormat, Version: snapshotVersion}); err != nil {
		return err
	}
	for _, it := range items {
		if err := put(&kvcachepb.SnapshotRecord{Record: &kvcachepb.SnapshotRecord_Item{Item: it}}); err != nil {
			return err
		}
	}
	for _, ch := range chans {
		if err := put(&kvcachepb.SnapshotRecord{Record: &kvcachepb.SnapshotRecord_Channel{Channel: ch}}); err != nil {
			return err
		}
	}
	return fw.Flush()
}

// ReadSnapshot adds the keys and channels of a snapshot to s, replacing
// those of the same names; keys that have expired since are left out.
func (s *Store) ReadSnapshot(r io.Reader) error {
	fr := frame.NewReader(r, frame.Limits{MaxFrameSize: frame.MaxFrameSize})
	next := func(m proto.Message) (bool, error) {
		h, err := fr.ReadHeader()
		if err == io.EOF {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		if h.IsBatch() {
			return false, errors.New("unexpected batch header")
		}
		b, err := fr.ReadPayload(nil, h.Len())
		if err != nil {
			return false, err
		}
		return true, proto.Unmarshal(b, m)
	}
	var hdr kvcachepb.SnapshotHeader
	ok, err := next(&hdr)
	switch {
	case err != nil:
		return fmt.Errorf("snapshot header: %w", err)
	case !ok || hdr.Format != snapshotFormat || hdr.Version != snapshotVersion:
		return fmt.Errorf("not a version %d %s snapshot", snapshotVersion, snapshotFormat)
	}
	now := s.now().UnixNano()
	// A snapshot keeps no cas values: its items get new ones. Counting on
	// from the clock's nanoseconds keeps those above every value handed
	// out before it was written (unless writes outpaced a billion a
	// second), so that a client's cas from before the restart matches
	// no item, rather than one that changed since it read it.
	if now > 0 && s.cas.Load() < uint64(now) {
		s.cas.Store(uint64(now))
	}
	for n := 1; ; n++ {
		var rec kvcachepb.SnapshotRecord
		ok, err := next(&rec)
		if err != nil {
			return fmt.Errorf("snapshot record %d: %w", n, err)
		}
		if !ok {
			return nil
		}
		switch r := rec.Record.(type) {
		case *kvcachepb.SnapshotRecord_Item:
			it := item{value: r.Item.Value, flags: r.Item.Flags, expires: r.Item.ExpiresUnixMs * 1_000_000, cas: s.cas.Add(1)}
			if it.expires != 0 && it.expires <= now {
				continue
			}
			key := string(r.Item.Key)
			sh := s.shard(key)
			sh.mu.Lock()
			sh.items[key] = it
			sh.mu.Unlock()
		case *kvcachepb.SnapshotRecord_Channel:
			ch := &channel{last: r.Channel.LastSeq}
			for _, m := range r.Channel.Messages {
				s.push(ch, m)
			}
			sh := s.shard(r.Channel.Name)
			sh.mu.Lock()
			sh.chans[r.Channel.Name] = ch
			sh.mu.Unlock()
		default:
			return fmt.Errorf("snapshot record %d: empty", n)
		}
	}
}

// SaveFile writes a snapshot of s to path atomically: to a temporary file
// in the same directory, synced, then renamed over path.
func (s *Store) SaveFile(path string) error {
	return replaceFile(path, s.WriteSnapshot)
}

// replaceFile writes a file at path with write, durably and atomically:
// a temporary file beside it, fsynced, renamed over it, and the directory
// fsynced, so that a crash leaves the old file or the new one.
func replaceFile(path string, write func(io.Writer) error) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	bw := bufio.NewWriter(f)
	if err := write(bw); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if fi, err := os.Stat(path); err == nil {
		// The file keeps the mode it was given, not CreateTemp's 0600.
		if err := f.Chmod(fi.Mode().Perm()); err != nil {
			return err
		}
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return err
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		d.Sync() // make the rename durable where the file system allows
		d.Close()
	}
	return nil
}

// LoadFile reads the snapshot at path into s. A missing file is no error:
// loaded is then false.
func (s *Store) LoadFile(path string) (loaded bool, err error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer f.Close()
	if err := s.ReadSnapshot(bufio.NewReader(f)); err != nil {
		return false, fmt.Errorf("%s: %w", path, err)
	}
	return true, nil
}
