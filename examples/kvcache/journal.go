package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"sync"
	"time"
)

// DefaultSyncEvery is how often the journal is synced when
// JournalConfig.SyncEvery is zero.
const DefaultSyncEvery = 100 * time.Millisecond

// JournalConfig configures OpenJournal.
type JournalConfig struct {
	// Path is the journal file.
	Path string
	// SyncEvery is how often appended records are written and fsynced:
	// a write acknowledged at time t is on disk by t+SyncEvery plus one
	// write and fsync, which is the most a SIGKILL or a power cut loses.
	// Negative: every write is on disk before it is acknowledged (a
	// group commit: concurrent writes share an fsync), and nothing
	// acknowledged is lost. Zero: DefaultSyncEvery.
	SyncEvery time.Duration
}

// Journal is the store's append-only log: every write of a key (set,
// delete, flush_all) is appended as a record, and the file is replayed at
// start. Records are [length u32][crc32c u32][payload], so a record torn
// by a crash is found and dropped, with whatever follows it.
//
// At open the journal is replayed into the store and then rewritten with
// only the live keys (a temporary file, fsynced, renamed over it), so it
// grows only with the writes of one run. Channels are not journalled:
// --snapshot keeps them across clean restarts.
type Journal struct {
	f         *os.File
	syncEvery time.Duration // < 0: sync before acknowledging

	mu       sync.Mutex
	buf      []byte // records appended, not yet written
	spare    []byte
	appended uint64        // records appended since open
	synced   uint64        // records on disk
	flushed  chan struct{} // closed after each sync
	err      error         // the first write or sync error; final
	kick     chan struct{} // wakes the syncer (syncEvery < 0)

	closing chan struct{}
	closed  sync.WaitGroup
	once    sync.Once
}

const (
	recPut   = 'S'
	recDel   = 'D'
	recFlush = 'F'
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// OpenJournal replays the journal at cfg.Path into s (a missing file is
// an empty journal), compacts it, and attaches it to s, which from then on
// logs every write of a key into it.
func OpenJournal(cfg JournalConfig, s *Store) (*Journal, error) {
	if cfg.SyncEvery == 0 {
		cfg.SyncEvery = DefaultSyncEvery
	}
	if err := replayFile(cfg.Path, s); err != nil {
		return nil, err
	}
	if err := compact(cfg.Path, s); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(cfg.Path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return nil, err
	}
	j := &Journal{f: f, syncEvery: cfg.SyncEvery, flushed: make(chan struct{}),
		kick: make(chan struct{}, 1), closing: make(chan struct{})}
	s.journal = j
	j.closed.Add(1)
	go j.syncLoop()
	return j, nil
}

// put logs the item at key. The caller holds the key's shard lock.
func (j *Journal) put(key string, it item) {
	j.mu.Lock()
	j.buf = appendPut(j.buf, key, it)
	j.added()
}

func (j *Journal) del(key string) {
	j.mu.Lock()
	j.buf = appendRecord(j.buf, recDel, func(b []byte) []byte { return append(b, key...) })
	j.added()
}

func (j *Journal) flush(at int64) {
	j.mu.Lock()
	j.buf = appendRecord(j.buf, recFlush, func(b []byte) []byte { return binary.AppendVarint(b, at) })
	j.added()
}

// added counts a record and unlocks; with sync-before-ack it wakes the
// syncer.
func (j *Journal) added() {
	j.appended++
	j.mu.Unlock()
	if j.syncEvery < 0 {
		select {
		case j.kick <- struct{}{}:
		default:
		}
	}
}

func appendPut(b []byte, key string, it item) []byte {
	return appendRecord(b, recPut, func(b []byte) []byte {
		b = binary.AppendUvarint(b, uint64(len(key)))
		b = append(b, key...)
		b = binary.BigEndian.AppendUint32(b, it.flags)
		b = binary.AppendVarint(b, it.expires)
		b = binary.AppendUvarint(b, it.cas)
		return append(b, it.value...)
	})
}

// appendRecord appends a record of kind op whose payload body appends.
func appendRecord(b []byte, op byte, body func([]byte) []byte) []byte {
	start := len(b)
	b = append(b, 0, 0, 0, 0, 0, 0, 0, 0, op)
	b = body(b)
	payload := b[start+8:]
	binary.BigEndian.PutUint32(b[start:], uint32(len(payload)))
	binary.BigEndian.PutUint32(b[start+4:], crc32.Checksum(payload, castagnoli))
	return b
}

// durable waits until every record appended so far is on disk, when
// writes are synced before they are acknowledged.
func (j *Journal) durable(ctx context.Context) error {
	if j.syncEvery >= 0 {
		return nil
	}
	j.mu.Lock()
	want := j.appended
	for j.synced < want && j.err == nil {
		ch := j.flushed
		j.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
		j.mu.Lock()
	}
	err := j.err
	j.mu.Unlock()
	return err
}

// Stats returns the records appended since open and those on disk.
func (j *Journal) Stats() (appended, synced uint64) {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.appended, j.synced
}

func (j *Journal) syncLoop() {
	defer j.closed.Done()
	var tick <-chan time.Time
	if j.syncEvery > 0 {
		t := time.NewTicker(j.syncEvery)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-tick:
		case <-j.kick:
		case <-j.closing:
			j.sync()
			return
		}
		j.sync()
	}
}

