package main

import (
	"context"
	"math"
	"strconv"
)

// The memcached operations of the store, for the memcached listener
// (memcache.go). Expiry times are Unix nanoseconds, 0 for never; the
// listener turns memcached's exptime into them.

// Item is a key's value as memcached's get and gets return it.
type Item struct {
	Value []byte
	Flags uint32
	CAS   uint64
}

// GetItem returns a copy of the item at key, or ok false if it is
// missing or expired.
func (s *Store) GetItem(key string) (Item, bool) {
	var it Item
	ok := s.ViewItem(key, func(v Item) {
		it = v
		it.Value = append([]byte(nil), v.Value...)
	})
	return it, ok
}

// ViewItem calls view with the item at key, under the lock of its shard,
// and reports whether there was one: missing or expired, view is not
// called. view must not keep the item's Value, which a later write may
// overwrite in place, nor call the store. The memcached listener copies
// values into its answers this way, so that they never leave the store
// and writes may reuse their memory.
func (s *Store) ViewItem(key string, view func(Item)) bool {
	sh := s.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	it, ok := s.liveNow(sh, key)
	if ok {
		view(Item{Value: it.value, Flags: it.flags, CAS: it.cas})
	}
	return ok
}

// StoreMode is memcached's storage command.
type StoreMode int

// The storage commands.
const (
	ModeSet StoreMode = iota
	ModeAdd
	ModeReplace
	ModeAppend
	ModePrepend
	ModeCAS
)

// StoreResult is the outcome of a storage command, as memcached answers it.
type StoreResult int

// Storage outcomes.
const (
	Stored    StoreResult = iota // STORED
	NotStored                    // NOT_STORED: add of a key held, replace/append/prepend of a missing one
	Exists                       // EXISTS: cas of a key changed since
	NotFound                     // NOT_FOUND: cas of a missing key
)

// StoreItem runs a storage command with a copy of value. For
// append and prepend, flags and expires are ignored, as memcached does,
// and a result that memcached could not hold (itemFits) is NotStored;
// for cas, casID must match the item's. An expiry in the past stores
// nothing, yet is Stored, as memcached has it.
func (s *Store) StoreItem(mode StoreMode, key string, value []byte, flags uint32, expires int64, casID uint64) StoreResult {
	sh := s.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	old, held := s.liveNow(sh, key)
	switch {
	case mode == ModeAdd && held,
		(mode == ModeReplace || mode == ModeAppend || mode == ModePrepend) && !held:
		return NotStored
	case mode == ModeCAS && !held:
		return NotFound
	case mode == ModeCAS && old.cas != casID:
		return Exists
	case (mode == ModeAppend || mode == ModePrepend) && !itemFits(len(key), old.flags, len(old.value)+len(value)):
		return NotStored
	}
	it := item{value: reuse(old, held, len(value)), flags: flags, expires: expires, owned: true}
	switch mode {
	case ModeAppend:
		it = old
		it.value = append(append(make([]byte, 0, len(old.value)+len(value)), old.value...), value...)
	case ModePrepend:
		it = old
		it.value = append(append(make([]byte, 0, len(old.value)+len(value)), value...), old.value...)
	default:
		it.value = append(it.value, value...)
	}
	it.owned = true
	if it.expires != 0 && it.expires <= s.now().UnixNano() {
		if held {
			s.del(sh, key)
		}
		return Stored
	}
	s.put(sh, key, it)
	return Stored
}

// itemFits reports whether memcached (1.6, default settings) holds a value
// of n bytes at key with flags: its item of maxItemSize bytes holds a
// header of 56 bytes, the key and a NUL, the flags unless they are 0,
// and the value with its CRLF. kvcache takes the same values, so that
// "too large" means the same on both.
func itemFits(keyLen int, flags uint32, n int) bool {
	size := 56 + keyLen + 1 + n + 2
	if flags != 0 {
		size += 4
	}
	return size <= maxItemSize
}

// reuse returns the memory of old's value, emptied, for a new value of n
// bytes if it is the store's own and fits without wasting more than
// half of it; else nil. A set of a key then costs no allocation, no
// garbage to collect, and copies into memory the cache has used before:
// the memcached listener's set of 4 KiB values took 8.7 µs of server CPU
// per request with a fresh copy, 7.0 µs reusing it (bench/memcache's
// load, medians of 3).
func reuse(old item, held bool, n int) []byte {
	if !held || !old.owned || cap(old.value) < n || cap(old.value) > 2*n+64 {
		return nil
	}
	return old.value[:0]
}

// IncrResult is the outcome of IncrItem.
type IncrResult int

