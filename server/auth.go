package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"time"
)

// DefaultAuthTimeout is how long a connection may take to authenticate
// when Auth.Timeout is zero.
const DefaultAuthTimeout = 10 * time.Second

// ErrUnauthenticated ends a connection that Auth refused, or that did not
// authenticate within Auth.Timeout.
var ErrUnauthenticated = errors.New("tcpez/server: unauthenticated")

// Auth admits connections before any of their requests is served.
//
// With Token set, the first frame of every connection (after the mux
// negotiation, when the client asks for it) is a credential, not a
// request: it goes to Check, and an accepted connection gets an empty
// frame as its answer, so that the exchange is an ordinary request and
// answer to any tcpez client. Without Token, Check sees only the peer, for
// example the identity in its TLS client certificate.
type Auth struct {
	// Token, when set, makes the first frame of every connection its
	// credential, given to Check as token and answered with an empty
	// frame once accepted. When false, no frame is taken: Check gets a nil
	// token and judges the peer alone (its address, its TLS state).
	Token bool
	// Check accepts a connection, returning an identity that handlers read
	// with Identity, or refuses it with an error; the connection is then
	// closed and counted as errors.auth.
	Check func(ctx context.Context, peer Peer, token []byte) (identity string, err error)
	// Timeout bounds the time from accepting a connection (from the end
	// of its TLS handshake, which ReadTimeout bounds) to its credential
	// being checked: the mux negotiation, the credential frame however
	// slowly it comes, and Check (through its ctx). A connection that
	// runs out of it is closed and counted as errors.auth. Default
	// DefaultAuthTimeout.
	Timeout time.Duration
}

func (a *Auth) timeout() time.Duration {
	if a.Timeout <= 0 {
		return DefaultAuthTimeout
	}
	return a.Timeout
}

// Peer describes the other end of a connection.
type Peer struct {
	Addr net.Addr
	// TLS is the state of a TLS connection after its handshake, nil for
	// plain connections; TLS.PeerCertificates holds a verified client
	// certificate when the server asks for one.
	TLS *tls.ConnectionState
}

type identityKey struct{}

// Identity returns the identity Auth.Check gave the connection a request
// came on, and whether there was one.
func Identity(ctx context.Context) (string, bool) {
	id, ok := ctx.Value(identityKey{}).(string)
	return id, ok
}

// authenticate runs Auth for a new connection.
func (c *conn) authenticate() error {
	a := c.cfg.Auth
	if a == nil {
		return nil
	}
	ctx, cancel := context.WithDeadline(c.ctx, c.authBy)
	defer cancel()
	peer := Peer{Addr: c.nc.RemoteAddr()}
	if tc, ok := c.nc.(*tls.Conn); ok {
		st := tc.ConnectionState()
		peer.TLS = &st
	}
	var token []byte
	if a.Token {
		var err error
		if token, err = c.readToken(c.authBy); err != nil {
			return err
		}
	}
	id, err := a.Check(ctx, peer, token)
	if err != nil {
		c.srv.count(StatErrAuth)
		return fmt.Errorf("%w: %w", ErrUnauthenticated, err)
	}
	c.ctx = context.WithValue(c.ctx, identityKey{}, id)
	if !a.Token {
		return nil
	}
	if err := c.w.WriteFrame(nil); err != nil {
		return err
	}
	return c.flush()
}

// readToken reads the credential frame, which must come by deadline and
// may not be a batch.
func (c *conn) readToken(deadline time.Time) ([]byte, error) {
	if err := c.setReadDeadline(deadline); err != nil {
		return nil, err
	}
	h, err := c.r.ReadHeader()
	if err == nil && h.IsBatch() {
		err = errors.New("a batch where a credential frame was due")
	}
	var token []byte
	if err == nil {
		// A credential takes its share of the memory budget while it is
		// read. It does not wait for one: a credential that does not fit
		// the 16 KiB every connection may hold is refused when the budget
		// is spent.
		if !c.acct.TryAcquire(int64(h.Len())) {
			return nil, fmt.Errorf("%w: no room for a %d-byte credential", ErrMemoryBudget, h.Len())
		}
		defer c.acct.Release(int64(h.Len()))
		token, err = c.r.ReadPayload(nil, h.Len())
	}
	if err != nil {
		if c.isStopping() {
			// Shutdown or an eviction (conns.handshake_evicted) cut the
			// read short: no verdict on the peer.
			return nil, c.readError(err, false)
		}
		c.srv.count(StatErrAuth)
		if isTimeout(err) {
			return nil, fmt.Errorf("%w: no credential within the time allowed", ErrUnauthenticated)
		}
		return nil, fmt.Errorf("%w: %w", ErrUnauthenticated, err)
	}
	return token, nil
}
