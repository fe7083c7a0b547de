package textcmd_test

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/tcpez/tcpez/frame"
	"github.com/tcpez/tcpez/textcmd"
)

// TestLimitsBeforeMemory checks that each limit is reported as a typed
// *SizeError, from the pure parser and from a Reader, before the announced
// size is read or allocated.
func TestLimitsBeforeMemory(t *testing.T) {
	lim := textcmd.Limits{MaxLineLength: 32, MaxArgs: 4, MaxDataSize: 10, MaxParts: 2}
	for _, tc := range []struct {
		name, in string
		want     error
	}{
		{"line", strings.Repeat("x", 40), textcmd.ErrLineTooLong},
		{"line exactly at the limit without its end", strings.Repeat("x", 32), textcmd.ErrLineTooLong},
		{"args", "get a b c d e\r\n", textcmd.ErrTooManyArgs},
		{"data", "set k 0 0 11\r\n", textcmd.ErrDataTooLarge},
		{"parts", "STAT a 1\r\nSTAT b 2\r\nEND\r\n", textcmd.ErrTooManyParts},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, _, err := textcmd.ParseResponse([]byte(tc.in), textcmd.Memcached, lim, nil)
			var se *textcmd.SizeError
			if !errors.Is(err, tc.want) || !errors.Is(err, textcmd.ErrProtocol) || !errors.As(err, &se) {
				t.Fatalf("ParseResponse: %v, want a *SizeError matching %v", err, tc.want)
			}
			r := textcmd.NewReader(strings.NewReader(tc.in), textcmd.Memcached, lim)
			if _, _, err := r.ReadResponse(nil, nil); !errors.Is(err, tc.want) {
				t.Fatalf("Reader: %v, want %v", err, tc.want)
			}
		})
	}
	if _, ok, err := textcmd.NextLen([]byte(strings.Repeat("x", 31)), textcmd.Memcached, lim); ok || err != nil {
		t.Fatalf("31 bytes of a 32-byte line: ok %t, %v; want more wanted", ok, err)
	}
}

// TestReaderSmallBuffer: a line limit over the frame reader's buffer is
// reported as a long line, not a buffer error.
func TestReaderSmallBuffer(t *testing.T) {
	fr := frame.NewReaderSize(strings.NewReader(strings.Repeat("y", 100)+"\r\n"), 16, frame.Limits{})
	r := textcmd.Over(fr, textcmd.Memcached, textcmd.Limits{})
	if _, err := r.NextLen(); !errors.Is(err, textcmd.ErrLineTooLong) {
		t.Fatalf("NextLen: %v, want ErrLineTooLong", err)
	}
}

func TestWriterChecksTokens(t *testing.T) {
	var out bytes.Buffer
	w := textcmd.NewWriter(&out)
	for _, bad := range []string{"", "a b", "a\r", "a\nb"} {
		if err := w.WriteMessage([]byte("get"), [][]byte{[]byte(bad)}, nil); !errors.Is(err, textcmd.ErrBadToken) {
			t.Fatalf("argument %q: %v, want ErrBadToken", bad, err)
		}
	}
	for _, bad := range []string{"", "\x80get", "\x81"} {
		if err := w.WriteMessage([]byte(bad), nil, nil); !errors.Is(err, textcmd.ErrBadToken) {
			t.Fatalf("name %q: %v, want ErrBadToken", bad, err)
		}
	}
	if err := w.WriteMessage([]byte("set"), [][]byte{[]byte("k"), []byte("0"), []byte("0"), []byte("3")}, []byte("a\r\n")); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if got, want := out.String(), "set k 0 0 3\r\na\r\n\r\n"; got != want {
		t.Fatalf("wrote %q, want %q", got, want)
	}
}