// sync writes what was appended and fsyncs it.
func (j *Journal) sync() {
	j.mu.Lock()
	buf, seq := j.buf, j.appended
	j.buf = j.spare[:0]
	j.mu.Unlock()
	var err error
	if len(buf) > 0 {
		if _, err = j.f.Write(buf); err == nil {
			err = j.f.Sync()
		}
	}
	j.mu.Lock()
	j.spare = buf[:0]
	if err != nil && j.err == nil {
		j.err = fmt.Errorf("kvcache journal: %w", err)
	}
	if j.err == nil {
		j.synced = seq
	}
	close(j.flushed)
	j.flushed = make(chan struct{})
	j.mu.Unlock()
}

// Close writes and syncs what is left and closes the file. Close it after
// the servers have stopped: later writes to the store would be lost.
func (j *Journal) Close() error {
	j.once.Do(func() { close(j.closing) })
	j.closed.Wait()
	j.mu.Lock()
	err := j.err
	j.mu.Unlock()
	return errors.Join(err, j.f.Close())
}

// replayFile applies the records of the journal at path to s, and cuts a
// torn tail.
func replayFile(path string, s *Store) error {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	if err := replay(bufio.NewReader(f), s); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// ErrJournalCorrupt is OpenJournal's error for a journal with a bad record
// that is not the torn tail a crash leaves: records follow it. kvcache
// then does not start, rather than drop those records and compact them
// away for good; the error says where the bad record is.
var ErrJournalCorrupt = errors.New("kvcache: the journal is corrupt")

// replay applies records until the end of r. A crash can only tear the
// last record written, and a file system may leave zeros after it: a bad
// record followed by nothing else is dropped, and replay ends there. A bad
// record followed by more is corruption (a flipped bit, or a file that
// was never a journal): ErrJournalCorrupt, with what was applied so far.
func replay(r io.Reader, s *Store) error {
	var hdr [8]byte
	var payload []byte
	var off int64 // where the record being read starts
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return readEnd(err) // the end, or a torn header
		}
		n := binary.BigEndian.Uint32(hdr[:4])
		if n == 0 || n > 64<<20 {
			zero := hdr == [8]byte{}
			return badRecord(r, off, zero, fmt.Sprintf("a record length of %d", n))
		}
		if cap(payload) < int(n) {
			payload = make([]byte, n)
		}
		payload = payload[:n]
		if _, err := io.ReadFull(r, payload); err != nil {
			return readEnd(err) // a torn record
		}
		if crc32.Checksum(payload, castagnoli) != binary.BigEndian.Uint32(hdr[4:]) {
			return badRecord(r, off, false, "a record whose checksum does not match")
		}
		if !s.apply(payload) {
			return badRecord(r, off, false, "a record it cannot read")
		}
		off += int64(len(hdr)) + int64(n)
	}
}

