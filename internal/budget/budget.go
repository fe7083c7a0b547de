// Package budget shares one byte budget among many connections, so that
// the memory a server holds for requests and answers has a bound however
// many peers send large frames at once.
//
// A server makes one Budget and an Account per connection. Before it
// allocates memory for a frame, a connection calls Account.Acquire, which
// grants at once while the budget has room and otherwise waits; memory that
// is already allocated (an answer a handler returned) is recorded with
// Charge, which never waits. Release gives bytes back and wakes waiters.
// Pools that keep memory for reuse Park it: parked bytes count against the
// budget until the pool frees them, which it must do when asked (see
// New's reclaim).
//
// Fairness: waiters are served in order of the bytes their account holds,
// least first (the largest connections give way first), and in arrival
// order among equals; a later request is granted ahead of waiters only if
// it would come first among them. Each account may hold floor bytes even
// when the budget is exhausted, so that small requests always progress.
package budget

import (
	"context"
	"errors"
	"sort"
	"sync"
	"time"
)

// ErrExhausted is returned by Acquire when the bytes asked for could not
// be granted within the wait allowed, or can never be (more than the whole
// budget).
var ErrExhausted = errors.New("tcpez/budget: memory budget exhausted")

// Budget is a byte budget shared by accounts.
type Budget struct {
	limit, floor int64
	// reclaim frees at least n parked bytes, or all there are (calling
	// Unpark), without b's lock held. Nil when nothing is ever parked.
	reclaim func(n int64)

	mu      sync.Mutex
	used    int64 // held by accounts, plus parked
	parked  int64
	seq     uint64
	waiters []*waiter // sorted by (held when queued, seq)
}

type waiter struct {
	a     *Account
	n     int64
	key   int64
	seq   uint64
	ready chan struct{} // closed once granted
	done  bool          // granted (under Budget.mu)
}

// New returns a budget of limit bytes, of which each account may always
// hold floor. reclaim, if not nil, is called when an acquisition does not
// fit while bytes are parked, to free at least n of them.
func New(limit, floor int64, reclaim func(n int64)) *Budget {
	return &Budget{limit: limit, floor: floor, reclaim: reclaim}
}

// Limit is the budget's size in bytes.
func (b *Budget) Limit() int64 { return b.limit }

// Used is the number of bytes held by accounts or parked.
func (b *Budget) Used() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}

// Waiting is the number of acquisitions waiting for room.
func (b *Budget) Waiting() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.waiters)
}

// Account is one connection's share of a Budget. Its methods may be called
// from several goroutines.
type Account struct {
	b    *Budget
	held int64 // under b.mu
}

// NewAccount returns an account holding nothing.
func (b *Budget) NewAccount() *Account { return &Account{b: b} }

// Held is the number of bytes the account holds.
func (a *Account) Held() int64 {
	a.b.mu.Lock()
	defer a.b.mu.Unlock()
	return a.held
}

// TryAcquire takes n bytes for the account if they can be granted at
// once, freeing parked bytes if that is what it takes.
func (a *Account) TryAcquire(n int64) bool {
	b := a.b
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.tryLocked(a, n)
}

// Acquire takes n bytes for the account, waiting up to maxWait for room
// (no limit when maxWait <= 0) or until ctx ends. It returns ErrExhausted
// when the wait ran out or n can never fit, ctx's error when ctx ended.
func (a *Account) Acquire(ctx context.Context, n int64, maxWait time.Duration) error {
	b := a.b
	b.mu.Lock()
	if b.tryLocked(a, n) {
		b.mu.Unlock()
		return nil
	}
	if n > b.limit && a.held+n > b.floor {
		b.mu.Unlock()
		return ErrExhausted
	}
	w := b.enqueueLocked(a, n)
	b.mu.Unlock()
	return b.wait(ctx, w, maxWait)
}

