package server

import "net"

// refuse closes a connection the server will not serve (MaxConns,
// MaxConnsPerPeer, or closing) with a TCP reset rather than a clean
// close. A client's first exchange (mux preface, credential) then fails
// with ECONNRESET, which it can tell from a refusal of its credential or
// protocol: those read what the client sent first and close cleanly.
// Closed cleanly, a full server would look to the client like one that
// refused its token, or spoke only v1.
func refuse(nc net.Conn) {
	raw := nc
	if u, ok := nc.(interface{ NetConn() net.Conn }); ok {
		raw = u.NetConn() // a TLS connection, before its handshake
	}
	if tc, ok := raw.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = nc.Close()
}
