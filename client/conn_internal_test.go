package client

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"
)

// fakeConn is a net.Conn whose writes stop after a budget of bytes with
// errBroken, and whose reads block until Close.
type fakeConn struct {
	net.Conn // nil; only the methods below are used
	mu       sync.Mutex
	budget   int
	onWrite  func()
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
	if len(b) <= f.budget {
		f.budget -= len(b)
		return len(b), nil
	}
	n := f.budget
	f.budget = 0
	return n, errBroken
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

func queue3(t *testing.T, cn *conn) []*call {
	t.Helper()
	var calls []*call
	for range 3 {
		cl := &call{done: make(chan struct{}, 1)}
		if !cn.tryAcquire() {
			t.Fatal("no slot")
		}
		if err := cn.enqueue(context.Background(), cl, []byte("aaaa")); err != nil {
			t.Fatal(err)
		}
		calls = append(calls, cl)
	}
	return calls
}

func outcome3(t *testing.T, calls []*call) []bool {
	t.Helper()
	unsent := make([]bool, len(calls))
	for i, cl := range calls {
		if !cl.wait(context.Background()) {
			t.Fatal("abandoned")
		}
		var ce *ConnError
		if !errors.As(cl.err, &ce) {
			t.Fatalf("call %d: %v, want a *ConnError", i, cl.err)
		}
		unsent[i] = cl.unsent
	}
	return unsent
}

// Calls whose bytes were never handed to a write are provably unsent, so
// they may be retried elsewhere.
func TestFailMarksBufferedCallsUnsent(t *testing.T) {
	cn := testConn(&fakeConn{budget: 1 << 20, closed: make(chan struct{})})
	cn.writing = true // someone else is writing: the calls only append
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
	cn.writing = true
	calls := queue3(t, cn)
	fc.onWrite = func() {
		fc.onWrite = nil
		calls = append(calls, queue3(t, cn)[0]) // lands in wbuf while writing
	}
	cn.mu.Lock()
	cn.flush(context.Background())
	got := outcome3(t, calls[:4])
	want := []bool{false, false, true, true}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("call %d: unsent %v, want %v", i, got[i], want[i])
		}
	}
}
