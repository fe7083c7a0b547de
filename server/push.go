package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync/atomic"

	"github.com/tcpez/tcpez/frame"
)

// DefaultPushBacklog is Config.PushBacklog's default: the bytes that may
// wait to be written to one connection before a notification to it is
// dropped.
const DefaultPushBacklog = 1 << 20

var (
	// ErrRemoteGone is the error of a notification or call to a client
	// whose connection has ended, and of the calls still unanswered when it
	// ends.
	ErrRemoteGone = errors.New("tcpez: the remote's connection has ended")
	// ErrPushDropped is the error of a notification or call that was not
	// sent because the connection had more than Config.PushBacklog bytes
	// waiting to be written: its client does not keep up.
	ErrPushDropped = errors.New("tcpez: dropped, the remote's backlog is full")
	// ErrRemote is matched by every *RemoteError.
	ErrRemote = errors.New("tcpez: remote error")
)

// RemoteError is the failure of a call to a client, as the client
// reported it: CodeHandler when its handler failed or panicked,
// CodeNoHandler when it has none, CodeCancelled or CodeDeadline.
type RemoteError struct {
	Code    frame.Code
	Message string
}

func (e *RemoteError) Error() string {
	return "tcpez: remote: " + e.Code.String() + ": " + e.Message
}

// Is makes a RemoteError match ErrRemote.
func (e *RemoteError) Is(target error) bool { return target == ErrRemote }

type remoteKey struct{}

// RemoteFromContext returns the client end of the connection a handler's
// request came on, when that connection negotiated version 2 of the
// multiplexed mode: through it the handler may call or notify the client
// (see Remote). ok is false for v1 connections and older mux clients.
func RemoteFromContext(ctx context.Context) (r *Remote, ok bool) {
	r, ok = ctx.Value(remoteKey{}).(*Remote)
	return r, ok
}

var remoteIDs atomic.Uint64

// Remote is the client end of a connection in the multiplexed mode,
// version 2: the server may call it (Call, Go) and notify it (Notify) on
// that connection, concurrently with the client's own requests. Get one
// in a handler with RemoteFromContext, or all of them with
// Server.Remotes; group them as the application likes (by Identity, by
// subscription), and keep them until Done.
//
// Nothing sent to a Remote waits for its client to read: what is sent is
// queued and written by a goroutine of its own, so a client that stops
// reading holds up nobody but itself. Once more than Config.PushBacklog
// bytes wait for it, notifications to it are dropped (ErrPushDropped,
// counted as StatErrPushDropped); if it reads nothing for WriteTimeout, its
// connection is closed.
type Remote struct {
	m  *muxConn
	id uint64
}

func newRemote(m *muxConn) *Remote {
	return &Remote{m: m, id: remoteIDs.Add(1)}
}

// ID is unique among the remotes of the process.
func (r *Remote) ID() uint64 { return r.id }

// Addr is the client's address.
func (r *Remote) Addr() net.Addr { return r.m.nc.RemoteAddr() }

// Identity is what Auth.Check gave the connection, if anything.
func (r *Remote) Identity() (string, bool) { return Identity(r.m.ctx) }

// Done is closed once the connection has ended; the Remote is then of no
// further use.
func (r *Remote) Done() <-chan struct{} { return r.m.quit }

// KeepOpen says whether IdleTimeout spares the connection: set it for a
// client that listens, and so may send nothing for a long time while it
// is pushed to (package pubsub sets it while a remote listens). A stalled
// or vanished client is still closed by WriteTimeout once something is
// pushed to it, and Shutdown still closes it.
func (r *Remote) KeepOpen(on bool) { r.m.keepOpen.Store(on) }

// Notify sends payload to the client, which is not answered. It returns
// once the notification is queued, never waiting for the client; the
// notifications of one Remote arrive in the order Notify queued them.
func (r *Remote) Notify(payload []byte) error {
	m := r.m
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.pushableLocked(); err != nil {
		return err
	}
	m.wbuf = frame.AppendMux(m.wbuf, frame.KindNotify, 0, payload)
	m.kickLocked()
	return nil
}

// Call calls the client's handler with req and returns its answer. When ctx
// ends first, the client is told (its handler's context ends too) and Call
// returns ctx's error. A failure the client reports is a *RemoteError.
func (r *Remote) Call(ctx context.Context, req []byte) ([]byte, error) {
	f := r.Go(ctx, req)
	<-f.done
	return f.resp, f.err
}

// Go starts a call to the client and returns at once; see Call.
func (r *Remote) Go(ctx context.Context, req []byte) *Future {
	f := &Future{done: make(chan struct{})}
	m := r.m
	m.mu.Lock()
	if err := m.pushableLocked(); err != nil {
		m.mu.Unlock()
		f.finish(nil, err)
		return f
	}
	f.id = m.newOutIDLocked()
	m.outCalls[f.id] = f
	m.wbuf = frame.AppendMux(m.wbuf, frame.KindCall, f.id, req)
	m.kickLocked()
	m.mu.Unlock()
	// A handler calling back on the reader's goroutine asks its ctx for
	// Done here, which passes the reading on (see callCtx): the answer
	// must be read by someone else.
	stop := context.AfterFunc(ctx, func() { m.cancelOut(f, ctx.Err()) })
	m.mu.Lock()
	if m.outCalls[f.id] == f {
		f.stop = stop // for whoever takes f out of the table
		stop = nil
	}
	m.mu.Unlock()
	if stop != nil {
		stop() // f is done already
	}
	return f
}

