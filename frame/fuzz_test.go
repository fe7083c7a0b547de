package frame_test

import (
	"bytes"
	"errors"
	"io"
	"slices"
	"testing"

	"github.com/tcpez/tcpez/frame"
)

// fuzzLimits keep announced sizes small so the fuzzer explores parsing, not
// allocation.
var fuzzLimits = frame.Limits{MaxFrameSize: 1 << 12, MaxBatchCount: 64}

// splitReader returns its data in two reads, split at a chosen point, the
// way a stream arrives in pieces.
type splitReader struct {
	parts [][]byte
}

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

// chunkReader returns its data in reads of varying sizes, some filling the
// reader's buffer and some not, so that a pooled Reader borrows and gives
// back buffers as it goes.
type chunkReader struct {
	data []byte
	seed int
	i    int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	c.i++
	size := 1 + (c.seed+c.i*7)%40
	n := copy(p[:min(len(p), size)], c.data)
	c.data = c.data[n:]
	return n, nil
}

// parseAll decodes data with the pure functions, the reference for Reader.
func parseAll(data []byte, lim frame.Limits) ([]message, error) {
	var out []message
	for len(data) > 0 {
		rest, h, ok, err := frame.ParseHeader(data, lim)
		if err != nil {
			return out, err
		}
		if !ok {
			return out, frame.ErrTruncated
		}
		if !h.IsBatch() {
			if len(rest) < h.Len() {
				return out, frame.ErrTruncated
			}
			out = append(out, message{frames: []string{string(rest[:h.Len()])}})
			data = rest[h.Len():]
			continue
		}
		m := message{batch: true}
		for range h.Count() {
			var p []byte
			rest, p, ok, err = frame.ParseFrame(rest, lim)
			if err != nil {
				return out, err
			}
			if !ok {
				return out, frame.ErrTruncated
			}
			m.frames = append(m.frames, string(p))
		}
		out = append(out, m)
		data = rest
	}
	return out, nil
}

func sameError(a, b error) bool {
	if a == nil || b == nil {
		return a == b
	}
	for _, target := range []error{frame.ErrTruncated, frame.ErrMalformedHeader, frame.ErrNegativeLength, frame.ErrFrameTooLarge, frame.ErrBatchTooLarge} {
		if errors.Is(a, target) != errors.Is(b, target) {
			return false
		}
	}
	return true
}

// FuzzReader requires the Reader to agree with the pure parser on every
// input, and to parse the same whatever point the stream is split at, and
// whatever buffers it borrows on the way.
func FuzzReader(f *testing.F) {
	f.Add(frame.AppendFrame(nil, []byte("PING")), uint16(2))
	f.Add(frame.AppendBatch(nil, []byte("a"), nil, []byte("bc")), uint16(5))
	f.Add(append(frame.AppendFrame(nil, nil), 0x80, 0, 0, 0), uint16(4))
	f.Add([]byte{0xff, 0xff, 0xff, 0xfe, 0xff, 0xff, 0xff, 0xff}, uint16(1))
	f.Fuzz(func(t *testing.T, data []byte, split uint16) {
		want, wantErr := parseAll(data, fuzzLimits)
		whole, wholeErr := decodeStream(bytes.NewReader(data), fuzzLimits)
		if !slices.EqualFunc(whole, want, equalMessage) || !sameError(wholeErr, wantErr) {
			t.Fatalf("Reader: %+v, %v; parser: %+v, %v", whole, wholeErr, want, wantErr)
		}
		cut := int(split) % (len(data) + 1)
		parts, partsErr := decodeStream(&splitReader{parts: [][]byte{data[:cut], data[cut:]}}, fuzzLimits)
		if !slices.EqualFunc(parts, want, equalMessage) || !sameError(partsErr, wantErr) {
			t.Fatalf("split at %d: %+v, %v; whole: %+v, %v", cut, parts, partsErr, want, wantErr)
		}
		pooled, pooledErr := decodeStreamPooled(&chunkReader{data: data, seed: int(split)}, fuzzLimits, frame.NewBufferPool(64))
		if !slices.EqualFunc(pooled, want, equalMessage) || !sameError(pooledErr, wantErr) {
			t.Fatalf("pooled, chunks from %d: %+v, %v; whole: %+v, %v", split, pooled, pooledErr, want, wantErr)
		}
	})
}
