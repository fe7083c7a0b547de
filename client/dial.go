package client

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/tcpez/tcpez/frame"
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
	if _, _, err := net.SplitHostPort(address); err != nil {
		return fmt.Errorf("address %q: %w", addr, err)
	}
	return nil
}

// dial opens one connection to addr within DialTimeout, TLS handshake
// and authentication included.
func (c *Client) dial(ctx context.Context, addr string) (net.Conn, error) {
	network, address := splitAddr(addr)
	ctx, cancel := context.WithTimeout(ctx, c.cfg.DialTimeout)
	defer cancel()
	d := &net.Dialer{}
	var (
		nc  net.Conn
		err error
	)
	if c.cfg.TLS != nil {
		td := &tls.Dialer{NetDialer: d, Config: c.cfg.TLS}
		nc, err = td.DialContext(ctx, network, address)
	} else {
		nc, err = d.DialContext(ctx, network, address)
	}
	if err != nil || c.cfg.AuthToken == nil {
		return nc, err
	}
	if err := c.authenticate(ctx, nc, addr); err != nil {
		_ = nc.Close()
		return nil, err
	}
	return nc, nil
}

// StaticToken is a Config.AuthToken that sends the same token to every
// address.
func StaticToken(token []byte) func(context.Context, string) ([]byte, error) {
	return func(context.Context, string) ([]byte, error) { return token, nil }
}

// authenticate sends the credential frame of a new connection and reads
// the server's empty answer (see server.Auth), before any call may use
// the connection. It reads exactly that answer: nothing else is due.
func (c *Client) authenticate(ctx context.Context, nc net.Conn, addr string) error {
	token, err := c.cfg.AuthToken(ctx, addr)
	if err != nil {
		return fmt.Errorf("%w: getting the token: %w", ErrAuthFailed, err)
	}
	if d, ok := ctx.Deadline(); ok {
		_ = nc.SetDeadline(d)
		defer nc.SetDeadline(time.Time{})
	}
	if _, err := nc.Write(frame.AppendFrame(nil, token)); err != nil {
		return fmt.Errorf("%w: sending the token: %w", ErrAuthFailed, err)
	}
	var hdr [frame.HeaderSize]byte
	if _, err := io.ReadFull(nc, hdr[:]); err != nil {
		// A server that refuses a token closes the connection.
		return fmt.Errorf("%w: the server closed the connection: %w", ErrAuthFailed, err)
	}
	if h := frame.Header(binary.BigEndian.Uint32(hdr[:])); h != 0 {
		return fmt.Errorf("%w: answer header %d to the token, want an empty frame: %w",
			ErrAuthFailed, h, foreign(c.cfg.Limits.CheckHeader(h)))
	}
	return nil
}
