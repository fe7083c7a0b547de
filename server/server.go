package server

import (
	"container/list"
	"context"
	"crypto/tls"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/tcpez/tcpez/frame"
	"github.com/tcpez/tcpez/internal/budget"
	"github.com/tcpez/tcpez/internal/loopback"
	"github.com/tcpez/tcpez/stats"
)

// Server serves the tcpez protocol with a Handler. Set Handler and Config
// (or use New) before the first Serve; Config is read once, then.
type Server struct {
	Handler Handler
	Config  Config

	startOnce sync.Once
	startErr  error
	cfg       Config // Config with defaults, fixed at start
	ctx       context.Context
	cancel    context.CancelFunc
	sampled   atomic.Uint64 // routine requests seen, for log sampling
	// gauges is set when a Recorder receives the periodic gauges; only then
	// is inflight kept, so that the default path does not update a
	// counter every connection shares on every request.
	gauges   bool
	inflight atomic.Int64 // requests read and not yet handled
	calls    atomic.Int64 // mux calls running, bounded by Config.MaxCalls
	reporter sync.WaitGroup
	// budget bounds the memory of requests and answers; large lends the
	// buffers of large requests within it.
	budget *budget.Budget
	large  *largeBuffers
	watch  watcher // hands the reading on from slow inline handlers
	awake  awake   // connections not waiting for bytes (see conn.waitForBytes)
	// burst lends connections larger read and write buffers while their
	// traffic outruns the configured ones (see frame.BufferPool).
	burst *frame.BufferPool

	mu        sync.Mutex
	closing   bool
	listeners map[net.Listener]struct{}
	conns     map[*conn]struct{}
	peers     map[peerKey]*peerConns
	// handshakes holds the connections in their handshake or
	// authentication, oldest first.
	handshakes list.List
	connWG     sync.WaitGroup
}

// New returns a Server for h with cfg.
func New(h Handler, cfg Config) *Server {
	return &Server{Handler: h, Config: cfg}
}

func (s *Server) start() error {
	s.startOnce.Do(func() {
		if s.Handler == nil {
			s.startErr = errors.Join(ErrInvalidConfig, errors.New("no Handler"))
			return
		}
		if err := s.Config.Validate(); err != nil {
			s.startErr = err
			return
		}
		s.cfg = s.Config.withDefaults()
		s.ctx, s.cancel = context.WithCancel(context.Background())
		s.listeners = make(map[net.Listener]struct{})
		s.conns = make(map[*conn]struct{})
		s.peers = make(map[peerKey]*peerConns)
		s.budget, s.large = newMemory(s.cfg.MemoryBudget)
		s.burst = frame.NewBufferPool(burstBufferSize)
		if _, nop := s.cfg.Stats.(stats.Nop); !nop {
			s.gauges = true
			s.reporter.Go(s.reportGauges)
		}
	})
	return s.startErr
}

// Serve accepts connections on l and serves each on its own goroutine. It
// returns ErrServerClosed after Shutdown or Close, and otherwise the error
// that stopped Accept. With Config.TLS set, connections speak TLS.
//
// A TCP listener bound to a loopback address is set to give the
// connections it accepts Reno congestion control, which does not pace
// them: on loopback, BBR's pacing could hold a connection at half its
// speed (docs/DESIGN.md, "Loopback connections").
func (s *Server) Serve(l net.Listener) error {
	if err := s.start(); err != nil {
		return err
	}
	loopback.Listen(l)
	if s.cfg.TLS != nil {
		l = tls.NewListener(l, s.cfg.TLS)
	}
	if !s.track(l) {
		_ = l.Close()
		return ErrServerClosed
	}
	defer s.untrack(l)
	var delay time.Duration
	for {
		nc, err := l.Accept()
		if err != nil {
			if s.isClosing() {
				return ErrServerClosed
			}
			if !isTemporary(err) {
				return err
			}
			// Out of file descriptors and the like: wait, then go on, as
			// net/http does, rather than fail the whole server.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			s.cfg.Logger.WithError(err).Warnf("tcpez: accept failed; retrying in %v", delay)
			time.Sleep(delay)
			continue
		}
		delay = 0
		s.accept(nc)
	}
}

func isTemporary(err error) bool {
	var te interface{ Temporary() bool }
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) ||
		errors.Is(err, syscall.ECONNABORTED) || (errors.As(err, &te) && te.Temporary())
}

func (s *Server) accept(nc net.Conn) {
	s.count(StatConnsAccepted)
	c, ok := s.addConn(nc, true)
	if !ok {
		refuse(nc)
		return
	}
	go func() { _ = c.serve() }()
}

