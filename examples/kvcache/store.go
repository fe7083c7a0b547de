package main

import (
	"context"
	"hash/maphash"
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/tcpez/tcpez/examples/kvcache/kvcachepb"
	"github.com/tcpez/tcpez/protoserver"
)

const (
	numShards = 64
	// DefaultRetain is how many messages a channel keeps by default.
	DefaultRetain = 1000
)

// StoreConfig configures NewStore. The zero value is usable.
type StoreConfig struct {
	// Retain is how many of its last messages a channel keeps.
	// Default DefaultRetain.
	Retain int
	// SweepEvery is how often a goroutine removes the expired keys; keys
	// are also expired lazily, when they are read or written. Zero: no
	// sweeping goroutine (Sweep can still be called).
	SweepEvery time.Duration
	// Now is the clock of the TTLs. Default time.Now; tests pass a fake.
	Now func() time.Time
}

// Store is the data of one cache server: keys and channels spread over
// shards, each under a mutex of its own, so that calls on different keys
// seldom wait for each other.
//
// Values are kept as given and returned as kept, never copied: callers must
// not modify a value after Set nor one that Get returned.
type Store struct {
	shards [numShards]shard
	seed   maphash.Seed
	retain int
	now    func() time.Time

	cas     atomic.Uint64 // the last cas value given out
	journal *Journal      // when set, every write of a key is logged

	// flushAt is the deadline of a flush_all with a delay, 0 for none:
	// once it passes, the first operation drops every item held (see
	// passFlush). flushMu makes the others wait for that.
	flushAt atomic.Int64
	flushMu sync.Mutex

	closing   chan struct{} // closed by Close
	closeOnce sync.Once
	sweeper   sync.WaitGroup
	waiting   atomic.Int64 // Listens waiting for a Publish
}

// shard is a shardState with its cache lines to itself. Unpadded, two or
// three shards shared a line, and connections on different CPUs locking
// neighbouring shards moved it between them on every request
// (BenchmarkMemcacheHandlerParallel).
type shard struct {
	shardState
	_ [shardSize - unsafe.Sizeof(shardState{})]byte
}

type shardState struct {
	mu    sync.Mutex
	items map[string]item
	chans map[string]*channel
}

// shardSize is two cache lines: CPUs fetch lines in adjacent pairs.
const shardSize = 128

type item struct {
	value   []byte
	expires int64  // Unix nanoseconds; 0: never
	flags   uint32 // memcached's client flags, kept for its clients
	cas     uint64 // changes on every write: memcached's gets and cas
	// owned: value is a buffer the store made and never handed out, so
	// that only code holding the shard's lock reads it, and a memcached
	// write of the key may overwrite it in place (see StoreItem).
	owned bool
}

// share marks the item at key, whose value is about to leave the store,
// as no longer the store's alone. sh.mu must be held.
func (sh *shard) share(key string, it item) {
	if it.owned {
		it.owned = false
		sh.items[key] = it
	}
}

// channel is a channel's retained messages, a ring of at most Store.retain.
type channel struct {
	last uint64 // the seq of the last message published; 0: none
	msgs []*kvcachepb.Message
	head int           // index in msgs of the oldest message once msgs is full
	wake chan struct{} // closed on the next Publish; nil when nobody waits
}

// NewStore returns an empty store, and starts its sweeping goroutine if
// cfg.SweepEvery asks for one: Close stops it.
func NewStore(cfg StoreConfig) *Store {
	s := &Store{
		seed:    maphash.MakeSeed(),
		retain:  cfg.Retain,
		now:     cfg.Now,
		closing: make(chan struct{}),
	}
	if s.retain <= 0 {
		s.retain = DefaultRetain
	}
	if s.now == nil {
		s.now = time.Now
	}
	for i := range s.shards {
		s.shards[i].items = make(map[string]item)
		s.shards[i].chans = make(map[string]*channel)
	}
	if cfg.SweepEvery > 0 {
		s.sweeper.Add(1)
		go s.sweepLoop(cfg.SweepEvery)
	}
	return s
}

// Close stops the sweeping goroutine and waits for it, and makes every
// Listen, waiting or to come, answer at once with what it has: call it
// before shutting the server down, so that long polls do not hold the
// shutdown up. The store stays usable otherwise.
func (s *Store) Close() {
	s.closeOnce.Do(func() { close(s.closing) })
	s.sweeper.Wait()
}

// shard returns the shard of key, after a pending flush_all's deadline
// has been acted on.
func (s *Store) shard(key string) *shard {
	s.passFlush()
	return &s.shards[maphash.String(s.seed, key)%numShards]
}

