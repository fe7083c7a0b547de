package server_test

import (
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"testing"
	"time"

	"github.com/tcpez/tcpez/frame"
	"github.com/tcpez/tcpez/server"
)

var fuzzLimits = frame.Limits{MaxFrameSize: 4096, MaxBatchCount: 64}

// answeredPrefix is how much of a request stream an echo server answers:
// every batch header and frame parsed whole before the first fault or the
// end, since the server streams a batch's answers as they are ready.
func answeredPrefix(data []byte) int {
	done, inBatch := 0, 0
	for len(data)-done >= frame.HeaderSize {
		h := frame.Header(binary.BigEndian.Uint32(data[done:]))
		if inBatch == 0 && h.IsBatch() {
			if fuzzLimits.CheckHeader(h) != nil {
				return done
			}
			inBatch = h.Count()
			done += frame.HeaderSize
			continue
		}
		if fuzzLimits.CheckLength(h) != nil || len(data)-done-frame.HeaderSize < h.Len() {
			return done
		}
		done += frame.HeaderSize + h.Len()
		if inBatch > 0 {
			inBatch--
		}
	}
	return done
}

// splitExchange writes lead, then data in two pieces cut at split, then
// shuts its side, and returns all the server sent until it closed. A
// server that neither closes nor answers within safety fails t.
func splitExchange(t *testing.T, addr string, lead, data []byte, split uint16) []byte {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(safety))
	cut := int(split) % (len(data) + 1)
	go func() {
		_, _ = c.Write(lead)
		_, _ = c.Write(data[:cut])
		_, _ = c.Write(data[cut:])
		_ = c.(*net.TCPConn).CloseWrite()
	}()
	got, err := io.ReadAll(c)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("the server neither answered nor closed within %v", safety)
	}
	return got
}

// FuzzConn drives the server's connection loop with arbitrary bytes,
// written in two pieces: the server answers exactly the whole messages
// before the first fault, then closes, and never hangs or crashes.
func FuzzConn(f *testing.F) {
	f.Add(frame.AppendFrame(nil, []byte("PING")), uint16(3))
	f.Add(frame.AppendBatch(nil, []byte("a"), nil, []byte("bc")), uint16(6))
	f.Add(append(frame.AppendFrame(nil, nil), 0x80, 0, 0, 0), uint16(0))
	f.Add(append(frame.AppendHeader(nil, -3), frame.AppendFrame(nil, []byte("x"))...), uint16(9))
	f.Add([]byte("GET / HTTP/1.1\r\n\r\n"), uint16(4))
	_, addr := startServer(f, echo, server.Config{Limits: fuzzLimits, ReadTimeout: 2 * time.Second})
	f.Fuzz(func(t *testing.T, data []byte, split uint16) {
		got := splitExchange(t, addr, nil, data, split)
		want := data[:answeredPrefix(data)]
		if !bytes.Equal(got, want) {
			t.Fatalf("answers % x\nwant    % x", got, want)
		}
	})
}
