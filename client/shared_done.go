package client

import (
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"
	"weak"
)

const (
	// maxWatched bounds the contexts watched at once, and so the
	// goroutines watching them and the slots a call looks through.
	maxWatched = 8
	// sampleEvery is how often, one wait in so many, a caller selecting on
	// a done channel offers it for a watcher (sharedDone.sample).
	sampleEvery = 64
	// watchIdle is how long a watcher stays with no call waiting on its
	// channel before it ends.
	watchIdle = time.Second
)

// sharedDone watches the done channels of contexts that many calls share,
// so that their callers wait for answers with a plain receive rather than
// a select on the channel (see request.wait): a goroutine watches the
// channel, and when the channel closes, it wakes every caller waiting on
// it (request.kick).
//
// A channel earns a watcher when two sampled waits, one wait in
// sampleEvery each, find it: a context made for one call never does,
// while one that most calls share does within a few hundred calls. A call
// registers nothing: its caller marks its own request (request.watch),
// and a watcher looks through every request the client has made when its
// channel closes, its calls go idle or the client closes, which are rare.
// A Future, whose request is not pooled, goes into one of the watcher's
// lists instead (doneWatch.futures).
type sharedDone struct {
	// slots are the watchers; the hot path only loads them.
	slots [maxWatched]atomic.Pointer[doneWatch]

	// Set by New, then read-only.
	spawn func(func()) bool // the client's: Close waits for watchers
	stop  <-chan struct{}   // closes when the client closes
	idle  time.Duration     // watchIdle, but in tests

	mu   sync.Mutex              // guards the rest, and the filling of slots
	seen <-chan struct{}         // the channel sampled last
	reqs []weak.Pointer[request] // every pooled request, as long as it lives
}

// doneWatch is the watcher of one done channel.
type doneWatch struct {
	done <-chan struct{}
	// used is set by calls that find the watcher, and cleared by it once
	// per watchIdle: a watcher finding it clear ends.
	used atomic.Bool
	// retired is set before the watcher looks through the requests a last
	// time: a call that sees it selects on the channel itself.
	retired atomic.Bool
	// futures are the Futures (Go) of the context, which are not pooled
	// requests: the watcher cancels them, or, ending with the channel
	// open, hands them to AfterFuncs of their own. Spread over lists so
	// that the callers of both cores seldom take one lock.
	futures [futureLists]futureList
}

// futureLists is how many lists a watcher spreads its futures over.
const futureLists = 8

// futureList is a list of futures linked through them, on a cache line of
// its own.
type futureList struct {
	mu   sync.Mutex
	head *Future
	_    [48]byte
}

// addFuture puts f in one of w's lists and returns it, or nil once w has
// retired: then nothing will look at the lists again.
func (w *doneWatch) addFuture(f *Future) *futureList {
	l := &w.futures[rand.Uint32N(futureLists)]
	l.mu.Lock()
	defer l.mu.Unlock()
	if w.retired.Load() {
		return nil
	}
	f.next, f.linked = l.head, true
	if l.head != nil {
		l.head.prev = f
	}
	l.head = f
	return l
}

// remove takes f out of l, if it is still there.
func (l *futureList) remove(f *Future) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !f.linked {
		return
	}
	if f.prev != nil {
		f.prev.next = f.next
	} else {
		l.head = f.next
	}
	if f.next != nil {
		f.next.prev = f.prev
	}
	f.prev, f.next, f.linked = nil, nil, false
}

// takeFutures empties w's lists, once w has retired.
func (w *doneWatch) takeFutures() []*Future {
	var out []*Future
	for i := range w.futures {
		l := &w.futures[i]
		l.mu.Lock()
		for f := l.head; f != nil; {
			next := f.next
			f.prev, f.next, f.linked = nil, nil, false
			out = append(out, f)
			f = next
		}
		l.head = nil
		l.mu.Unlock()
	}
	return out
}

// add registers a request the pool made, for watchers to find.
func (s *sharedDone) add(rq *request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.reqs) == cap(s.reqs) {
		// Requests the pool let go of leave; room doubles only when most
		// are alive, so that sweeping stays a fraction of the adding.
		s.reqs = slices.DeleteFunc(s.reqs, func(p weak.Pointer[request]) bool { return p.Value() == nil })
		if len(s.reqs) > cap(s.reqs)/2 {
			s.reqs = slices.Grow(s.reqs, len(s.reqs))
		}
	}
	s.reqs = append(s.reqs, weak.Make(rq))
}

// find returns the watcher of done, or nil; now and then it offers done
// for one.
func (s *sharedDone) find(done <-chan struct{}) *doneWatch {
	if w := s.lookup(done); w != nil {
		if !w.used.Load() {
			w.used.Store(true)
		}
		return w
	}
	if rand.Uint32N(sampleEvery) == 0 {
		s.sample(done)
	}
	return nil
}

// lookup returns the watcher of done, or nil.
func (s *sharedDone) lookup(done <-chan struct{}) *doneWatch {
	for i := range s.slots {
		if w := s.slots[i].Load(); w != nil && w.done == done {
			return w
		}
	}
	return nil
}

// sample starts a watcher for done when the sample before found it too.
func (s *sharedDone) sample(done <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.seen != done {
		s.seen = done
		return
	}
	s.seen = nil
	if s.lookup(done) != nil {
		return
	}
	free := -1
	for i := range s.slots {
		if s.slots[i].Load() == nil {
			free = i
			break
		}
	}
	if free < 0 {
		return
	}
	w := &doneWatch{done: done}
	s.slots[free].Store(w)
	if !s.spawn(func() { s.run(free, w) }) {
		s.slots[free].Store(nil)
	}
}

// run is the watcher in slot i.
func (s *sharedDone) run(i int, w *doneWatch) {
	t := time.NewTicker(s.idle)
	defer t.Stop()
	for over := false; !over; {
		select {
		case <-w.done:
			over = true
		case <-s.stop:
			over = true
		case <-t.C:
			over = !w.used.Swap(false)
		}
	}
	w.retired.Store(true)
	s.slots[i].CompareAndSwap(w, nil)
	s.kickAll(w)
	closed := false
	select {
	case <-w.done:
		closed = true
	default:
	}
	for _, f := range w.takeFutures() {
		if closed {
			f.cancel()
		} else {
			f.watchAlone()
		}
	}
}

// kickAll wakes the callers that wait with w: when its channel closed, to
// give up; else to select on the channel themselves.
func (s *sharedDone) kickAll(w *doneWatch) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.reqs {
		if rq := p.Value(); rq != nil && rq.watch.Load() == w {
			rq.kick()
		}
	}
}
