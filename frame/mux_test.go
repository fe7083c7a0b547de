package frame_test

import (
	"bytes"
	"errors"
	"slices"
	"testing"

	"github.com/tcpez/tcpez/frame"
	"github.com/tcpez/tcpez/internal/spec"
)

// muxGolden says in Go values what each mux example of docs/PROTOCOL.md
// holds: the frames of its request line, then those of its answer line.
var muxGolden = map[string]struct{ req, ans []frame.MuxFrame }{
	"A mux request and its answer": {
		req: []frame.MuxFrame{{Kind: frame.KindRequest, ID: 1, Body: []byte("PING")}},
		ans: []frame.MuxFrame{{Kind: frame.KindAnswer, ID: 1, Body: []byte("PING")}},
	},
	"An empty mux request": {
		req: []frame.MuxFrame{{Kind: frame.KindRequest, ID: 7, Body: []byte{}}},
		ans: []frame.MuxFrame{{Kind: frame.KindAnswer, ID: 7, Body: []byte{}}},
	},
	"Two mux requests answered out of order": {
		req: []frame.MuxFrame{
			{Kind: frame.KindRequest, ID: 1, Body: []byte("SLOW")},
			{Kind: frame.KindRequest, ID: 2, Body: []byte("PING")},
		},
		ans: []frame.MuxFrame{
			{Kind: frame.KindAnswer, ID: 2, Body: []byte("PING")},
			{Kind: frame.KindAnswer, ID: 1, Body: []byte("SLOW")},
		},
	},
	"A mux handler error": {
		req: []frame.MuxFrame{{Kind: frame.KindRequest, ID: 3, Body: []byte("FAIL")}},
		ans: []frame.MuxFrame{errFrame(frame.KindError, 3, frame.CodeHandler, "boom")},
	},
	"A cancelled mux call": {
		req: []frame.MuxFrame{
			{Kind: frame.KindRequest, ID: 4, Body: []byte("WAIT")},
			{Kind: frame.KindCancel, ID: 4, Body: []byte{}},
		},
		ans: []frame.MuxFrame{errFrame(frame.KindError, 4, frame.CodeCancelled, "cancelled")},
	},
	"A mux call cancelled at its deadline": {
		req: []frame.MuxFrame{
			{Kind: frame.KindRequest, ID: 5, Body: []byte("WAIT")},
			{Kind: frame.KindCancel, ID: 5, Body: []byte{0, 8}},
		},
		ans: []frame.MuxFrame{errFrame(frame.KindError, 5, frame.CodeDeadline, "deadline exceeded")},
	},
	"A notification": {
		ans: []frame.MuxFrame{{Kind: frame.KindNotify, Body: []byte("hello")}},
	},
	"A call from the server": {
		ans: []frame.MuxFrame{{Kind: frame.KindCall, ID: 1, Body: []byte("PING")}},
	},
	"The client's answer to a call from the server": {
		req: []frame.MuxFrame{{Kind: frame.KindAnswer, ID: 1, Body: []byte("PONG")}},
	},
	"A client without a handler refuses a call from the server": {
		req: []frame.MuxFrame{errFrame(frame.KindError, 2, frame.CodeNoHandler, "no handler")},
	},
	"A stream, echoed": {
		req: []frame.MuxFrame{
			{Kind: frame.KindOpen, ID: 1, Body: []byte("ECHO")},
			{Kind: frame.KindData, ID: 1, Body: []byte("PING")},
			{Kind: frame.KindData, Flags: frame.FlagMore, ID: 1, Body: []byte("PI")},
			{Kind: frame.KindData, ID: 1, Body: []byte("NG")},
			{Kind: frame.KindEnd, ID: 1, Body: []byte{}},
		},
		ans: []frame.MuxFrame{
			{Kind: frame.KindData, ID: 1, Body: []byte("PING")},
			{Kind: frame.KindData, ID: 1, Body: []byte("PING")},
			{Kind: frame.KindEnd, ID: 1, Body: []byte{}},
		},
	},
	"A cancelled stream": {
		req: []frame.MuxFrame{
			{Kind: frame.KindOpen, ID: 2, Body: []byte("WAIT")},
			{Kind: frame.KindCancel, ID: 2, Body: []byte{}},
		},
		ans: []frame.MuxFrame{errFrame(frame.KindError, 2, frame.CodeCancelled, "cancelled")},
	},
	"A window update": {
		req: []frame.MuxFrame{windowFrame(1, frame.StreamWindow)},
	},
	"A go-away": {
		ans: []frame.MuxFrame{errFrame(frame.KindGoAway, 0, frame.CodeShuttingDown, "shutting down")},
	},
}

