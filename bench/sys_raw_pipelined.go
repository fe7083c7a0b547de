package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
)

// rawPipelinedSystem is the yardstick for auto-pipelining: the least code
// that lets many goroutines share one connection the way tcpez Call
// does. A caller appends its frame to a shared buffer and joins a FIFO of
// waiters; if no write is under way it writes the buffer, again and again
// until nothing is left; one reader goroutine reads the answers and hands
// each to the waiter at the head of the FIFO. The server answers what it
// has read with one write once its input runs dry. No timeouts, limits,
// retries or recovery: the floor of the design, not a usable client.
type rawPipelinedSystem struct {
	srv  rawSystem
	pipe *rawPipe
}

func (s *rawPipelinedSystem) Start() error {
	s.srv.coalesce = true
	if err := s.srv.Start(); err != nil {
		return err
	}
	c, err := dial(s.srv.l.Addr().String())
	if err != nil {
		return err
	}
	s.pipe = &rawPipe{c: c, read: make(chan struct{})}
	go s.pipe.readLoop()
	return nil
}

func (s *rawPipelinedSystem) NewCaller() (caller, error) {
	return &rawPipeCaller{p: s.pipe, done: make(chan error, 1)}, nil
}

func (s *rawPipelinedSystem) Close() {
	if s.pipe != nil {
		s.pipe.c.Close()
		<-s.pipe.read
	}
	s.srv.Close()
}

// rawPipe is the shared connection.
type rawPipe struct {
	c    net.Conn
	read chan struct{} // closed when readLoop ends

	mu         sync.Mutex
	out, spare []byte
	writing    bool
	waiting    []*rawPipeCaller // FIFO, in the order of their frames
	head       int
	err        error // the connection is done
}

var errRawPipeClosed = errors.New("raw pipelined: connection closed")

// send queues c's frame and writes, unless someone else is writing.
func (p *rawPipe) send(c *rawPipeCaller, req []byte) error {
	p.mu.Lock()
	if p.err != nil {
		p.mu.Unlock()
		return p.err
	}
	p.out = binary.BigEndian.AppendUint32(p.out, uint32(len(req)))
	p.out = append(p.out, req...)
	p.waiting = append(p.waiting, c)
	if p.writing {
		p.mu.Unlock()
		return nil
	}
	p.writing = true
	for len(p.out) > 0 {
		buf := p.out
		p.out = p.spare[:0]
		p.mu.Unlock()
		_, err := p.c.Write(buf)
		p.mu.Lock()
		p.spare = buf
		if err != nil {
			// The reader fails every waiter when the read side ends.
			p.c.Close()
			break
		}
	}
	p.writing = false
	p.mu.Unlock()
	return nil
}

// readLoop hands each answer to the waiter at the head of the FIFO, reading
// it straight into that caller's buffer.
func (p *rawPipe) readLoop() {
	defer close(p.read)
	r := bufio.NewReaderSize(p.c, 64<<10)
	var hdr [4]byte
	var err error
	for {
		if _, err = io.ReadFull(r, hdr[:]); err != nil {
			break
		}
		n := int(binary.BigEndian.Uint32(hdr[:]))
		p.mu.Lock()
		c := p.pop()
		p.mu.Unlock()
		if c == nil || n > maxPayload {
			err = errors.New("raw pipelined: unexpected answer")
			break
		}
		c.ans = grow(c.ans[:0], n)
		_, err = io.ReadFull(r, c.ans)
		c.done <- err
		if err != nil {
			break
		}
	}
	p.mu.Lock()
	p.err = errRawPipeClosed
	for c := p.pop(); c != nil; c = p.pop() {
		c.done <- err
	}
	p.mu.Unlock()
}

// pop takes the head of the FIFO; mu is held.
func (p *rawPipe) pop() *rawPipeCaller {
	if p.head == len(p.waiting) {
		return nil
	}
	c := p.waiting[p.head]
	p.waiting[p.head] = nil
	if p.head++; p.head == len(p.waiting) {
		p.waiting, p.head = p.waiting[:0], 0
	}
	return c
}

type rawPipeCaller struct {
	p    *rawPipe
	done chan error
	ans  []byte
}

// Call ignores ctx, as the raw loop does: closing the system ends a call
// that hangs.
func (c *rawPipeCaller) Call(_ context.Context, req []byte) (int, error) {
	if err := c.p.send(c, req); err != nil {
		return 0, err
	}
	if err := <-c.done; err != nil {
		return 0, err
	}
	return 1, checkEcho(req, c.ans)
}

func (c *rawPipeCaller) Close() {}