// Outcomes of incr and decr.
const (
	Incremented IncrResult = iota
	IncrNotFound
	NotANumber
)

// IncrItem adds delta to, or with decr subtracts it from, the decimal
// unsigned 64-bit number at key, as memcached's incr and decr: the value
// is read as strtoull reads it (" 12", "+12", "12 " and "007" are
// numbers), incr wraps around at 2^64, decr stops at 0, and a result no
// longer than the value is padded with spaces to the value's length, a
// longer one replaces it.
func (s *Store) IncrItem(key string, delta uint64, decr bool) (uint64, IncrResult) {
	sh := s.shard(key)
	now := s.now().UnixNano()
	sh.mu.Lock()
	defer sh.mu.Unlock()
	it, ok := s.live(sh, key, now)
	if !ok {
		return 0, IncrNotFound
	}
	n, ok := strtoull(it.value)
	if !ok {
		return 0, NotANumber
	}
	switch {
	case !decr:
		n += delta // wraps, as memcached's does
	case delta > n:
		n = 0
	default:
		n -= delta
	}
	it.value = incrValue(it.value, n)
	s.put(sh, key, it)
	return n, Incremented
}

// incrValue is the value incr and decr leave: n in decimal, padded with
// spaces to the length of the old value if it fits, as memcached writes
// it in place.
func incrValue(old []byte, n uint64) []byte {
	v := strconv.AppendUint(make([]byte, 0, max(len(old), 20)), n, 10)
	for len(v) < len(old) {
		v = append(v, ' ')
	}
	return v
}

// Touch gives key a new expiry and reports whether it held a live value.
// The cas value stays, as memcached's touch and gat keep it. view, if not
// nil, is called first with the item, under the same rules as ViewItem's:
// gat answers the value even when its new expiry is in the past.
func (s *Store) Touch(key string, expires int64, view func(Item)) bool {
	sh := s.shard(key)
	now := s.now().UnixNano()
	sh.mu.Lock()
	defer sh.mu.Unlock()
	it, ok := s.live(sh, key, now)
	if !ok {
		return false
	}
	if view != nil {
		view(Item{Value: it.value, Flags: it.flags, CAS: it.cas})
	}
	if expires != 0 && expires <= now {
		s.del(sh, key)
		return true
	}
	it.expires = expires
	s.write(sh, key, it)
	return true
}

// FlushAll is memcached's flush_all [delay]: at the time at (Unix
// nanoseconds), every item last written before it is dropped, also those
// written after the call. A deadline now or past drops every item at
// once; a later one is kept, replacing any pending, and acted on by the
// first operation after it (passFlush). A pending deadline is not
// journalled: a restart before it forgets it.
func (s *Store) FlushAll(at int64) {
	s.flushMu.Lock()
	defer s.flushMu.Unlock()
	if at > s.now().UnixNano() {
		s.flushAt.Store(at)
		return
	}
	s.flushAt.Store(0)
	s.flushNow(at)
}

// passFlush drops every item held once a pending flush_all deadline has
// passed. Each operation calls it first, so every item held then was
// written before the deadline, and one written after it survives, as in
// memcached.
func (s *Store) passFlush() {
	at := s.flushAt.Load()
	if at == 0 || s.now().UnixNano() < at {
		return
	}
	s.flushMu.Lock()
	defer s.flushMu.Unlock()
	if s.flushAt.Load() != at {
		return // another operation did it, or a flush_all replaced it
	}
	s.flushAt.Store(0)
	s.flushNow(at)
}

// flushNow makes every key held now expire at the time at, now or past.
//
// Every shard is locked at once, so that no write lands between the
// flush of its shard and the flush's record in the journal: replayed, the
// record would expire it.
func (s *Store) flushNow(at int64) {
	for i := range s.shards {
		s.shards[i].mu.Lock()
	}
	for i := range s.shards {
		s.flushShard(&s.shards[i], at)
	}
	if s.journal != nil {
		s.journal.flush(at)
	}
	for i := range s.shards {
		s.shards[i].mu.Unlock()
	}
}

func (s *Store) flushShard(sh *shard, at int64) {
	for k, it := range sh.items {
		if it.expires == 0 || it.expires > at {
			it.expires = at
			sh.items[k] = it
		}
	}
}

// Durable waits until the writes made so far are on disk, when the
// journal syncs before acknowledging (JournalConfig.SyncEvery 0); else it
// returns at once.
func (s *Store) Durable(ctx context.Context) error {
	if s.journal == nil {
		return nil
	}
	return s.journal.durable(ctx)
}

// maxExpiry keeps expiry arithmetic away from overflow.
const maxExpiry = math.MaxInt64 / 2
