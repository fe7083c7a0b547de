package client_test

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tcpez/tcpez/client"
	"github.com/tcpez/tcpez/frame"
)

// testServer is a tcpez server written for these tests from
// docs/PROTOCOL.md: it reads requests and batches in order and answers
// each with handle(req), batches as batches, coalescing the answers to
// requests that arrived together into one write. It can be killed and
// restarted on the same address.
type testServer struct {
	t        testing.TB
	addr     string // as the client spells it
	listen   func() (net.Listener, error)
	handle   func(req []byte) []byte
	legacy   bool         // answer as the original tcpez server did
	requests atomic.Int64 // request frames read, batch members included

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]bool
	wg    sync.WaitGroup
}

func echo(req []byte) []byte { return req }

// newServer starts a server on 127.0.0.1:0; handle nil means echo.
func newServer(t testing.TB, handle func([]byte) []byte) *testServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	return startServer(t, ln, addr, func() (net.Listener, error) { return net.Listen("tcp", addr) }, handle)
}

func startServer(t testing.TB, ln net.Listener, addr string, listen func() (net.Listener, error), handle func([]byte) []byte) *testServer {
	if handle == nil {
		handle = echo
	}
	s := &testServer{t: t, addr: addr, listen: listen, handle: handle, conns: make(map[net.Conn]bool)}
	s.serve(ln)
	t.Cleanup(s.Kill)
	return s
}

func (s *testServer) serve(ln net.Listener) {
	s.mu.Lock()
	s.ln = ln
	s.mu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			if s.ln != ln {
				s.mu.Unlock()
				nc.Close()
				return
			}
			s.conns[nc] = true
			s.wg.Add(1)
			s.mu.Unlock()
			go func() {
				defer s.wg.Done()
				defer s.drop(nc)
				if s.legacy {
					s.serveLegacy(nc)
				} else {
					s.serveConn(nc)
				}
			}()
		}
	}()
}

func (s *testServer) drop(nc net.Conn) {
	s.mu.Lock()
	delete(s.conns, nc)
	s.mu.Unlock()
	nc.Close()
}

