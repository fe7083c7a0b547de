package client

import (
	"bytes"
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/tcpez/tcpez/frame"
)

// stranded bounds how long a test waits for frames that must be written:
// far longer than leaveWait, so that reaching it means they never would be.
const stranded = 10 * time.Second

// loadedConn returns a connection over a fake, with the reading role the
// reader goroutine's (a fake's connection has no idle check) and enough
// calls in flight for a writer to leave frames.
func loadedConn(t *testing.T) (*fakeConn, *conn) {
	t.Helper()
	fc := &fakeConn{budget: 1 << 30, closed: make(chan struct{}), wrote: make(chan struct{}, 1)}
	cn := testConn(fc)
	t.Cleanup(func() { cn.fail(ErrClosed, writeProgress{}) })
	if cn.in.role != roleReader {
		t.Fatalf("role %v, want the reader goroutine's", cn.in.role)
	}
	for range leaveLoad {
		if !cn.tryAcquire() {
			t.Fatal("no slot")
		}
	}
	return fc, cn
}

// send queues a call of payload on cn.
func send(t *testing.T, cn *conn, payload string) {
	t.Helper()
	if !cn.tryAcquire() {
		t.Fatal("no slot")
	}
	if err := cn.enqueue(context.Background(), &request{done: make(chan struct{}, 1)}, []byte(payload)); err != nil {
		t.Fatal(err)
	}
}

// awaitWritten waits until fc has been written want, failing the test if
// it never is.
func awaitWritten(t *testing.T, fc *fakeConn, want []byte) {
	t.Helper()
	deadline := time.After(stranded)
	for {
		fc.mu.Lock()
		got := bytes.Clone(fc.written)
		fc.mu.Unlock()
		if bytes.Equal(got, want) {
			return
		}
		select {
		case <-fc.wrote:
		case <-deadline:
			t.Fatalf("written % x, want % x: frames stranded", got, want)
		}
	}
}

// frames is the wire form of payloads, each framed.
func frames(payloads ...string) []byte {
	var b []byte
	for _, p := range payloads {
		b = frame.AppendHeader(b, frame.Header(len(p)))
		b = append(b, p...)
	}
	return b
}

// leaveDuringWrite makes a caller write "first" while another appends
// "second" during that write, and returns once the writer has left
// "second" unwritten (a write of one small frame, under load, right after
// another), which it checks unless the reader waits: the timer may then
// have written it already.
func leaveDuringWrite(t *testing.T, fc *fakeConn, cn *conn) {
	t.Helper()
	waiting := cn.in.waiting.Load()
	once := true
	fc.onWrite = func() {
		if once {
			once = false
			send(t, cn, "second")
		}
	}
	send(t, cn, "first")
	fc.onWrite = nil
	cn.mu.Lock()
	defer cn.mu.Unlock()
	if waiting {
		if !cn.out.armed && len(cn.out.buf) > 0 {
			t.Fatal("a frame left while the reader waits, with no timer armed")
		}
		return
	}
	if !cn.out.left.Load() || cn.out.writing || !bytes.Equal(cn.out.buf, frames("second")) {
		t.Fatalf("left %v, writing %v, buffer % x: want the second frame left", cn.out.left.Load(), cn.out.writing, cn.out.buf)
	}
}

// TestLeftFramesTakenByNextCaller: the frame a writer left goes out with
// the next caller's, ahead of it, in one write.
func TestLeftFramesTakenByNextCaller(t *testing.T) {
	fc, cn := loadedConn(t)
	leaveDuringWrite(t, fc, cn)
	send(t, cn, "third")
	awaitWritten(t, fc, frames("first", "second", "third"))
}

// TestLeftFramesWrittenByReader: the reader writes a left frame before it
// reads the socket, where it could wait for answers that do not come.
func TestLeftFramesWrittenByReader(t *testing.T) {
	fc, cn := loadedConn(t)
	leaveDuringWrite(t, fc, cn)
	cn.mu.Lock()
	armed := cn.out.armed
	cn.mu.Unlock()
	if armed {
		t.Fatal("timer armed while the reader was not reading")
	}
	go func() { _, _ = cn.in.r.ReadFrame(nil) }() // blocks in the fake's Read
	awaitWritten(t, fc, frames("first", "second"))
}

// TestLeftFramesWrittenInTime: a frame left while the reader waits in the
// socket, for answers that may be slow, is written by the timer.
func TestLeftFramesWrittenInTime(t *testing.T) {
	fc, cn := loadedConn(t)
	go func() { _, _ = cn.in.r.ReadFrame(nil) }()
	for !cn.in.waiting.Load() {
		runtime.Gosched()
	}
	leaveDuringWrite(t, fc, cn)
	awaitWritten(t, fc, frames("first", "second"))
}

// TestNothingLeftWhenItCannotWait: a writer writes on when too few calls
// are in flight for another caller to come soon, when what is left is
// more than a little, or when no reader goroutine reads.
func TestNothingLeftWhenItCannotWait(t *testing.T) {
	for _, tc := range []struct {
		name string
		prep func(cn *conn)
		size int
	}{
		{"few calls", func(cn *conn) { cn.slots.held.Add(-1) }, 8},
		{"large", func(*conn) {}, leaveMax + 1},
		{"callers read", func(cn *conn) { cn.in.role = roleFree }, 8},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, cn := loadedConn(t)
			cn.mu.Lock()
			defer cn.mu.Unlock()
			tc.prep(cn)
			cn.out.buf = make([]byte, tc.size)
			if cn.leaveLocked() || cn.out.left.Load() {
				t.Error("frames left")
			}
			cn.out.buf = make([]byte, min(tc.size, leaveMax))
			if tc.size > leaveMax && !cn.leaveLocked() {
				t.Error("no frame left at leaveMax")
			}
		})
	}
}
