package server

import (
	"errors"
	"io"
	"net"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/tcpez/tcpez/frame"
	"github.com/tcpez/tcpez/stats"
)

// statsReader counts the bytes a connection receives, once per read
// syscall rather than once per request.
type statsReader struct {
	r   io.Reader
	rec stats.Recorder
}

func (s statsReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if n > 0 {
		s.rec.Count(StatBytesIn, int64(n))
	}
	return n, err
}

// statsWriter counts the bytes a connection sends, once per write syscall.
type statsWriter struct {
	w   io.Writer
	rec stats.Recorder
}

func (s statsWriter) Write(p []byte) (int, error) {
	n, err := s.w.Write(p)
	if n > 0 {
		s.rec.Count(StatBytesOut, int64(n))
	}
	return n, err
}

// WriteBuffers keeps frame.Writer's gathering writes (writev) on a socket.
func (s statsWriter) WriteBuffers(bufs *net.Buffers) (int64, error) {
	n, err := bufs.WriteTo(s.w)
	if n > 0 {
		s.rec.Count(StatBytesOut, n)
	}
	return n, err
}

func (s *Server) count(name string) { s.cfg.Stats.Count(name, 1) }

// finishRequest records a request's stats and, as RequestLog says, logs it
// with its span.
func (s *Server) finishRequest(c *conn, sl *slot, d time.Duration) {
	if s.gauges {
		s.inflight.Add(-1)
	}
	rec := s.cfg.Stats
	rec.Count(StatRequests, 1)
	rec.Timing(StatRequestTime, d)
	if sl.sp.Touched() {
		sl.sp.Record(rec)
	}
	if sl.err != nil && !errors.Is(sl.err, ErrCloseConnection) {
		s.logFailure(c, sl, d)
		return
	}
	rl := &s.cfg.RequestLog
	if rl.Slow > 0 && d > rl.Slow {
		s.requestEntry(c, sl, d).Warn("tcpez: slow request")
		return
	}
	if !levelEnabled(s.cfg.Logger, rl.Level) {
		return
	}
	if rl.SampleEvery > 1 && s.sampled.Add(1)%uint64(rl.SampleEvery) != 0 {
		return
	}
	s.requestEntry(c, sl, d).Log(rl.Level, "tcpez: request")
}

func (s *Server) logFailure(c *conn, sl *slot, d time.Duration) {
	entry := s.requestEntry(c, sl, d).WithError(sl.err)
	if pe, ok := errors.AsType[*PanicError](sl.err); ok {
		s.count(StatErrPanic)
		entry.WithField("stack", string(pe.Stack)).Error("tcpez: handler panicked")
		return
	}
	s.count(StatErrHandler)
	entry.Error("tcpez: handler failed")
}

func (s *Server) requestEntry(c *conn, sl *slot, d time.Duration) *logrus.Entry {
	f := logrus.Fields{
		"remote":      c.remote,
		"duration_ms": float64(d) / float64(time.Millisecond),
		"req_bytes":   len(sl.req),
		"resp_bytes":  len(sl.resp) + len(sl.tail),
	}
	if sl.inBatch {
		f["batch"] = true
	}
	return s.cfg.Logger.WithFields(sl.sp.Fields(f))
}

// levelEnabled tells whether logging at lvl would print, so that entries
// nobody will see are not built. Loggers that cannot say are assumed on.
func levelEnabled(l logrus.FieldLogger, lvl logrus.Level) bool {
	switch l := l.(type) {
	case *logrus.Logger:
		return l.IsLevelEnabled(lvl)
	case *logrus.Entry:
		return l.Logger == nil || l.Logger.IsLevelEnabled(lvl)
	case interface{ IsLevelEnabled(logrus.Level) bool }:
		return l.IsLevelEnabled(lvl)
	}
	return true
}

// logConnEnd logs and counts why a connection ended. Faults of the peer
// are counted by kind; ordinary ends are logged at debug level.
func (s *Server) logConnEnd(c *conn, err error) {
	entry := s.cfg.Logger.WithField("remote", c.remote)
	var ne net.Error
	if c.tlsFailed {
		// A failed TLS handshake is errors.tls, whatever error ended it
		// (an alert, a timeout, a reset): not errors.conn as well. A
		// client that does not speak TLS is also errors.foreign, below.
		s.count(StatErrTLS)
		foreign := errors.Is(err, ErrClientNotTLS) || errors.Is(err, ErrClientSpeaksHTTP)
		switch {
		case foreign:
		case errors.As(err, &ne), err == io.EOF, errors.Is(err, io.ErrUnexpectedEOF):
			entry.WithError(err).Debug("tcpez: connection closed: TLS handshake failed")
			return
		default:
			entry.WithError(err).Info("tcpez: connection closed: TLS handshake failed")
			return
		}
	}
	switch {
	case err == nil || err == io.EOF || err == errStopping || err == ErrServerClosed, cleanClose(err):
		entry.Debug("tcpez: connection closed")
	case errors.Is(err, ErrUnauthenticated):
		entry.WithError(err).Warn("tcpez: connection closed: unauthenticated")
	case errors.Is(err, ErrIdleTimeout):
		s.count(StatConnsIdleTimeout)
		entry.Debug("tcpez: connection closed: idle")
	case errors.Is(err, ErrClientSpeaksTLS), errors.Is(err, ErrClientSpeaksHTTP), errors.Is(err, ErrClientNotTLS):
		// Still a protocol error, and counted as one; errors.foreign says
		// which kind, the log says what the client spoke.
		if errors.Is(err, frame.ErrProtocol) {
			s.count(StatErrProtocol)
		}
		s.count(StatErrForeign)
		entry.WithError(err).Warn("tcpez: connection closed: the client speaks another protocol")
	case errors.Is(err, frame.ErrProtocol):
		s.count(StatErrProtocol)
		entry.WithError(err).Warn("tcpez: connection closed: protocol error")
	case errors.Is(err, ErrReadTimeout):
		s.count(StatErrReadTimeout)
		entry.WithError(err).Info("tcpez: connection closed: frame not received in time")
	case errors.Is(err, ErrWriteTimeout):
		s.count(StatErrWriteTimeout)
		entry.WithError(err).Warn("tcpez: connection closed: peer not reading its answers")
	case errors.Is(err, ErrMemoryBudget):
		s.count(StatErrMemory)
		entry.WithError(err).Warn("tcpez: connection closed: server memory budget exhausted")
	case errors.Is(err, ErrHandshakeEvicted):
		s.count(StatConnsHandshakeEvicted)
		entry.WithError(err).Info("tcpez: connection closed: handshake evicted")
	case errors.Is(err, ErrHandler), errors.Is(err, ErrHandlerPanic):
		entry.WithError(err).Info("tcpez: connection closed after a handler error")
	case errors.As(err, &ne):
		s.count(StatErrConn)
		entry.WithError(err).Debug("tcpez: connection failed")
	default:
		s.count(StatErrConn)
		entry.WithError(err).Info("tcpez: connection failed")
	}
}
