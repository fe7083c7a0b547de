// Package loopback tunes TCP sockets whose both ends are on this host.
//
// Congestion control has nothing to control on a loopback connection: no
// wire, no router queue, only the peer's receive window. Yet BBR, the
// default congestion control of many hosts, paces every connection at its
// estimate of the path's bandwidth, and on loopback that estimate can
// settle far below what the connection carries and stay there: of 20
// fresh connections sending Pipelines of 64×4 KiB, 2 ran at half the
// speed of the others for their whole life, and 1 MiB calls from 4
// goroutines ran at 0.7 of the speed they reach unpaced (docs/DESIGN.md,
// "Loopback connections"). So loopback sockets ask for Reno, which Linux
// always lets an unprivileged process choose and which does not pace.
// Elsewhere, or where the kernel refuses, sockets keep the host's choice.
package loopback

import (
	"net"
	"net/netip"
	"syscall"
)

// congestion is the congestion control loopback sockets ask for.
const congestion = "reno"

// Control is a net.Dialer Control function: a socket about to connect to
// a loopback address asks for Reno before its first packet, as
// congestion control is chosen for a connection when it opens.
func Control(network, address string, rc syscall.RawConn) error {
	if isTCP(network) && isLoopback(address) {
		setCongestion(rc)
	}
	return nil
}

// Listen tunes l when it is a TCP listener bound to a loopback address:
// the connections it accepts take its congestion control from it. Other
// listeners, among them those bound to every address, are left alone:
// a connection's congestion control is set up as it opens, before its
// peer is known.
func Listen(l net.Listener) {
	tl, ok := l.(*net.TCPListener)
	if !ok || !isLoopback(tl.Addr().String()) {
		return
	}
	if rc, err := tl.SyscallConn(); err == nil {
		setCongestion(rc)
	}
}

func isTCP(network string) bool {
	return network == "tcp" || network == "tcp4" || network == "tcp6"
}

func isLoopback(address string) bool {
	ap, err := netip.ParseAddrPort(address)
	return err == nil && ap.Addr().Unmap().IsLoopback()
}