// TestNextLenCountsArgsOnlyWhenTheyMayBeTooMany: a short line is measured
// without counting all of its arguments, and a long one still has them
// counted, the limit checked before the byte count, whichever path the
// line takes.
func TestNextLenCountsArgsOnlyWhenTheyMayBeTooMany(t *testing.T) {
	lim := textcmd.Limits{MaxArgs: 4}
	for _, tc := range []struct {
		in   string
		n    int
		want error
	}{
		{"set k 0 0 3\r\nabc\r\n", 18, nil},
		{"get k\r\n", 7, nil},
		{"set k 0 0 x\r\n", 0, textcmd.ErrBadByteCount},
		{"set k 0 0 00000000003\r\nabc\r\n", 28, nil}, // leading zeros, as memcached reads them
		{"set k 0 0 0\r\n\r\n", 15, nil},
		{"set k 0 0 99999999999\r\n", 0, textcmd.ErrBadByteCount},
		{"set k 0\r\n", 9, nil}, // too short to have a byte count
		{"set      k    0    0   3\r\nabc\r\n", 31, nil},
		{"set k 0 0 x a b\r\n", 0, textcmd.ErrTooManyArgs},
		{"get a b c d e\r\n", 0, textcmd.ErrTooManyArgs},
	} {
		n, ok, err := textcmd.NextLen([]byte(tc.in), textcmd.Memcached, lim)
		if !errors.Is(err, tc.want) || (tc.want == nil && (!ok || n != tc.n)) {
			t.Errorf("NextLen(%q) = %d, %t, %v; want %d, %v", tc.in, n, ok, err, tc.n, tc.want)
		}
	}
}

// TestBinaryProtocolAtItsFirstByte: a binary protocol message is refused
// at its magic byte, by every entry point, without waiting for a line
// ending that a binary peer never sends.
func TestBinaryProtocolAtItsFirstByte(t *testing.T) {
	for _, b := range []string{"\x80", "\x81\x0b\x00\x00"} {
		if _, _, ok, err := textcmd.ParseLine([]byte(b), textcmd.Limits{}); ok || !errors.Is(err, textcmd.ErrBinaryProtocol) || !errors.Is(err, frame.ErrProtocol) {
			t.Errorf("ParseLine(%q): ok %v, %v", b, ok, err)
		}
		if _, _, err := textcmd.NextLen([]byte(b), textcmd.Memcached, textcmd.Limits{}); !errors.Is(err, textcmd.ErrBinaryProtocol) {
			t.Errorf("NextLen(%q): %v", b, err)
		}
		// A reader over a stream that stays open after the byte; the
		// deadline only keeps a broken reader from hanging the test.
		client, server := net.Pipe()
		go client.Write([]byte(b))
		_ = server.SetReadDeadline(time.Now().Add(10 * time.Second))
		r := textcmd.NewReader(server, textcmd.Memcached, textcmd.Limits{})
		if _, err := r.NextLen(); !errors.Is(err, textcmd.ErrBinaryProtocol) {
			t.Errorf("Reader.NextLen after %q: %v", b, err)
		}
		client.Close()
		server.Close()
	}
	// The byte inside a line or a data block is data, as any other: a
	// pickled Python value opens with 0x80.
	if _, line, ok, err := textcmd.ParseLine([]byte("get \x80\r\n"), textcmd.Limits{}); !ok || err != nil || string(line) != "get \x80" {
		t.Errorf("a high byte inside a line: %q, %v, %v", line, ok, err)
	}
	var m textcmd.Message
	if _, ok, err := textcmd.ParseMessage([]byte("set k 0 0 2\r\n\x80\x04\r\n"), textcmd.Memcached, textcmd.Limits{}, &m); !ok || err != nil || string(m.Data) != "\x80\x04" {
		t.Errorf("a data block opening with 0x80: %q, %v, %v", m.Data, ok, err)
	}
	_, parts, ok, err := textcmd.ParseResponse([]byte("VALUE k 0 2\r\n\x81\x04\r\nEND\r\n"), textcmd.Memcached, textcmd.Limits{}, nil)
	if !ok || err != nil || len(parts) != 2 || string(parts[0].Data) != "\x81\x04" {
		t.Errorf("a response data block opening with 0x81: %+v, %v, %v", parts, ok, err)
	}
}

// scriptReader plays its steps in order, one a Read: bytes (as many reads
// as they take) or an error, returned once. After the last step it
// returns io.EOF.
type scriptReader struct{ steps []any }

func (s *scriptReader) Read(p []byte) (int, error) {
	for len(s.steps) > 0 {
		switch st := s.steps[0].(type) {
		case error:
			s.steps = s.steps[1:]
			return 0, st
		case string:
			if st == "" {
				s.steps = s.steps[1:]
				continue
			}
			n := copy(p, st)
			s.steps[0] = st[n:]
			return n, nil
		}
	}
	return 0, io.EOF
}

// timeout is a read deadline, as a net.Conn reports it.
var timeout = os.ErrDeadlineExceeded