func errFrame(k frame.Kind, id uint32, code frame.Code, msg string) frame.MuxFrame {
	return frame.MuxFrame{Kind: k, ID: id, Body: frame.AppendMuxError(nil, k, id, code, msg)[frame.HeaderSize+frame.MuxHeaderSize:]}
}

func windowFrame(id, n uint32) frame.MuxFrame {
	return frame.MuxFrame{Kind: frame.KindWindow, ID: id, Body: frame.AppendWindow(nil, id, n)[frame.HeaderSize+frame.MuxHeaderSize:]}
}

func appendMuxFrames(buf []byte, fs []frame.MuxFrame) []byte {
	for _, f := range fs {
		buf = frame.AppendMuxFrame(buf, f)
	}
	return buf
}

func parseMuxAll(data []byte, lim frame.Limits) ([]frame.MuxFrame, error) {
	var out []frame.MuxFrame
	for len(data) > 0 {
		rest, f, ok, err := frame.ParseMux(data, lim)
		if err != nil {
			return out, err
		}
		if !ok {
			return out, frame.ErrTruncated
		}
		out = append(out, f)
		data = rest
	}
	return out, nil
}

func equalMux(a, b frame.MuxFrame) bool {
	return a.Kind == b.Kind && a.Flags == b.Flags && a.ID == b.ID && bytes.Equal(a.Body, b.Body)
}

func TestMuxGoldenExamples(t *testing.T) {
	examples, err := spec.LoadMux(spec.Path())
	if err != nil {
		t.Fatal(err)
	}
	if len(examples) < 10 {
		t.Fatalf("found %d mux examples, want at least 10", len(examples))
	}
	seen := map[string]bool{}
	for _, ex := range examples {
		t.Run(ex.Name, func(t *testing.T) {
			seen[ex.Name] = true
			switch {
			case ex.Malformed != nil:
				_, err := parseMuxAll(ex.Malformed, frame.Limits{})
				if ex.Error != "ErrMuxMalformed" || !errors.Is(err, frame.ErrMuxMalformed) || !errors.Is(err, frame.ErrProtocol) {
					t.Fatalf("ParseMux(% x) = %v, want %s", ex.Malformed, err, ex.Error)
				}
				return
			case ex.Name == "The preface and the acknowledgement":
				if got := frame.AppendPreface(nil); !bytes.Equal(got, ex.Request) {
					t.Errorf("preface\n got % x\nwant % x", got, ex.Request)
				}
				if v, ok := frame.IsPreface(ex.Request[frame.HeaderSize:]); !ok || v != frame.MuxVersion {
					t.Errorf("IsPreface = %d, %v", v, ok)
				}
				ack := frame.Ack{Version: frame.MuxVersion, MaxInFlight: 128, MaxFrameSize: frame.DefaultMaxFrameSize}
				if got := frame.AppendAck(nil, ack); !bytes.Equal(got, ex.Answer) {
					t.Errorf("ack\n got % x\nwant % x", got, ex.Answer)
				}
				if got, ok := frame.ParseAck(ex.Answer[frame.HeaderSize:]); !ok || got != ack {
					t.Errorf("ParseAck = %+v, %v", got, ok)
				}
				return
			}
			want, ok := muxGolden[ex.Name]
			if !ok {
				t.Fatalf("mux example %q has no Go meaning in muxGolden", ex.Name)
			}
			for _, side := range []struct {
				bytes  []byte
				frames []frame.MuxFrame
			}{{ex.Request, want.req}, {ex.Answer, want.ans}} {
				if got := appendMuxFrames(nil, side.frames); !bytes.Equal(got, side.bytes) {
					t.Errorf("encoding\n got % x\nwant % x", got, side.bytes)
				}
				got, err := parseMuxAll(side.bytes, frame.Limits{})
				if err != nil || !slices.EqualFunc(got, side.frames, equalMux) {
					t.Errorf("parsing % x = %+v, %v; want %+v", side.bytes, got, err, side.frames)
				}
			}
		})
	}
	for name := range muxGolden {
		if !seen[name] {
			t.Errorf("muxGolden has %q, which the spec no longer shows", name)
		}
	}
}

