package client

import (
	"bytes"
	"context"
	"errors"
	"net"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tcpez/tcpez/frame"
)

// fakeConn is a net.Conn whose writes stop after a budget of bytes with
// errBroken, and whose reads block until Close.
type fakeConn struct {
	net.Conn // nil; only the methods below are used
	mu       sync.Mutex
	budget   int
	onWrite  func()
	written  []byte
	wrote    chan struct{} // if set, told after each write
	closed   chan struct{}
	once     sync.Once
}

var errBroken = errors.New("broken pipe")

func (f *fakeConn) Write(b []byte) (int, error) {
	if f.onWrite != nil {
		f.onWrite()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	n := min(len(b), f.budget)
	f.budget -= n
	f.written = append(f.written, b[:n]...)
	if f.wrote != nil {
		select {
		case f.wrote <- struct{}{}:
		default:
		}
	}
	if n < len(b) {
		return n, errBroken
	}
	return n, nil
}

func (f *fakeConn) Read([]byte) (int, error) {
	<-f.closed
	return 0, net.ErrClosed
}

func (f *fakeConn) Close() error {
	f.once.Do(func() { close(f.closed) })
	return nil
}

func (f *fakeConn) SetWriteDeadline(time.Time) error { return nil }

func testConn(nc net.Conn) *conn {
	c := &Client{cfg: Config{}.withDefaults()}
	return newConn(c, &endpoint{c: c, addr: "fake"}, nc)
}

func queue3(t *testing.T, cn *conn) []*request {
	t.Helper()
	var calls []*request
	for range 3 {
		rq := &request{done: make(chan struct{}, 1)}
		if !cn.tryAcquire() {
			t.Fatal("no slot")
		}
		if err := cn.enqueue(context.Background(), rq, []byte("aaaa")); err != nil {
			t.Fatal(err)
		}
		calls = append(calls, rq)
	}
	return calls
}

func outcome3(t *testing.T, calls []*request) []bool {
	t.Helper()
	unsent := make([]bool, len(calls))
	for i, rq := range calls {
		if !rq.wait(context.Background()) {
			t.Fatal("abandoned")
		}
		var ce *ConnError
		if !errors.As(rq.err, &ce) {
			t.Fatalf("call %d: %v, want a *ConnError", i, rq.err)
		}
		unsent[i] = rq.unsent
	}
	return unsent
}

// Calls whose bytes were never handed to a write are provably unsent, so
// they may be retried elsewhere.
func TestFailMarksBufferedCallsUnsent(t *testing.T) {
	cn := testConn(&fakeConn{budget: 1 << 20, closed: make(chan struct{})})
	cn.out.writing = true // someone else is writing: the calls only append
	calls := queue3(t, cn)
	cn.fail(errBroken, writeProgress{})
	for i, unsent := range outcome3(t, calls) {
		if !unsent {
			t.Errorf("call %d still in the write buffer marked as maybe sent", i)
		}
	}
}

// A write that fails part-way proves unsent only the calls whose frames
// start past the bytes it wrote; a call queued during the write was not in
// it at all.
func TestFailAfterPartialWrite(t *testing.T) {
	fc := &fakeConn{budget: 10, closed: make(chan struct{})} // frames are 8 bytes
	cn := testConn(fc)
	cn.out.writing = true
	calls := queue3(t, cn)
	fc.onWrite = func() {
		fc.onWrite = nil
		calls = append(calls, queue3(t, cn)[0]) // lands in wbuf while writing
	}
	cn.mu.Lock()
	cn.flushUnlock(callerWriter(context.Background()), nil)
	got := outcome3(t, calls[:4])
	want := []bool{false, false, true, true}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("call %d: unsent %v, want %v", i, got[i], want[i])
		}
	}
}

