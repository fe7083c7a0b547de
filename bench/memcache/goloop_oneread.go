package main

import (
	"bytes"
	"errors"
	"net"
	"syscall"
)

// The Go loop, one read, is the Go loop reading its socket the way
// memcached does: once per request. A Go server's reads go through the
// runtime's poller, which is told that a socket is readable only after a
// read found it empty, so a server that answers one request at a time
// reads twice for each: the request, then nothing (EAGAIN), before it
// parks. Here the whole connection runs inside one RawConn.Read: after a
// read that came short, which emptied the socket, the callback returns
// false, and the runtime parks the goroutine until the next request
// arrives, with no read in between. Only that shape is safe: each
// RawConn.Read (as each net.Conn.Read) starts by forgetting readiness
// the runtime saw before it, so one that waited before its first read
// could sleep on a request that had arrived since the last read. Within
// one RawConn.Read nothing is forgotten: a request that arrives after the
// short read wakes the wait. A FIN that came with the last request is
// another matter: no readiness follows it, and only a read would find it,
// so such a connection stays open until more comes. The load generator
// never does that; a server would have to probe for it (bench/README.md,
// "memcache"). It is a yardstick of what that saves,
// not a server: the connection ends at a line or value that does not fit
// its 64 KiB buffer, and at anything but a get or set.

// oneReadBuffer bounds a request, line and value, in the Go loop, one read.
const oneReadBuffer = 64 << 10

var errOneRead = errors.New("request the Go loop, one read, does not serve")

// serveOneRead serves nc as serve does, in one RawConn.Read.
func (s *goloopStore) serveOneRead(nc net.Conn) {
	defer nc.Close()
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return
	}
	c := oneReadConn{s: s, nc: nc, buf: make([]byte, oneReadBuffer)}
	_ = rc.Read(c.readable) // it ends with the connection
}

type oneReadConn struct {
	s    *goloopStore
	nc   net.Conn
	buf  []byte
	have int // bytes of buf read and not yet answered
	out  []byte
}

// readable reads what fd has, answers the complete requests, and returns
// false to wait for more, or true when the connection ends.
func (c *oneReadConn) readable(fd uintptr) bool {
	for {
		if c.have == len(c.buf) {
			return true // a request that does not fit
		}
		n, err := syscall.Read(int(fd), c.buf[c.have:])
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN:
			return false
		case err != nil || n == 0:
			return true
		}
		short := n < len(c.buf)-c.have
		c.have += n
		used, err := c.answer()
		if err != nil {
			return true
		}
		c.have = copy(c.buf, c.buf[used:c.have])
		// Answers wait while a request is half read, as serve's wait
		// while more are buffered: a batch is answered with one write.
		if len(c.out) > 0 && (short || c.have == 0) {
			if _, err := c.nc.Write(c.out); err != nil {
				return true
			}
			c.out = c.out[:0]
		}
		if short {
			return false // the socket is empty: wait for the next request
		}
	}
}

// answer appends the answers of the complete requests in c.buf to c.out,
// and returns how many bytes of c.buf they took.
func (c *oneReadConn) answer() (used int, err error) {
	for {
		rest := c.buf[used:c.have]
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			return used, nil
		}
		key, n, err := parseGoloopLine(rest[:i])
		next := used + i + 1
		switch {
		case err != nil || n+2 > len(c.buf):
			return used, errOneRead
		case n < 0:
			c.out = c.s.appendGet(c.out, key)
		case c.have-next < n+2:
			return used, nil // its value is still coming
		default:
			c.s.set(string(key), append([]byte(nil), c.buf[next:next+n]...))
			c.out = append(c.out, "STORED\r\n"...)
			next += n + 2
		}
		used = next
	}
}
