package server

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
)

// Listen opens a listener for addr: "host:port" for TCP, or "unix:/path"
// for a Unix socket, whose file gets Config.UnixSocketMode if set. A stale
// socket file left by a process that died is replaced; a live one is not.
func (s *Server) Listen(addr string) (net.Listener, error) {
	path, ok := strings.CutPrefix(addr, "unix:")
	if !ok {
		return net.Listen("tcp", addr)
	}
	if err := removeStaleSocket(path); err != nil {
		return nil, err
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, err
	}
	if mode := s.Config.UnixSocketMode; mode != 0 {
		if err := os.Chmod(path, mode); err != nil {
			_ = l.Close()
			return nil, fmt.Errorf("tcpez/server: setting the socket's mode: %w", err)
		}
	}
	return l, nil
}

func removeStaleSocket(path string) error {
	fi, err := os.Lstat(path)
	if err != nil || fi.Mode()&os.ModeSocket == 0 {
		return nil // absent, or not ours to remove: Listen reports it
	}
	c, err := net.Dial("unix", path)
	if err == nil {
		_ = c.Close()
		return fmt.Errorf("tcpez/server: %s: %w", path, syscall.EADDRINUSE)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return nil
	}
	return os.Remove(path)
}