func (s *Store) expiry(ttl time.Duration) int64 {
	if ttl <= 0 {
		return 0
	}
	return s.now().Add(ttl).UnixNano()
}

// live returns the item at key if it has not expired, and removes it if it
// has. sh.mu must be held.
func (s *Store) live(sh *shard, key string, now int64) (item, bool) {
	it, ok := sh.items[key]
	if ok && it.expires != 0 && it.expires <= now {
		delete(sh.items, key)
		return item{}, false
	}
	return it, ok
}

// liveNow is live reading the clock only for an item that expires: most
// never do, and a memcached get or set of one then reads no clock, a
// tenth of what the store costs it. sh.mu must be held.
func (s *Store) liveNow(sh *shard, key string) (item, bool) {
	it, ok := sh.items[key]
	if ok && it.expires != 0 {
		return s.live(sh, key, s.now().UnixNano())
	}
	return it, ok
}

// Get returns the value of key and its time to live (0 if it does not
// expire), or ok false if the key is missing or expired.
func (s *Store) Get(key string) (value []byte, ttl time.Duration, ok bool) {
	sh := s.shard(key)
	now := s.now().UnixNano()
	sh.mu.Lock()
	defer sh.mu.Unlock()
	it, ok := s.live(sh, key, now)
	if !ok {
		return nil, 0, false
	}
	if it.expires != 0 {
		ttl = time.Duration(it.expires - now)
	}
	sh.share(key, it)
	return it.value, ttl, true
}

// Set sets the value of key, to expire after ttl (never if ttl is 0), and
// reports whether it replaced a live value.
func (s *Store) Set(key string, value []byte, ttl time.Duration) (replaced bool) {
	sh := s.shard(key)
	now := s.now()
	sh.mu.Lock()
	defer sh.mu.Unlock()
	_, replaced = s.live(sh, key, now.UnixNano())
	s.put(sh, key, item{value: value, expires: s.expiry(ttl)})
	return replaced
}

// Delete removes key and reports whether it held a live value.
func (s *Store) Delete(key string) (existed bool) {
	sh := s.shard(key)
	now := s.now().UnixNano()
	sh.mu.Lock()
	defer sh.mu.Unlock()
	_, existed = s.live(sh, key, now)
	if existed {
		s.del(sh, key)
	}
	return existed
}

// Incr adds delta to the decimal counter at key and returns the new value.
// A missing key starts at 0 and gets ttl (0: no expiry); an existing key
// keeps its expiry. Errors are *protoserver.Status: FailedPrecondition for
// a value that is not a decimal int64, OutOfRange for an overflow.
func (s *Store) Incr(key string, delta int64, ttl time.Duration) (int64, error) {
	sh := s.shard(key)
	now := s.now().UnixNano()
	sh.mu.Lock()
	defer sh.mu.Unlock()
	it, ok := s.live(sh, key, now)
	var n int64
	if ok {
		var err error
		if n, err = strconv.ParseInt(string(it.value), 10, 64); err != nil {
			return 0, protoserver.Errorf(protoserver.FailedPrecondition, "the value of %q is not a decimal integer", key)
		}
	} else {
		it.expires = s.expiry(ttl)
	}
	if (delta > 0 && n > math.MaxInt64-delta) || (delta < 0 && n < math.MinInt64-delta) {
		return 0, protoserver.Errorf(protoserver.OutOfRange, "%d%+d overflows the counter %q", n, delta, key)
	}
	n += delta
	it.value = strconv.AppendInt(nil, n, 10)
	s.put(sh, key, it)
	return n, nil
}

// put stores it at key with a new cas value, and logs it. sh.mu must be
// held, so that the journal has a key's writes in the order the store
// had them.
func (s *Store) put(sh *shard, key string, it item) {
	it.cas = s.cas.Add(1)
	s.write(sh, key, it)
}

// write stores it at key with its cas value, which a touch keeps, and
// logs it. sh.mu must be held.
func (s *Store) write(sh *shard, key string, it item) {
	sh.items[key] = it
	if s.journal != nil {
		s.journal.put(key, it)
	}
}

// del removes key, and logs it. sh.mu must be held.
func (s *Store) del(sh *shard, key string) {
	delete(sh.items, key)
	if s.journal != nil {
		s.journal.del(key)
	}
}

// Sweep removes every expired key and returns how many it removed.
func (s *Store) Sweep() int {
	s.passFlush()
	now := s.now().UnixNano()
	removed := 0
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		for k, it := range sh.items {
			if it.expires != 0 && it.expires <= now {
				delete(sh.items, k)
				removed++
			}
		}
		sh.mu.Unlock()
	}
	return removed
}