// ServeConn serves one connection that the caller accepted or made, such as
// one end of a net.Pipe, and returns when it ends: nil when the peer closed
// it cleanly, otherwise why it ended. Ending ctx closes the connection.
// ServeConn does not count against MaxConns.
func (s *Server) ServeConn(ctx context.Context, nc net.Conn) error {
	if err := s.start(); err != nil {
		return err
	}
	c, ok := s.addConn(nc, false)
	if !ok {
		_ = nc.Close()
		return ErrServerClosed
	}
	stop := context.AfterFunc(ctx, c.closeHard)
	defer stop()
	return c.serveAndWait()
}

// ListenAndServe listens on addr, "host:port" or "unix:/path", and serves.
func (s *Server) ListenAndServe(addr string) error {
	l, err := s.Listen(addr)
	if err != nil {
		return err
	}
	return s.Serve(l)
}

// Shutdown stops the server gracefully: it stops accepting, lets every
// connection finish and answer the requests it has read, then closes them.
// If ctx ends first, Shutdown closes what is left as Close does and returns
// ctx's error.
func (s *Server) Shutdown(ctx context.Context) error {
	if err := s.start(); err != nil {
		return err
	}
	s.stopAccepting((*conn).shutdown)

	done := make(chan struct{})
	go func() {
		s.connWG.Wait()
		close(done)
	}()
	select {
	case <-done:
		s.cancel()
		s.reporter.Wait()
		s.large.close()
		return nil
	case <-ctx.Done():
		// Handlers that ignore their context may never return; like
		// net/http, do not wait for them.
		_ = s.Close()
		return ctx.Err()
	}
}

// Close stops the server at once: listeners and connections are closed and
// handlers' contexts cancelled; answers not yet written are lost. Use
// Shutdown to finish the work in hand first.
func (s *Server) Close() error {
	if err := s.start(); err != nil {
		return err
	}
	s.stopAccepting((*conn).closeHard)
	s.cancel()
	s.reporter.Wait()
	s.large.close()
	return nil
}

// stopAccepting closes the listeners, refuses new connections, and applies
// stop to every open one.
func (s *Server) stopAccepting(stop func(*conn)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closing = true
	for l := range s.listeners {
		_ = l.Close()
	}
	for c := range s.conns {
		stop(c)
	}
}

func (s *Server) isClosing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closing
}

func (s *Server) track(l net.Listener) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	s.listeners[l] = struct{}{}
	return true
}

func (s *Server) untrack(l net.Listener) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.listeners, l)
}

// addConn registers a new connection, refusing it when the server is
// closing or, if limited, full.
func (s *Server) addConn(nc net.Conn, limited bool) (*conn, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return nil, false
	}
	if limited && s.cfg.MaxConns > 0 && len(s.conns) >= s.cfg.MaxConns {
		s.count(StatConnsRefused)
		s.cfg.Logger.WithField("remote", remoteAddr(nc)).Debug("tcpez: connection refused: MaxConns reached")
		return nil, false
	}
	c := newConn(s, nc)
	if limited && !s.admitPeerLocked(c) {
		return nil, false
	}
	if !limited {
		c.peer = peerKey{}
	}
	s.startHandshakeLocked(c)
	s.conns[c] = struct{}{}
	s.awake.n.Add(1)
	s.connWG.Add(1)
	s.cfg.Stats.Gauge(StatConnsOpen, int64(len(s.conns)))
	return c, true
}

func (s *Server) connEnded(c *conn, err error) {
	s.mu.Lock()
	delete(s.conns, c)
	s.awake.n.Add(-1)
	s.leavePeerLocked(c)
	s.endHandshakeLocked(c)
	open := len(s.conns)
	s.mu.Unlock()
	s.cfg.Stats.Gauge(StatConnsOpen, int64(open))
	s.logConnEnd(c, err)
	s.connWG.Done()
}

// reportGauges sends the gauges that would cost too much to update on
// every request, until the server stops.
func (s *Server) reportGauges() {
	t := time.NewTicker(s.cfg.StatsInterval)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
		s.mu.Lock()
		open := len(s.conns)
		s.mu.Unlock()
		s.cfg.Stats.Gauge(StatConnsOpen, int64(open))
		s.cfg.Stats.Gauge(StatRequestsInFlight, s.inflight.Load())
		s.cfg.Stats.Gauge(StatMemoryHeld, s.budget.Used())
	}
}

// acquireCall counts a mux call about to run against MaxCalls; false when
// the server runs as many as it may.
func (s *Server) acquireCall() bool {
	if s.cfg.MaxCalls < 0 {
		return true
	}
	if s.calls.Add(1) > int64(s.cfg.MaxCalls) {
		s.calls.Add(-1)
		return false
	}
	return true
}

func (s *Server) releaseCall() {
	if s.cfg.MaxCalls >= 0 {
		s.calls.Add(-1)
	}
}