// A large payload, written from the caller's slice, goes out right after its header
// and the frames queued before it; a write that fails inside it leaves the
// call maybe sent and a call queued meanwhile unsent.
func TestLargePayloadWrittenInPlace(t *testing.T) {
	big := make([]byte, writevMin+10)
	for i := range big {
		big[i] = byte(i)
	}
	for _, cut := range []int{-1, 3*8 + 4 + 1000} {
		fc := &fakeConn{budget: 1 << 30, closed: make(chan struct{})}
		if cut > 0 {
			fc.budget = cut
		}
		cn := testConn(fc)
		cn.out.writing = true
		small := queue3(t, cn)
		cn.out.writing = false
		var later []*request
		fc.onWrite = func() {
			fc.onWrite = nil
			later = queue3(t, cn) // the large call is writing: they append
		}
		rq := &request{done: make(chan struct{}, 1)}
		if !cn.tryAcquire() {
			t.Fatal("no slot")
		}
		if err := cn.enqueue(context.Background(), rq, big); err != nil {
			t.Fatal(err)
		}
		want := bytes.Repeat([]byte{0, 0, 0, 4, 'a', 'a', 'a', 'a'}, 3)
		want = append(want, 0, 1, 0, 10)
		want = append(want, big...)
		if cut < 0 {
			if !bytes.Equal(fc.written[:len(want)], want) {
				t.Fatalf("written % x…, want % x…", fc.written[:16], want[:16])
			}
			continue
		}
		if !bytes.Equal(fc.written, want[:cut]) {
			t.Fatalf("wrote %d bytes, not the first %d of the frames", len(fc.written), cut)
		}
		got := outcome3(t, append(append(small, rq), later...))
		if want := []bool{false, false, false, false, true, true, true}; !slices.Equal(got, want) {
			t.Errorf("unsent %v, want %v (3 small, the large, 3 queued during the write)", got, want)
		}
	}
}

// A writer that stopped for a caller waiting to write a large payload
// leaves the rest of the buffer to it; if that caller gives up instead,
// the bytes left must still be written, by a background writer.
func TestLargeCallerGivingUpLeavesNoBytesBehind(t *testing.T) {
	fc := &fakeConn{budget: 1 << 30, closed: make(chan struct{}), wrote: make(chan struct{}, 1)}
	cn := testConn(fc)
	cn.out.writing = true // somebody is writing
	ctx, cancel := context.WithCancel(context.Background())
	gaveUp := make(chan error, 1)
	go func() {
		if !cn.tryAcquire() {
			gaveUp <- errors.New("no slot")
			return
		}
		gaveUp <- cn.enqueue(ctx, &request{done: make(chan struct{}, 1)}, make([]byte, writevMin))
	}()
	awaitTurns(cn, 1)
	// The writer stops for the waiting caller, a small frame left behind,
	// and the caller's context ends before it takes over.
	cn.mu.Lock()
	small := &request{done: make(chan struct{}, 1)}
	cn.q.push(small)
	cn.out.buf = frame.AppendFrame(cn.out.buf, []byte("left"))
	cancel()
	cn.out.stopWritingLocked(false)
	cn.mu.Unlock()
	if err := <-gaveUp; !errors.Is(err, context.Canceled) {
		t.Fatalf("large caller: %v, want context.Canceled", err)
	}
	select {
	case <-fc.wrote:
	case <-time.After(10 * time.Second): // a safety net, not a timing
		t.Fatal("the frame left behind was never written")
	}
	fc.mu.Lock()
	defer fc.mu.Unlock()
	if want := frame.AppendFrame(nil, []byte("left")); !bytes.Equal(fc.written, want) {
		t.Fatalf("written % x, want the frame left behind, % x", fc.written, want)
	}
}

// awaitTurns waits until n callers wait for the writer role of cn.
func awaitTurns(cn *conn, n int) {
	for waiting := 0; waiting < n; runtime.Gosched() {
		cn.mu.Lock()
		waiting = cn.out.turns.len()
		cn.mu.Unlock()
	}
}

// writingConn returns a connection over a fake whose writer role
// somebody holds, so that callers queue for it.
func writingConn() (*fakeConn, *conn) {
	fc := &fakeConn{budget: 1 << 30, closed: make(chan struct{})}
	cn := testConn(fc)
	cn.mu.Lock()
	cn.out.writing = true // somebody is writing
	cn.mu.Unlock()
	return fc, cn
}

// enqueueLarge sends payload on cn as a call would, in line for the
// writer role when it is taken.
func enqueueLarge(cn *conn, payload []byte) error {
	if !cn.tryAcquire() {
		return errors.New("no slot")
	}
	return cn.enqueue(context.Background(), &request{done: make(chan struct{}, 1)}, payload)
}