// Kill closes the listener and every connection, and waits for the
// server's goroutines.
func (s *testServer) Kill() {
	s.mu.Lock()
	if s.ln != nil {
		s.ln.Close()
		s.ln = nil
	}
	for nc := range s.conns {
		nc.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// Restart listens on the same address again.
func (s *testServer) Restart() {
	s.t.Helper()
	ln, err := s.listen()
	if err != nil {
		s.t.Fatal(err)
	}
	s.serve(ln)
}

// serveConn answers with the frame package, reusing its buffers so that
// the allocation test measures the client alone.
func (s *testServer) serveConn(nc net.Conn) {
	r := frame.NewReader(nc, frame.Limits{})
	var in, out []byte
	for {
		h, err := r.ReadHeader()
		if err != nil {
			return
		}
		if h.IsBatch() {
			out = frame.AppendHeader(out, h)
			for range h.Count() {
				if in, err = r.ReadFrame(in); err != nil {
					return
				}
				s.requests.Add(1)
				out = frame.AppendFrame(out, s.handle(in))
			}
		} else {
			if in, err = r.ReadPayload(in, h.Len()); err != nil {
				return
			}
			s.requests.Add(1)
			out = frame.AppendFrame(out, s.handle(in))
		}
		if r.Buffered() == 0 {
			if _, err := nc.Write(out); err != nil {
				return
			}
			out = out[:0]
		}
	}
}

// serveLegacy answers as the original tcpez server did, written from the
// protocol document with encoding/binary rather than the frame package:
// one request or one batch read, answered at once with its own write.
func (s *testServer) serveLegacy(nc net.Conn) {
	var hdr [4]byte
	readFrame := func() ([]byte, error) {
		if _, err := io.ReadFull(nc, hdr[:]); err != nil {
			return nil, err
		}
		n := int32(binary.BigEndian.Uint32(hdr[:]))
		if n < 0 {
			return nil, errors.New("negative length inside a batch")
		}
		p := make([]byte, n)
		_, err := io.ReadFull(nc, p)
		return p, err
	}
	appendFrame := func(out, p []byte) []byte {
		out = binary.BigEndian.AppendUint32(out, uint32(len(p)))
		return append(out, p...)
	}
	for {
		if _, err := io.ReadFull(nc, hdr[:]); err != nil {
			return
		}
		h := int32(binary.BigEndian.Uint32(hdr[:]))
		var out []byte
		if h < 0 {
			out = binary.BigEndian.AppendUint32(out, uint32(h))
			for range -int(h) {
				p, err := readFrame()
				if err != nil {
					return
				}
				s.requests.Add(1)
				out = appendFrame(out, s.handle(p))
			}
		} else {
			p := make([]byte, h)
			if _, err := io.ReadFull(nc, p); err != nil {
				return
			}
			s.requests.Add(1)
			out = appendFrame(out, s.handle(p))
		}
		if _, err := nc.Write(out); err != nil {
			return
		}
	}
}

// rawMuxServer is a hand-written mux server: on every connection it reads
// the preface, writes what greet returns (the acknowledgement and any
// frames after it), then hands each mux frame it reads to answer and
// writes what answer returns, until the connection ends.
func rawMuxServer(t testing.TB, greet func() []byte, answer func(f frame.MuxFrame) []byte) string {
	t.Helper()
	return rawServer(t, func(nc net.Conn, _ <-chan struct{}) {
		r, ok := greetMux(nc, greet())
		if !ok {
			return
		}
		for {
			f, ok := readMux(r)
			if !ok {
				return
			}
			if out := answer(f); len(out) > 0 {
				if _, err := nc.Write(out); err != nil {
					return
				}
			}
		}
	})
}

// greetMux reads a client's preface on nc and writes greeting, as a mux
// server does, and returns the reader for what follows; false if either
// failed.
func greetMux(nc net.Conn, greeting []byte) (*frame.Reader, bool) {
	r := frame.NewReaderSize(nc, 64<<10, frame.Limits{})
	if _, err := r.ReadFrame(nil); err != nil { // the preface
		return nil, false
	}
	_, err := nc.Write(greeting)
	return r, err == nil
}

// readMux reads the next mux frame a client sent, in a buffer of its own;
// false once the connection ended or broke the protocol.
func readMux(r *frame.Reader) (frame.MuxFrame, bool) {
	p, err := r.ReadFrame(nil)
	if err != nil {
		return frame.MuxFrame{}, false
	}
	f, err := frame.ParseMuxPayload(p)
	return f, err == nil
}

// ackWith greets as a mux server acknowledging ack.
func ackWith(ack frame.Ack) func() []byte {
	return func() []byte { return frame.AppendAck(nil, ack) }
}

// rawServer runs script on every connection it accepts, for servers that
// break the protocol. The script must return when the connection fails or
// stop closes, as both do at cleanup.
func rawServer(t testing.TB, script func(nc net.Conn, stop <-chan struct{})) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns []net.Conn
		stop  = make(chan struct{})
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, nc)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer nc.Close()
				script(nc, stop)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		close(stop)
		mu.Lock()
		for _, nc := range conns {
			nc.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

// readRequest reads one whole request (a frame or a batch) and returns
// its payloads, and whether it was a batch.
func readRequest(r *frame.Reader) (payloads [][]byte, batch bool, err error) {
	h, err := r.ReadHeader()
	if err != nil {
		return nil, false, err
	}
	if !h.IsBatch() {
		p, err := r.ReadPayload(nil, h.Len())
		return [][]byte{p}, false, err
	}
	out := make([][]byte, h.Count())
	for i := range out {
		if out[i], err = r.ReadFrame(nil); err != nil {
			return nil, true, err
		}
	}
	return out, true, nil
}

// newClient returns a client with cfg as given, closed at the end of the
// test. With the default Protocol, as users get it, the client asks for
// mux: a tcpez server speaks it, and testServer, a v1 server, sees the
// preface as one more request before the client falls back (see
// TestFallbackToV1Server). Tests whose subject is the v1 wire ask for v1.
//
// TCPEZ_TEST_PROTOCOL=v1 makes the default v1 instead, so that the tests
// that do not ask for a protocol check the v1 wire too (.ci/run runs the
// package both ways).
func newClient(t testing.TB, addrs []string, cfg client.Config) *client.Client {
	t.Helper()
	if cfg.Protocol == client.ProtocolAuto && os.Getenv("TCPEZ_TEST_PROTOCOL") == "v1" {
		cfg.Protocol = client.ProtocolV1
	}
	c, err := client.New(addrs, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// fast returns cfg with reconnects and retries quick enough for tests.
func fast(cfg client.Config) client.Config {
	cfg.ReconnectBackoff = client.Backoff{Base: 2 * time.Millisecond, Max: 50 * time.Millisecond}
	cfg.RetryBackoff = client.Backoff{Base: time.Millisecond, Max: 10 * time.Millisecond}
	cfg.DialTimeout = 5 * time.Second
	return cfg
}

// ctxFor is a safety-net deadline: long enough never to fire on a working
// client, short enough to turn a hang into a failure.
func ctxFor(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}