func (s *Store) sweepLoop(every time.Duration) {
	defer s.sweeper.Done()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			s.Sweep()
		case <-s.closing:
			return
		}
	}
}

// Len returns the number of keys held, expired ones not yet removed
// included.
func (s *Store) Len() int {
	s.passFlush()
	n := 0
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		n += len(sh.items)
		sh.mu.Unlock()
	}
	return n
}

// Publish appends payload to channel name and returns its sequence number.
// Listeners waiting on the channel wake up.
func (s *Store) Publish(name string, payload []byte) uint64 {
	sh := s.shard(name)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	ch := sh.chans[name]
	if ch == nil {
		ch = &channel{}
		sh.chans[name] = ch
	}
	ch.last++
	s.push(ch, &kvcachepb.Message{Seq: ch.last, Payload: payload})
	if ch.wake != nil {
		close(ch.wake)
		ch.wake = nil
	}
	return ch.last
}

// push adds m to ch's ring, dropping the oldest message when it is full.
func (s *Store) push(ch *channel, m *kvcachepb.Message) {
	if len(ch.msgs) < s.retain {
		ch.msgs = append(ch.msgs, m)
		return
	}
	ch.msgs[ch.head] = m
	ch.head = (ch.head + 1) % len(ch.msgs)
}

// first returns the seq of the oldest retained message, 0 if none.
func (ch *channel) first() uint64 {
	if ch == nil || len(ch.msgs) == 0 {
		return 0
	}
	return ch.last - uint64(len(ch.msgs)) + 1
}

// retained returns the retained messages, oldest first.
func (ch *channel) retained() []*kvcachepb.Message {
	return append(ch.msgs[ch.head:len(ch.msgs):len(ch.msgs)], ch.msgs[:ch.head]...)
}

// read answers a Listen of ch from cursor with at most max messages.
// ch may be nil: a channel nothing was published on.
func (ch *channel) read(cursor uint64, limit int) *kvcachepb.ListenResponse {
	resp := &kvcachepb.ListenResponse{Cursor: cursor}
	if ch == nil {
		return resp
	}
	resp.LastSeq, resp.FirstAvailable = ch.last, ch.first()
	if cursor >= ch.last {
		return resp
	}
	next := cursor + 1
	if resp.FirstAvailable == 0 || next < resp.FirstAvailable {
		// Messages after cursor were dropped: skip them, and say so.
		skipTo := ch.last + 1
		if resp.FirstAvailable != 0 {
			skipTo = resp.FirstAvailable
		}
		resp.Missed = skipTo - next
		resp.Cursor = skipTo - 1
		next = skipTo
	}
	for seq := next; seq <= ch.last && len(resp.Messages) < limit; seq++ {
		i := (ch.head + int(seq-resp.FirstAvailable)) % len(ch.msgs)
		resp.Messages = append(resp.Messages, ch.msgs[i])
		resp.Cursor = seq
	}
	return resp
}

// Listen returns up to limit messages of channel name after cursor. When
// there are none it waits for a Publish, for up to wait, for ctx to end or
// for Close, whichever comes first, and then answers with what there is.
// A cursor past the channel's last message fails with OutOfRange.
func (s *Store) Listen(ctx context.Context, name string, cursor uint64, limit int, wait time.Duration) (*kvcachepb.ListenResponse, error) {
	sh := s.shard(name)
	var timeout <-chan time.Time
	for {
		sh.mu.Lock()
		ch := sh.chans[name]
		var last uint64
		if ch != nil {
			last = ch.last
		}
		if cursor > last {
			sh.mu.Unlock()
			return nil, protoserver.Errorf(protoserver.OutOfRange, "cursor %d is past the last message of channel %q, %d: listen again from 0", cursor, name, last)
		}
		resp := ch.read(cursor, limit)
		if len(resp.Messages) > 0 || resp.Missed > 0 || wait <= 0 {
			sh.mu.Unlock()
			return resp, nil
		}
		if ch == nil {
			ch = &channel{}
			sh.chans[name] = ch
		}
		if ch.wake == nil {
			ch.wake = make(chan struct{})
		}
		wake := ch.wake
		sh.mu.Unlock()

		if timeout == nil {
			t := time.NewTimer(wait)
			defer t.Stop()
			timeout = t.C
		}
		s.waiting.Add(1)
		select {
		case <-wake:
		case <-timeout:
			wait = 0 // look once more, then answer
		case <-s.closing:
			wait = 0
		case <-ctx.Done():
			s.waiting.Add(-1)
			return nil, ctx.Err()
		}
		s.waiting.Add(-1)
	}
}

// Waiting returns the number of Listen calls waiting for a message.
func (s *Store) Waiting() int { return int(s.waiting.Load()) }
