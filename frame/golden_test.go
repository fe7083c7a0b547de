package frame_test

import (
	"bytes"
	"errors"
	"io"
	"slices"
	"testing"

	"github.com/tcpez/tcpez/frame"
	"github.com/tcpez/tcpez/internal/spec"
)

// message is one request or answer: a single frame, or a batch of frames.
type message struct {
	batch  bool
	frames []string
}

// goldenMessages says in Go values what each example of docs/PROTOCOL.md
// means; the test checks both directions against the document's bytes.
var goldenMessages = map[string][]message{
	"A single frame":          {{frames: []string{"PING"}}},
	"An empty frame":          {{frames: []string{""}}},
	"Two frames back to back": {{frames: []string{"PING"}}, {frames: []string{"PING1"}}},
	"A batch of two frames":   {{batch: true, frames: []string{"PING1", "PING2"}}},
	"A batch holding an empty frame, then a single frame": {
		{batch: true, frames: []string{""}}, {frames: []string{"PING"}},
	},
}

var goldenErrors = map[string]error{
	"ErrMalformedHeader": frame.ErrMalformedHeader,
	"ErrNegativeLength":  frame.ErrNegativeLength,
	"ErrFrameTooLarge":   frame.ErrFrameTooLarge,
	"ErrBatchTooLarge":   frame.ErrBatchTooLarge,
	"ErrTruncated":       frame.ErrTruncated,
}

func loadSpec(t *testing.T) []spec.Example {
	t.Helper()
	examples, err := spec.Load(spec.Path())
	if err != nil {
		t.Fatal(err)
	}
	if len(examples) < 10 {
		t.Fatalf("found %d examples in the spec, want at least 10", len(examples))
	}
	return examples
}

func encode(msgs []message) []byte {
	var buf []byte
	for _, m := range msgs {
		if !m.batch {
			buf = frame.AppendFrame(buf, []byte(m.frames[0]))
			continue
		}
		var ps [][]byte
		for _, f := range m.frames {
			ps = append(ps, []byte(f))
		}
		buf = frame.AppendBatch(buf, ps...)
	}
	return buf
}

// decode reads messages with a Reader until the end of the stream.
func decode(data []byte, lim frame.Limits) ([]message, error) {
	return decodeStream(bytes.NewReader(data), lim)
}

// decodeStream reads through a small buffer so that frames straddle refills.
func decodeStream(rd io.Reader, lim frame.Limits) ([]message, error) {
	return decodeStreamPooled(rd, lim, nil)
}

// decodeStreamPooled is decodeStream with a Reader that may borrow from
// pool.
func decodeStreamPooled(rd io.Reader, lim frame.Limits, pool *frame.BufferPool) ([]message, error) {
	r := frame.NewReaderSize(rd, 16, lim)
	r.SetPool(pool)
	var out []message
	for {
		h, err := r.ReadHeader()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		if !h.IsBatch() {
			p, err := r.ReadPayload(nil, h.Len())
			if err != nil {
				return out, err
			}
			out = append(out, message{frames: []string{string(p)}})
			continue
		}
		m := message{batch: true}
		for range h.Count() {
			p, err := r.ReadFrame(nil)
			if err != nil {
				return out, err
			}
			m.frames = append(m.frames, string(p))
		}
		out = append(out, m)
	}
}

func TestGoldenExamples(t *testing.T) {
	seen := map[string]bool{}
	for _, ex := range loadSpec(t) {
		t.Run(ex.Name, func(t *testing.T) {
			seen[ex.Name] = true
			if ex.Malformed != nil {
				want, ok := goldenErrors[ex.Error]
				if !ok {
					t.Fatalf("spec names unknown error %q", ex.Error)
				}
				_, err := decode(ex.Malformed, frame.Limits{})
				if !errors.Is(err, want) || !errors.Is(err, frame.ErrProtocol) {
					t.Fatalf("decode(% x) = %v, want %v", ex.Malformed, err, want)
				}
				return
			}
			msgs, ok := goldenMessages[ex.Name]
			if !ok {
				t.Fatalf("spec example %q has no Go meaning in goldenMessages", ex.Name)
			}
			if got := encode(msgs); !bytes.Equal(got, ex.Request) {
				t.Errorf("encoding:\n got % x\nwant % x", got, ex.Request)
			}
			got, err := decode(ex.Request, frame.Limits{})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.EqualFunc(got, msgs, equalMessage) {
				t.Errorf("decoded %+v, want %+v", got, msgs)
			}
			// An echo server answers with the same structure and payloads.
			if !bytes.Equal(ex.Answer, ex.Request) {
				t.Errorf("echo answer % x differs from request % x", ex.Answer, ex.Request)
			}
		})
	}
	for name := range goldenMessages {
		if !seen[name] {
			t.Errorf("goldenMessages has %q, which the spec no longer shows", name)
		}
	}
}

func equalMessage(a, b message) bool {
	return a.batch == b.batch && slices.Equal(a.frames, b.frames)
}