func TestPrefaceIsNotAck(t *testing.T) {
	// An echo server answers the preface with the preface: that must read
	// as a v1 answer.
	p := frame.AppendPreface(nil)[frame.HeaderSize:]
	if _, ok := frame.ParseAck(p); ok {
		t.Fatal("the preface parses as an acknowledgement")
	}
	if _, ok := frame.IsPreface([]byte("PINGPINGPING")); ok {
		t.Fatal("a 12-byte request parses as a preface")
	}
	a := frame.AppendAck(nil, frame.Ack{Version: 1})[frame.HeaderSize:]
	if _, ok := frame.IsPreface(a); ok {
		t.Fatal("the acknowledgement parses as a preface")
	}
}

func TestMuxErrorCode(t *testing.T) {
	buf := frame.AppendMuxError(nil, frame.KindError, 9, frame.CodeOverloaded, "busy")
	_, f, ok, err := frame.ParseMux(buf, frame.Limits{})
	if !ok || err != nil {
		t.Fatal(ok, err)
	}
	code, msg := f.ErrorCode()
	if code != frame.CodeOverloaded || msg != "busy" || !code.NotRun() || frame.CodeHandler.NotRun() {
		t.Fatalf("got %v %q", code, msg)
	}
	// A partial frame is not yet a frame, and not an error.
	if _, _, ok, err := frame.ParseMux(buf[:len(buf)-1], frame.Limits{}); ok || err != nil {
		t.Fatalf("partial frame: ok %v err %v", ok, err)
	}
	if _, _, _, err := frame.ParseMux(buf, frame.Limits{MaxFrameSize: 4}); !errors.Is(err, frame.ErrFrameTooLarge) {
		t.Fatalf("over the limit: %v", err)
	}
}

// FuzzParseMux checks that ParseMux never panics, that what it accepts it
// re-encodes to the same bytes, and that a stream split in two parses the
// same as whole.
func FuzzParseMux(f *testing.F) {
	examples, err := spec.LoadMux(spec.Path())
	if err != nil {
		f.Fatal(err)
	}
	for _, ex := range examples {
		for _, b := range [][]byte{ex.Request, ex.Answer, ex.Malformed} {
			if b != nil {
				f.Add(b, uint8(3))
			}
		}
	}
	// Version 3's kinds beyond the spec's examples: a chunked message, an
	// end with a trailer, grants, and their near misses.
	more := frame.AppendMuxFrame(nil, frame.MuxFrame{Kind: frame.KindData, Flags: frame.FlagMore, ID: 7, Body: []byte("chunk")})
	f.Add(append(more, frame.AppendMux(nil, frame.KindData, 7, nil)...), uint8(11))
	f.Add(frame.AppendMux(nil, frame.KindEnd, 7, []byte("trailer")), uint8(5))
	f.Add(append(frame.AppendWindow(nil, 7, 1), frame.AppendWindow(nil, 0xffffffff, 0)...), uint8(14))
	f.Add(frame.AppendMux(nil, frame.KindWindow, 7, []byte{0, 0, 1}), uint8(2))
	f.Add(frame.AppendMuxFrame(nil, frame.MuxFrame{Kind: frame.KindOpen, Flags: frame.FlagMore, ID: 1}), uint8(0))
	f.Add(frame.AppendMux(nil, frame.Kind(12), 1, nil), uint8(1))
	f.Fuzz(func(t *testing.T, data []byte, split uint8) {
		frames, err := parseMuxAll(data, fuzzLimits)
		enc := appendMuxFrames(nil, frames)
		if !bytes.HasPrefix(data, enc) {
			t.Fatalf("re-encoding % x is not a prefix of the input % x", enc, data)
		}
		if err == nil && !bytes.Equal(enc, data) {
			t.Fatalf("accepted % x but re-encodes to % x", data, enc)
		}
		// Parsing a prefix yields a prefix of the frames, and never an error
		// that the whole did not give.
		cut := int(split) % (len(data) + 1)
		part, perr := parseMuxAll(data[:cut], fuzzLimits)
		if perr != nil && !errors.Is(perr, frame.ErrTruncated) && err == nil {
			t.Fatalf("prefix of valid input failed: %v", perr)
		}
		if len(part) > len(frames) || !slices.EqualFunc(part, frames[:len(part)], equalMux) {
			t.Fatalf("prefix parsed to %+v, whole to %+v", part, frames)
		}
	})
}