// Callers with large payloads get the writer role in the order they came
// for it: with the role free for all whenever a write ended, the batches
// of 256 callers on one connection went out in no particular order, and
// the slowest waited fifty times as long as the median.
func TestLargeCallersWriteInTurn(t *testing.T) {
	fc, cn := writingConn()
	const callers = 8
	errs := make(chan error, callers)
	for i := range callers {
		go func() { errs <- enqueueLarge(cn, bytes.Repeat([]byte{byte('a' + i)}, writevMin)) }()
		awaitTurns(cn, i+1) // the next comes once this one waits
	}
	// Meanwhile a small call joins the buffer; the writer then stops.
	cn.mu.Lock()
	cn.q.push(&request{done: make(chan struct{}, 1)})
	cn.out.buf = frame.AppendFrame(cn.out.buf, []byte("small"))
	cn.out.stopWritingLocked(false)
	cn.mu.Unlock()
	for range callers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	want := frame.AppendFrame(nil, []byte("small"))
	for i := range callers {
		want = frame.AppendFrame(want, bytes.Repeat([]byte{byte('a' + i)}, writevMin))
	}
	fc.mu.Lock()
	defer fc.mu.Unlock()
	if !bytes.Equal(fc.written, want) {
		var order []byte
		for b := fc.written[len("small")+2*frame.HeaderSize:]; len(b) >= frame.HeaderSize+writevMin; b = b[frame.HeaderSize+writevMin:] {
			order = append(order, b[frame.HeaderSize])
		}
		t.Fatalf("payloads written in the order %q, want abcdefgh, after the small frame", order)
	}
}

// TestRefusedHandOffWakesWaitingWriters: a writer that hands the rest of
// its write to the background writer while the client closes is refused a
// goroutine. The connection fails, and the callers waiting in line for the
// writer role learn of it: they used to wait for ever, after Close had
// returned.
func TestRefusedHandOffWakesWaitingWriters(t *testing.T) {
	_, cn := writingConn()
	errs := make(chan error, 1)
	go func() { errs <- enqueueLarge(cn, make([]byte, writevMin)) }()
	awaitTurns(cn, 1)
	cn.c.spawnMu.Lock()
	cn.c.spawnClosed = true // Close has begun
	cn.c.spawnMu.Unlock()
	cn.mu.Lock()
	cn.handOffUnlock(nil, 0, 0)
	select {
	case err := <-errs:
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("the caller waiting in line got %v, want ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the caller waiting in line for the writer role was never told that the connection failed")
	}
}

// TestOwnBatchReadStopsOnceCtxEnded: a caller reading its own batch answer
// whose context has ended reads no further answers, though they are all
// there to read: it passes the reading on and leaves the call abandoned,
// its buffer untouched. Before, it read answer after answer as long as
// they kept coming within readGrace, and returned with all of them.
func TestOwnBatchReadStopsOnceCtxEnded(t *testing.T) {
	nc, srv := tcpPair(t)
	const n = 8
	cn := testConn(nc)
	var payload []byte
	for i := range n {
		payload = frame.AppendFrame(payload, []byte{byte('a' + i)})
	}
	rq := &request{done: make(chan struct{}, 1), mode: modeBatchAppend, n: n, dst: make([]byte, 0, 64)}
	rq.framed = append(frame.AppendHeader(nil, frame.BatchHeader(n)), payload...)
	if !cn.tryAcquire() {
		t.Fatal("no slot")
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := cn.enqueue(ctx, rq, payload); err != nil {
		t.Fatal(err)
	}
	if rq.direct != cn {
		t.Fatal("the caller of an idle connection's first batch does not read its answer")
	}
	// The whole answer (an echo: the request's bytes) is in the client's
	// socket before the caller reads.
	if _, err := srv.Write(rq.framed); err != nil {
		t.Fatal(err)
	}
	cancel()
	if rq.await(ctx) {
		t.Fatalf("a caller whose context ended read its batch answer whole: %q", rq.ans)
	}
	if got := rq.state.Load(); got != stateAbandoned {
		t.Fatalf("request state %d after its caller left, want abandoned (%d)", got, stateAbandoned)
	}
	if spare := rq.dst[:cap(rq.dst)]; slices.ContainsFunc(spare, func(b byte) bool { return b != 0 }) {
		t.Fatalf("the caller's buffer was written after it gave up: %q", spare)
	}
}

// tcpPair returns the two ends of a loopback TCP connection, closed when
// the test ends.
func tcpPair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		nc, _ := ln.Accept()
		accepted <- nc
	}()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	if server = <-accepted; server == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { server.Close() })
	return client, server
}