// readEnd is replay's result when a read stops short: the end of the
// journal, or an error reading it.
func readEnd(err error) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return nil
	}
	return err
}

// badRecord decides whether the bad record at off is a torn tail, nothing
// but zeros following it (zero says its own header was zeros too), or
// corruption.
func badRecord(r io.Reader, off int64, zero bool, why string) error {
	rest, zeros, err := restOf(r)
	if err != nil {
		return err
	}
	if rest == 0 || (zero && zeros) {
		return nil
	}
	return fmt.Errorf("%w: %s at byte %d, and %d bytes after it: move the file aside to start empty, or cut it to %d bytes to keep the records before it", ErrJournalCorrupt, why, off, rest, off)
}

// restOf reads r to its end, and reports how many bytes it held and
// whether they were all zeros.
func restOf(r io.Reader) (n int64, zeros bool, err error) {
	buf := make([]byte, 32<<10)
	zeros = true
	for {
		k, err := r.Read(buf)
		n += int64(k)
		for _, c := range buf[:k] {
			zeros = zeros && c == 0
		}
		if err == io.EOF {
			return n, zeros, nil
		}
		if err != nil {
			return n, zeros, err
		}
	}
}

// apply replays one record's payload; false for one it cannot read.
func (s *Store) apply(p []byte) bool {
	op, p := p[0], p[1:]
	switch op {
	case recDel:
		key := string(p)
		sh := s.shard(key)
		sh.mu.Lock()
		delete(sh.items, key)
		sh.mu.Unlock()
	case recFlush:
		at, n := binary.Varint(p)
		if n <= 0 {
			return false
		}
		for i := range s.shards {
			sh := &s.shards[i]
			sh.mu.Lock()
			s.flushShard(sh, at)
			sh.mu.Unlock()
		}
	case recPut:
		key, it, ok := decodePut(p)
		if !ok {
			return false
		}
		sh := s.shard(key)
		sh.mu.Lock()
		sh.items[key] = it
		sh.mu.Unlock()
		if it.cas > s.cas.Load() {
			s.cas.Store(it.cas)
		}
	default:
		return false
	}
	return true
}

func decodePut(p []byte) (string, item, bool) {
	klen, n := binary.Uvarint(p)
	if n <= 0 || uint64(len(p)-n) < klen {
		return "", item{}, false
	}
	p = p[n:]
	key := string(p[:klen])
	p = p[klen:]
	if len(p) < 4 {
		return "", item{}, false
	}
	var it item
	it.flags = binary.BigEndian.Uint32(p)
	p = p[4:]
	if it.expires, n = binary.Varint(p); n <= 0 {
		return "", item{}, false
	}
	p = p[n:]
	if it.cas, n = binary.Uvarint(p); n <= 0 {
		return "", item{}, false
	}
	it.value = append([]byte(nil), p[n:]...)
	return key, it, true
}

// compact rewrites the journal at path with one record per live key of s
// (see replaceFile).
func compact(path string, s *Store) error {
	return replaceFile(path, func(w io.Writer) error {
		var buf []byte
		now := s.now().UnixNano()
		for i := range s.shards {
			sh := &s.shards[i]
			sh.mu.Lock()
			for k, it := range sh.items {
				if it.expires != 0 && it.expires <= now {
					continue
				}
				buf = appendPut(buf, k, it)
			}
			sh.mu.Unlock()
			if _, err := w.Write(buf); err != nil {
				return err
			}
			buf = buf[:0]
		}
		return nil
	})
}
