package client

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"strings"
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
// included.
func (c *Client) dial(ctx context.Context, addr string) (net.Conn, error) {
	network, address := splitAddr(addr)
	ctx, cancel := context.WithTimeout(ctx, c.cfg.DialTimeout)
	defer cancel()
	d := &net.Dialer{}
	if c.cfg.TLS != nil {
		td := &tls.Dialer{NetDialer: d, Config: c.cfg.TLS}
		return td.DialContext(ctx, network, address)
	}
	return d.DialContext(ctx, network, address)
}
