package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
)

// rawSystem is the yardstick: the least code that speaks the tcpez framing
// (big-endian int32 length, then the payload; -N opens a batch of N frames),
// with no library in between. Every goroutine dials its own connection and
// keeps one request in flight on it: one write of header and payload, one
// buffered read of the answer. With batch set, a request is a batch of
// batchSize frames sent with one write and answered with one write. It is the
// physical limit of the framing on this machine, not a usable client: no
// pipelining across goroutines, no timeouts, no reconnection.
type rawSystem struct {
	batch    bool
	coalesce bool // the server answers all it has read with one write
	l        net.Listener
	mu       sync.Mutex
	open     map[net.Conn]struct{}
	wg       sync.WaitGroup
}

func (s *rawSystem) Start() error {
	var err error
	if s.l, err = listen(); err != nil {
		return err
	}
	s.open = make(map[net.Conn]struct{})
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := s.l.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.open[c] = struct{}{}
			s.mu.Unlock()
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				rawServe(c, s.coalesce)
				s.mu.Lock()
				delete(s.open, c)
				s.mu.Unlock()
				c.Close()
			}()
		}
	}()
	return nil
}

// rawServe echoes every frame and batch of c. An echo's answer is
// byte-for-byte its request, header included, so the server reads a whole
// frame or batch into one buffer and writes that buffer back with one write.
// With coalesce set, it first reads on while requests are at hand, up to
// 64 KiB, and answers them all with one write.
func rawServe(c net.Conn, coalesce bool) {
	r := bufio.NewReaderSize(c, 64<<10)
	buf := make([]byte, 0, 64<<10)
	for {
		start := len(buf)
		buf = grow(buf, 4)
		if _, err := io.ReadFull(r, buf[start:]); err != nil {
			return
		}
		h := int32(binary.BigEndian.Uint32(buf[start:]))
		var err error
		switch {
		case h >= 0:
			buf, err = readFrameBody(r, buf, int(h))
		case h == -1<<31 || -int(h) > 1<<16:
			return // malformed, or a batch over the protocol's default limit
		default:
			for i := 0; i < -int(h) && err == nil; i++ {
				buf, err = readFrame(r, buf)
			}
		}
		if err != nil {
			return
		}
		if coalesce && r.Buffered() > 0 && len(buf) < 64<<10 {
			continue
		}
		if _, err := c.Write(buf); err != nil {
			return
		}
		buf = buf[:0]
	}
}

// readFrame appends one frame, header and payload, read from r to buf.
func readFrame(r *bufio.Reader, buf []byte) ([]byte, error) {
	n := len(buf)
	buf = grow(buf, 4)
	if _, err := io.ReadFull(r, buf[n:]); err != nil {
		return buf, err
	}
	h := int32(binary.BigEndian.Uint32(buf[n:]))
	if h < 0 {
		return buf, errors.New("raw: negative length inside a batch")
	}
	return readFrameBody(r, buf, int(h))
}

// readFrameBody appends a payload of n bytes read from r to buf.
func readFrameBody(r *bufio.Reader, buf []byte, n int) ([]byte, error) {
	if n > maxPayload {
		return buf, fmt.Errorf("raw: frame of %d bytes", n)
	}
	m := len(buf)
	buf = grow(buf, n)
	_, err := io.ReadFull(r, buf[m:])
	return buf, err
}

// grow extends buf by n bytes, reallocating only when it must.
func grow(buf []byte, n int) []byte {
	if len(buf)+n <= cap(buf) {
		return buf[:len(buf)+n]
	}
	nb := make([]byte, len(buf)+n, 2*(len(buf)+n))
	copy(nb, buf)
	return nb
}

func (s *rawSystem) NewCaller() (caller, error) {
	c, err := dial(s.l.Addr().String())
	if err != nil {
		return nil, err
	}
	return &rawCaller{c: c, r: bufio.NewReaderSize(c, 64<<10), batch: s.batch}, nil
}

func (s *rawSystem) Close() {
	if s.l == nil {
		return
	}
	s.l.Close()
	s.mu.Lock()
	for c := range s.open {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

type rawCaller struct {
	c        net.Conn
	r        *bufio.Reader
	batch    bool
	out, ans []byte
}

// Call ignores ctx, as a loop this small would: closing the system ends a
// call that hangs.
func (c *rawCaller) Call(_ context.Context, req []byte) (int, error) {
	n := 1
	c.out = c.out[:0]
	if c.batch {
		n = batchSize
		c.out = binary.BigEndian.AppendUint32(c.out, uint32(-int32(n)))
	}
	for range n {
		c.out = binary.BigEndian.AppendUint32(c.out, uint32(len(req)))
		c.out = append(c.out, req...)
	}
	if _, err := c.c.Write(c.out); err != nil {
		return 0, err
	}
	// The echo of a frame or batch is byte-for-byte the request.
	c.ans = grow(c.ans[:0], len(c.out))
	if _, err := io.ReadFull(c.r, c.ans); err != nil {
		return 0, err
	}
	return n, checkEcho(c.out, c.ans)
}

func (c *rawCaller) Close() { c.c.Close() }