// tryLocked grants n bytes to a if it may have them at once, asking the
// pools to free parked bytes when they are what is in the way. b.mu is
// released while they do.
func (b *Budget) tryLocked(a *Account, n int64) bool {
	for {
		if b.grantable(a, n) {
			b.grantLocked(a, n)
			return true
		}
		if b.parked == 0 || b.reclaim == nil || b.used+n <= b.limit {
			return false
		}
		need := b.used + n - b.limit
		b.mu.Unlock()
		b.reclaim(need)
		b.mu.Lock()
	}
}

// grantable says whether n bytes may be granted to a at once: within the
// floor, or within the limit and ahead of every waiter.
func (b *Budget) grantable(a *Account, n int64) bool {
	if a.held+n <= b.floor {
		return true
	}
	if b.used+n > b.limit {
		return false
	}
	return len(b.waiters) == 0 || a.held < b.waiters[0].key
}

func (b *Budget) grantLocked(a *Account, n int64) {
	a.held += n
	b.used += n
}

func (b *Budget) enqueueLocked(a *Account, n int64) *waiter {
	b.seq++
	w := &waiter{a: a, n: n, key: a.held, seq: b.seq, ready: make(chan struct{})}
	i := sort.Search(len(b.waiters), func(i int) bool {
		o := b.waiters[i]
		return o.key > w.key || (o.key == w.key && o.seq > w.seq)
	})
	b.waiters = append(b.waiters, nil)
	copy(b.waiters[i+1:], b.waiters[i:])
	b.waiters[i] = w
	return w
}

func (b *Budget) wait(ctx context.Context, w *waiter, maxWait time.Duration) error {
	var expired <-chan time.Time
	if maxWait > 0 {
		t := time.NewTimer(maxWait)
		defer t.Stop()
		expired = t.C
	}
	var err error
	select {
	case <-w.ready:
		return nil
	case <-expired:
		err = ErrExhausted
	case <-ctx.Done():
		err = ctx.Err()
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if w.done {
		return nil // granted while giving up: keep it
	}
	for i, o := range b.waiters {
		if o == w {
			b.waiters = append(b.waiters[:i], b.waiters[i+1:]...)
			break
		}
	}
	// The one given up may have been what held the others back.
	b.grantWaitersLocked()
	return err
}

// grantWaitersLocked grants waiters in order while the first one fits.
// It never skips the first: a large request would otherwise starve behind
// a stream of small ones.
func (b *Budget) grantWaitersLocked() {
	for len(b.waiters) > 0 {
		w := b.waiters[0]
		if w.a.held+w.n > b.floor && b.used+w.n > b.limit {
			return
		}
		b.grantLocked(w.a, w.n)
		w.done = true
		close(w.ready)
		b.waiters[0] = nil
		b.waiters = b.waiters[1:]
	}
}

// Charge records n bytes the account already holds, such as an answer a
// handler returned. It never waits, so it may take the budget past its
// limit; later acquisitions wait until the excess is released.
func (a *Account) Charge(n int64) {
	if n == 0 {
		return
	}
	a.b.mu.Lock()
	a.b.grantLocked(a, n)
	a.b.mu.Unlock()
}

// Release gives back n bytes the account holds.
func (a *Account) Release(n int64) {
	if n == 0 {
		return
	}
	b := a.b
	b.mu.Lock()
	a.held -= n
	b.used -= n
	b.grantWaitersLocked()
	b.mu.Unlock()
}

// Park moves n bytes from a to the budget's parked memory, which a pool
// keeps for reuse, if no one is waiting for room: it returns false (and
// releases the bytes) when someone is, so that the pool frees the memory
// instead. Parked bytes count against the budget until Unpark.
func (a *Account) Park(n int64) bool {
	b := a.b
	b.mu.Lock()
	defer b.mu.Unlock()
	a.held -= n
	if len(b.waiters) > 0 {
		b.used -= n
		b.grantWaitersLocked()
		return false
	}
	b.parked += n
	return true
}

// Unpark removes n parked bytes from the budget: the pool freed them, or
// handed them to an account that had acquired room for them.
func (b *Budget) Unpark(n int64) {
	b.mu.Lock()
	b.parked -= n
	b.used -= n
	b.grantWaitersLocked()
	b.mu.Unlock()
}
