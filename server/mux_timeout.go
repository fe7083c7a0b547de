package server

import (
	"context"
	"time"

	"github.com/tcpez/tcpez/frame"
	"github.com/tcpez/tcpez/span"
)

// limitCall bounds mc's handler by Config.HandlerTimeout, as v1 bounds
// its requests (see conn.expiry): when the timeout passes, the call is
// answered at once as failing with errHandlerTimeout, and its handler's
// context ends with context.DeadlineExceeded; what the handler returns
// later is dropped. The returned stop, called once the handler returned,
// makes sure no expiry acts on mc after that, since mc is reused.
//
// A timer rather than a derived context: deriving one from a callCtx
// would ask for its Done channel, which passes the reading on (see
// takeOver) for every call, however fast.
func (m *muxConn) limitCall(mc *muxCall, d time.Duration) (stop func()) {
	m.mu.Lock()
	mc.limit++
	gen := mc.limit
	m.mu.Unlock()
	t := time.AfterFunc(d, func() { m.expire(mc, gen) })
	return func() {
		if !t.Stop() {
			// Running or run: it acts only while mc.limit is gen.
			m.mu.Lock()
			mc.limit++
			m.mu.Unlock()
		}
	}
}

// expire answers mc, whose handler outlasted HandlerTimeout, unless the
// handler returned first (gen is no longer mc.limit) or mc was answered.
func (m *muxConn) expire(mc *muxCall, gen uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if mc.limit != gen || mc.answered || m.broken {
		return
	}
	mc.answered = true
	// The client may use the id again now: the call is answered.
	if m.calls[mc.id] == mc {
		delete(m.calls, mc.id)
	}
	if p, ok := m.encodeTimeout(); ok {
		m.appendAnswerLocked(mc.id, p)
	} else {
		m.wbuf = frame.AppendMuxError(m.wbuf, frame.KindError, mc.id, frame.CodeHandler, errHandlerTimeout.Error())
	}
	mc.ctx.cancel(context.DeadlineExceeded)
	m.flushLocked()
	m.srv.count(StatErrHandlerTimeout)
}

// encodeTimeout is EncodeError's answer to a timeout, given a span of its
// own, as v1 gives one: the handler may still be using the call's.
func (m *muxConn) encodeTimeout() ([]byte, bool) {
	if m.cfg.EncodeError == nil {
		return nil, false
	}
	return m.cfg.EncodeError(m.ctx, errHandlerTimeout, span.New())
}
