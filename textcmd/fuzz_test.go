package textcmd_test

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/tcpez/tcpez/textcmd"
)

// fuzzLimits keep sizes small so the fuzzer explores parsing, not
// allocation.
var fuzzLimits = textcmd.Limits{MaxLineLength: 64, MaxArgs: 6, MaxDataSize: 100, MaxParts: 5}

// splitReader returns its data in two reads, split at a chosen point.
type splitReader struct{ parts [][]byte }

func (s *splitReader) Read(p []byte) (int, error) {
	for len(s.parts) > 0 && len(s.parts[0]) == 0 {
		s.parts = s.parts[1:]
	}
	if len(s.parts) == 0 {
		return 0, io.EOF
	}
	n := copy(p, s.parts[0])
	s.parts[0] = s.parts[0][n:]
	return n, nil
}

// parseAll decodes data as responses with the pure functions, the
// reference for Reader.
func parseAll(data []byte) ([][]msg, error) {
	var out [][]msg
	for len(data) > 0 {
		rest, parts, ok, err := textcmd.ParseResponse(data, textcmd.Memcached, fuzzLimits, nil)
		if err != nil {
			return out, err
		}
		if !ok {
			return out, textcmd.ErrTruncated
		}
		var ms []msg
		for _, p := range parts {
			ms = append(ms, toMsg(p))
		}
		out = append(out, ms)
		data = rest
	}
	return out, nil
}

func readAll(rd io.Reader) ([][]msg, error) {
	r := textcmd.NewReader(rd, textcmd.Memcached, fuzzLimits)
	var out [][]msg
	for {
		_, parts, err := r.ReadResponse(nil, nil)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		var ms []msg
		for _, p := range parts {
			ms = append(ms, toMsg(p))
		}
		out = append(out, ms)
	}
}

func sameError(a, b error) bool {
	if a == nil || b == nil {
		return a == b
	}
	for _, target := range []error{textcmd.ErrTruncated, textcmd.ErrLineTooLong, textcmd.ErrTooManyArgs,
		textcmd.ErrDataTooLarge, textcmd.ErrTooManyParts, textcmd.ErrBadByteCount, textcmd.ErrBadDataEnd} {
		if errors.Is(a, target) != errors.Is(b, target) {
			return false
		}
	}
	return true
}

func equalResponses(a, b [][]msg) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !equalMsgs(a[i], b[i]) {
			return false
		}
	}
	return true
}

// FuzzReader requires the Reader to agree with the pure parser on every
// input, wherever the stream is split, and what it parsed to encode and
// parse back to the same messages.
func FuzzReader(f *testing.F) {
	f.Add([]byte("VALUE k 0 5\r\nhello\r\nEND\r\n"), uint16(7))
	f.Add([]byte("set k 0 0 2 noreply\r\nhi\r\nget a b\n"), uint16(3))
	f.Add([]byte("STAT pid 1\r\nSTAT x y\r\nEND\r\nSTORED\r\n"), uint16(20))
	f.Add([]byte("VALUE k 0 99999999999\r\n"), uint16(1))
	f.Add([]byte("VALUE k 0 2\r\nhello\r\n"), uint16(1))
	f.Add([]byte("  \r\n a  b \n"), uint16(2))
	f.Fuzz(func(t *testing.T, data []byte, split uint16) {
		want, wantErr := parseAll(data)
		whole, wholeErr := readAll(bytes.NewReader(data))
		if !equalResponses(whole, want) || !sameError(wholeErr, wantErr) {
			t.Fatalf("Reader: %+v, %v; parser: %+v, %v", whole, wholeErr, want, wantErr)
		}
		cut := int(split) % (len(data) + 1)
		parts, partsErr := readAll(&splitReader{parts: [][]byte{data[:cut], data[cut:]}})
		if !equalResponses(parts, want) || !sameError(partsErr, wantErr) {
			t.Fatalf("split at %d: %+v, %v; whole: %+v, %v", cut, parts, partsErr, want, wantErr)
		}
		// What parsed encodes canonically and parses back the same.
		var enc []byte
		for _, resp := range want {
			enc = append(enc, encodeMsgs(resp)...)
		}
		if again, err := parseAll(enc); err == nil && !equalResponses(again, want) {
			t.Fatalf("re-encoded %q parses as %+v, want %+v", enc, again, want)
		}
	})
}
