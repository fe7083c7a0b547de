package client

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"strings"

	"github.com/tcpez/tcpez/frame"
	"github.com/tcpez/tcpez/internal/loopback"
)

// splitAddr turns an address of New or a Resolver into a network and a
// net.Dial address: "unix:/path" is a Unix socket, anything else TCP.
func splitAddr(addr string) (network, address string) {
	if path, ok := strings.CutPrefix(addr, "unix:"); ok {
		return "unix", path
	}
	return "tcp", addr
}

func checkAddr(addr string) error {
	network, address := splitAddr(addr)
	if network == "unix" {
		if address == "" {
			return fmt.Errorf("address %q: empty socket path", addr)
		}
		return nil
	}
	_, port, err := net.SplitHostPort(address)
	if err != nil {
		return fmt.Errorf("address %q: %w", addr, err)
	}
	// A port no dial can use would otherwise only fail the first calls,
	// after DialTimeout.
	if port == "" {
		return fmt.Errorf("address %q: missing port", addr)
	}
	if _, err := net.LookupPort("tcp", port); err != nil {
		return fmt.Errorf("address %q: %w", addr, err)
	}
	return nil
}

// dial opens one connection to addr within DialTimeout, TLS handshake
// included. The credential, if any, is sent by connect: after the mux
// negotiation, as the server expects it (docs/PROTOCOL.md).
func (c *Client) dial(ctx context.Context, addr string) (net.Conn, error) {
	network, address := splitAddr(addr)
	ctx, cancel := context.WithTimeout(ctx, c.cfg.DialTimeout)
	defer cancel()
	// Loopback connections do without congestion control's pacing
	// (internal/loopback).
	d := &net.Dialer{Control: loopback.Control}
	if c.cfg.TLS != nil {
		td := &tls.Dialer{NetDialer: d, Config: c.cfg.TLS}
		return td.DialContext(ctx, network, address)
	}
	return d.DialContext(ctx, network, address)
}

// StaticToken is a Config.AuthToken that sends the same token to every
// address.
func StaticToken(token []byte) func(context.Context, string) ([]byte, error) {
	return func(context.Context, string) ([]byte, error) { return token, nil }
}

// authenticate sends the credential frame of a new connection and reads
// the server's empty answer (see server.Auth), within DialTimeout, before
// any call may use the connection. It reads exactly that answer, through
// the connection's reader, which the negotiation may have used before:
// nothing else is due. On failure it closes the connection and returns
// nil.
func (cn *conn) authenticate(ctx context.Context) (*conn, error) {
	if cn.c.cfg.AuthToken == nil {
		return cn, nil
	}
	if err := cn.sendToken(ctx); err != nil {
		_ = cn.nc.Close()
		return nil, err
	}
	return cn, nil
}

func (cn *conn) sendToken(ctx context.Context) error {
	c := cn.c
	ctx, cancel := context.WithTimeout(ctx, c.cfg.DialTimeout)
	defer cancel()
	token, err := c.cfg.AuthToken(ctx, cn.addr)
	if err != nil {
		return fmt.Errorf("%w: getting the token: %w", ErrAuthFailed, err)
	}
	defer cn.handshakeDeadline(ctx)()
	if _, err := cn.nc.Write(frame.AppendFrame(nil, token)); err != nil {
		if resetByServer(err) {
			return fmt.Errorf("tcpez/client: sending the token: %w", err)
		}
		return fmt.Errorf("%w: sending the token: %w", ErrAuthFailed, err)
	}
	h, err := cn.in.r.ReadHeader()
	switch {
	case frame.SniffError(err) != "":
		return fmt.Errorf("%w: answer to the token: %w", ErrAuthFailed, foreign(err))
	case resetByServer(err):
		return fmt.Errorf("tcpez/client: the server reset the connection before answering the token: %w", err)
	case tlsAlert(err):
		// A TLS 1.3 server's refusal of the client's certificate comes
		// with the first read: the handshake failed, not the token.
		return fmt.Errorf("tcpez/client: the server refused the TLS handshake: %w", err)
	case err != nil:
		// A server that refuses a token closes the connection.
		return fmt.Errorf("%w: the server closed the connection: %w", ErrAuthFailed, err)
	case h != 0:
		return fmt.Errorf("%w: answer header %d to the token, want an empty frame", ErrAuthFailed, h)
	}
	return nil
}