// Broadcast notifies every remote in rs with payload, never waiting for
// any of them, and says how many notifications were queued and how many
// were dropped (their remote's backlog was full, or it had gone).
func Broadcast(rs []*Remote, payload []byte) (sent, dropped int) {
	for _, r := range rs {
		if r.Notify(payload) == nil {
			sent++
		} else {
			dropped++
		}
	}
	return sent, dropped
}

// Remotes returns the connections of the server that may be called back:
// those in the multiplexed mode, version 2, at the time of the call.
func (s *Server) Remotes() []*Remote {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*Remote
	for c := range s.conns {
		if m := c.mux.Load(); m != nil && m.remote != nil {
			out = append(out, m.remote)
		}
	}
	return out
}

// Future is a call to a client under way; see Remote.Go.
type Future struct {
	id   uint32
	done chan struct{}
	stop func() bool // guarded by the connection's mu
	resp []byte
	err  error
}

// Done is closed once the call has its outcome.
func (f *Future) Done() <-chan struct{} { return f.done }

// Result waits for the call's outcome: the client's answer or an error.
func (f *Future) Result() ([]byte, error) {
	<-f.done
	return f.resp, f.err
}

// takeOutLocked takes the call id out of the table and releases what it holds;
// nil if it is not there. Called with the connection's mu held.
func (m *muxConn) takeOutLocked(id uint32) *Future {
	f := m.outCalls[id]
	delete(m.outCalls, id)
	if f == nil {
		return nil
	}
	if f.stop != nil {
		f.stop()
	}
	return f
}

// finish is called once, by whoever took f out of the connection's table.
func (f *Future) finish(resp []byte, err error) {
	f.resp, f.err = resp, err
	close(f.done)
}

// pushableLocked says whether traffic may be queued for the client now.
func (m *muxConn) pushableLocked() error {
	select {
	case <-m.quit:
		return ErrRemoteGone
	default:
	}
	if m.broken {
		return ErrRemoteGone
	}
	if len(m.wbuf) >= m.cfg.PushBacklog {
		m.srv.count(StatErrPushDropped)
		return ErrPushDropped
	}
	return nil
}

// kickLocked has what was queued written by a goroutine of its own, so
// that the pusher never waits for the client.
func (m *muxConn) kickLocked() {
	if m.writing || m.flushQueued {
		return // the writer at work, or on its way, writes it too
	}
	m.flushQueued = true
	go func() {
		m.mu.Lock()
		m.flushQueued = false
		m.flushLocked()
		m.mu.Unlock()
	}()
}

// newOutIDLocked picks an id for a call to the client: the server's own id
// space, so it may equal the id of a request of the client.
func (m *muxConn) newOutIDLocked() uint32 {
	if m.outCalls == nil {
		m.outCalls = make(map[uint32]*Future)
	}
	for {
		m.nextOut++
		if _, busy := m.outCalls[m.nextOut]; m.nextOut != 0 && !busy {
			return m.nextOut
		}
	}
}

// cancelOut gives up f, whose caller's ctx ended, and tells the client.
func (m *muxConn) cancelOut(f *Future, err error) {
	m.mu.Lock()
	if m.outCalls[f.id] != f {
		m.mu.Unlock()
		return // answered meanwhile
	}
	m.takeOutLocked(f.id)
	m.outCalls[f.id] = nil // given up; its answer is still to come
	why := frame.CodeCancelled
	if errors.Is(err, context.DeadlineExceeded) {
		why = frame.CodeDeadline
	}
	if !m.broken {
		m.wbuf = frame.AppendMuxHeader(m.wbuf, frame.KindCancel, f.id, 2)
		m.wbuf = append(m.wbuf, byte(why>>8), byte(why))
		m.kickLocked()
	}
	m.mu.Unlock()
	f.finish(nil, err)
}

// remoteAnswer reads the client's answer or error of n bytes to a call of
// the server. One for a call given up meanwhile is dropped; one for an id
// the server is not waiting on breaks the protocol.
func (m *muxConn) remoteAnswer(h frame.MuxFrame, n int) error {
	m.mu.Lock()
	_, known := m.outCalls[h.ID]
	m.mu.Unlock()
	if !known {
		return m.protocolError(fmt.Errorf("%w: %v for id %d, which the server did not call", frame.ErrMuxMalformed, h.Kind, h.ID))
	}
	body, err := m.r.ReadPayload(nil, n)
	if err != nil {
		return m.readError(frame.Truncated(err), false)
	}
	m.mu.Lock()
	f := m.takeOutLocked(h.ID)
	m.mu.Unlock()
	if f == nil {
		return nil // given up
	}
	if h.Kind == frame.KindAnswer {
		f.finish(body, nil)
		return nil
	}
	code, msg := frame.MuxFrame{Body: body}.ErrorCode()
	f.finish(nil, &RemoteError{Code: code, Message: msg})
	return nil
}

// failOutLocked ends the calls to the client still unanswered, for a
// connection that ends.
func (m *muxConn) failOutLocked() {
	for id := range m.outCalls {
		if f := m.takeOutLocked(id); f != nil {
			f.finish(nil, ErrRemoteGone)
		}
	}
}