// TestReaderDeadlineInsideMessage: a read deadline met inside a message
// that fits the buffer consumes nothing, so that reading on later gets
// the message whole and the one after it.
func TestReaderDeadlineInsideMessage(t *testing.T) {
	for name, steps := range map[string][]any{
		"in the line":       {"set k 0 0 5\r", timeout, "\nhello\r\nget k\r\n"},
		"in the data block": {"set k 0 0 5\r\nhel", timeout, "lo\r\nget k\r\n"},
		"before its end":    {"set k 0 0 5\r\nhello\r", timeout, "\nget k\r\n"},
	} {
		t.Run(name, func(t *testing.T) {
			r := textcmd.NewReader(&scriptReader{steps: steps}, textcmd.Memcached, textcmd.Limits{})
			var m textcmd.Message
			if _, err := r.ReadMessage(nil, &m); !errors.Is(err, timeout) || errors.Is(err, textcmd.ErrProtocol) {
				t.Fatalf("ReadMessage at the deadline: %v, want the deadline as it is", err)
			}
			if _, err := r.ReadMessage(nil, &m); err != nil || string(m.Name) != "set" || string(m.Data) != "hello" {
				t.Fatalf("ReadMessage after it: %q %q %q, %v; want the set whole", m.Name, m.Args, m.Data, err)
			}
			if _, err := r.ReadMessage(nil, &m); err != nil || string(m.Name) != "get" {
				t.Fatalf("the next ReadMessage: %q, %v; want the get", m.Name, err)
			}
		})
	}
}

// TestReaderDeadlineAfterConsuming: a read deadline met once part of a
// message is consumed — a data block larger than the buffer, a response
// whose first parts are read — leaves the stream out of sync: ErrTruncated,
// a protocol error wrapping the deadline, from that read and every later
// one. A deadline before the large message's first byte is consumed
// passes as it is.
func TestReaderDeadlineAfterConsuming(t *testing.T) {
	lim := textcmd.Limits{MaxLineLength: 16}
	data := strings.Repeat("d", 40)
	var m textcmd.Message
	over := func(steps ...any) *textcmd.Reader {
		return textcmd.Over(frame.NewReaderSize(&scriptReader{steps: steps}, 16, frame.Limits{}), textcmd.Memcached, lim)
	}
	outOfSync := func(t *testing.T, what string, err error) {
		t.Helper()
		if !errors.Is(err, textcmd.ErrTruncated) || !errors.Is(err, textcmd.ErrProtocol) || !errors.Is(err, timeout) {
			t.Fatalf("%s: %v, want ErrTruncated wrapping the deadline", what, err)
		}
	}

	r := over("set k 0 0 40\r\n"+data[:20], timeout, data[20:]+"\r\nget k\r\n")
	_, err := r.ReadMessage(nil, &m)
	outOfSync(t, "a deadline inside a data block larger than the buffer", err)
	_, err = r.ReadMessage(nil, &m)
	outOfSync(t, "the read after it", err)
	if _, err := r.NextLen(); !errors.Is(err, textcmd.ErrTruncated) {
		t.Fatalf("NextLen after it: %v, want ErrTruncated", err)
	}

	r = over("set k 0 0 40\r\nd", timeout, data[1:]+"\r\nget k\r\n")
	if _, err := r.ReadMessage(nil, &m); !errors.Is(err, timeout) || errors.Is(err, textcmd.ErrProtocol) {
		t.Fatalf("a deadline before the buffer filled: %v, want the deadline as it is", err)
	}
	if _, err := r.ReadMessage(nil, &m); err != nil || string(m.Data) != data {
		t.Fatalf("the large set after it: %q, %v", m.Data, err)
	}
	if _, err := r.ReadMessage(nil, &m); err != nil || string(m.Name) != "get" {
		t.Fatalf("the get after it: %q, %v", m.Name, err)
	}

	r = textcmd.NewReader(&scriptReader{steps: []any{"VALUE k 0 1\r\na\r\n", timeout, "END\r\nSTORED\r\n"}}, textcmd.Memcached, textcmd.Limits{})
	_, _, err = r.ReadResponse(nil, nil)
	outOfSync(t, "a deadline after a response's first part", err)
	_, _, err = r.ReadResponse(nil, nil)
	outOfSync(t, "the response read after it", err)
}
