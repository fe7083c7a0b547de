package server

import (
	"net"
	"net/netip"
)

// peerKey is what MaxConnsPerPeer counts connections by: the remote IPv4
// address, or the /64 of an IPv6 one (one host's usual allocation). The
// zero key, for Unix sockets and other non-IP connections, is not limited.
type peerKey struct{ ip netip.Addr }

func peerOf(a net.Addr) peerKey {
	ta, ok := a.(*net.TCPAddr)
	if !ok {
		return peerKey{}
	}
	ip, ok := netip.AddrFromSlice(ta.IP)
	if !ok {
		return peerKey{}
	}
	ip = ip.Unmap()
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		ip = p.Addr()
	}
	return peerKey{ip}
}

func (k peerKey) limited() bool { return k.ip.IsValid() }

// peerConns is what the server knows of one peer.
type peerConns struct {
	open   int
	warned bool // a refusal was logged since the peer was last under the limit
}

// admitPeerLocked counts c against its peer's limit, or refuses it (and
// counts and logs the refusal). s.mu is held.
func (s *Server) admitPeerLocked(c *conn) bool {
	limit := s.cfg.MaxConnsPerPeer
	if limit <= 0 || !c.peer.limited() {
		c.peer = peerKey{}
		return true
	}
	p := s.peers[c.peer]
	if p == nil {
		p = &peerConns{}
		s.peers[c.peer] = p
	}
	if p.open < limit {
		p.open++
		return true
	}
	s.count(StatConnsRefusedPeer)
	entry := s.cfg.Logger.WithField("remote", c.remote).WithField("limit", limit)
	if !p.warned {
		// Once per episode, so that a flood of refusals is not a flood of logs.
		p.warned = true
		entry.Warn("tcpez: connection refused: too many connections from this peer (MaxConnsPerPeer)")
	} else {
		entry.Debug("tcpez: connection refused: MaxConnsPerPeer reached")
	}
	return false
}

// leavePeerLocked uncounts an ended connection. s.mu is held.
func (s *Server) leavePeerLocked(c *conn) {
	if !c.peer.limited() {
		return
	}
	p := s.peers[c.peer]
	p.open--
	p.warned = false
	if p.open == 0 {
		delete(s.peers, c.peer)
	}
}

// startHandshakeLocked records that c is in its handshake or
// authentication, if it has one, evicting the oldest such connection when
// there are MaxHandshakes: a peer's handshake normally takes a round trip
// or two, so the oldest are the likeliest to be stalled on purpose. s.mu
// is held.
func (s *Server) startHandshakeLocked(c *conn) {
	if s.cfg.TLS == nil && s.cfg.Auth == nil {
		return
	}
	c.handshaking = s.handshakes.PushBack(c)
	if max := s.cfg.MaxHandshakes; max > 0 && s.handshakes.Len() > max {
		oldest := s.handshakes.Front()
		s.handshakes.Remove(oldest)
		victim := oldest.Value.(*conn)
		victim.handshaking = nil
		victim.evict(ErrHandshakeEvicted)
	}
}

// endHandshake records that c's handshake and authentication are over.
func (s *Server) endHandshake(c *conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.endHandshakeLocked(c)
}

func (s *Server) endHandshakeLocked(c *conn) {
	if c.handshaking != nil {
		s.handshakes.Remove(c.handshaking)
		c.handshaking = nil
	}
}
