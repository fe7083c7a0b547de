package textcmd_test

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/tcpez/tcpez/internal/spec"
	"github.com/tcpez/tcpez/textcmd"
)

// msg is a message as the tests write it.
type msg struct {
	name string
	args []string
	data *string
}

func d(s string) *string { return &s }

// goldenRequests says in Go values what each request of
// docs/TEXTPROTOCOL.md means; the test checks both directions against the
// document's bytes. (Answers are checked by parsing and re-encoding.)
var goldenRequests = map[string][]msg{
	"A set, then a get of the key": {
		{"set", []string{"ex:a", "5", "0", "5"}, d("hello")}, {"get", []string{"ex:a"}, nil},
	},
	"A get of two keys, one missing": {
		{"set", []string{"ex:b", "0", "0", "2"}, d("hi")}, {"get", []string{"ex:b", "ex:missing"}, nil},
	},
	"A data block holding CR LF": {
		{"set", []string{"ex:c", "0", "0", "4"}, d("\r\n\r\n")}, {"get", []string{"ex:c"}, nil},
	},
	"An empty data block": {
		{"set", []string{"ex:d", "0", "0", "0"}, d("")}, {"get", []string{"ex:d"}, nil},
	},
	"The byte count before a trailing argument": {
		{"set", []string{"ex:e", "0", "0", "1", "noreply"}, d("x")}, {"get", []string{"ex:e"}, nil},
	},
	"Line endings and spaces": {
		{"get", []string{"ex:missing"}, nil}, {"get", []string{"ex:missing2"}, nil},
	},
	"An unknown command":    {{"bogus", []string{"1", "2"}, nil}},
	"incr on a missing key": {{"incr", []string{"ex:f", "1"}, nil}},
}

// canonical examples encode back to the document's bytes; the others use
// the leniencies of the parser (bare LF, runs of spaces).
var lenient = map[string]bool{"Line endings and spaces": true}

var goldenErrors = map[string]error{
	"ErrBadByteCount":   textcmd.ErrBadByteCount,
	"ErrBadDataEnd":     textcmd.ErrBadDataEnd,
	"ErrDataTooLarge":   textcmd.ErrDataTooLarge,
	"ErrTruncated":      textcmd.ErrTruncated,
	"ErrLineTooLong":    textcmd.ErrLineTooLong,
	"ErrBinaryProtocol": textcmd.ErrBinaryProtocol,
}

func toMsg(m textcmd.Message) msg {
	out := msg{name: string(m.Name)}
	for _, a := range m.Args {
		out.args = append(out.args, string(a))
	}
	if m.Data != nil {
		out.data = d(string(m.Data))
	}
	return out
}

func equalMsgs(a, b []msg) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		if x.name != y.name || len(x.args) != len(y.args) || (x.data == nil) != (y.data == nil) ||
			(x.data != nil && *x.data != *y.data) {
			return false
		}
		for j := range x.args {
			if x.args[j] != y.args[j] {
				return false
			}
		}
	}
	return true
}

func encodeMsgs(ms []msg) []byte {
	var buf []byte
	for _, m := range ms {
		var args [][]byte
		for _, a := range m.args {
			args = append(args, []byte(a))
		}
		var data []byte
		if m.data != nil {
			data = append([]byte{}, *m.data...)
		}
		buf = textcmd.AppendMessage(buf, []byte(m.name), args, data)
	}
	return buf
}

// readRequests reads messages with a Reader until the end of the stream.
func readRequests(data []byte, g textcmd.Grammar, lim textcmd.Limits) ([]msg, error) {
	r := textcmd.NewReader(bytes.NewReader(data), g, lim)
	var out []msg
	var m textcmd.Message
	for {
		if _, err := r.ReadMessage(nil, &m); err != nil {
			if err == io.EOF {
				err = nil
			}
			return out, err
		}
		out = append(out, toMsg(m))
	}
}

func TestGoldenExamples(t *testing.T) {
	examples, err := spec.Load(spec.TextPath())
	if err != nil {
		t.Fatal(err)
	}
	if len(examples) < 10 {
		t.Fatalf("found %d examples in the spec, want at least 10", len(examples))
	}
	seen := map[string]bool{}
	for _, ex := range examples {
		t.Run(ex.Name, func(t *testing.T) {
			seen[ex.Name] = true
			if ex.Malformed != nil {
				want, ok := goldenErrors[ex.Error]
				if !ok {
					t.Fatalf("spec names unknown error %q", ex.Error)
				}
				_, err := readRequests(ex.Malformed, textcmd.Memcached, textcmd.Limits{})
				if !errors.Is(err, want) || !errors.Is(err, textcmd.ErrProtocol) {
					t.Fatalf("reading %q: %v, want %v", ex.Malformed, err, want)
				}
				if ex.Answer != nil {
					checkAnswer(t, ex.Answer)
				}
				return
			}
			want, ok := goldenRequests[ex.Name]
			if !ok {
				t.Fatalf("spec example %q has no Go meaning in goldenRequests", ex.Name)
			}
			if got := encodeMsgs(want); !lenient[ex.Name] && !bytes.Equal(got, ex.Request) {
				t.Errorf("encoding:\n got %q\nwant %q", got, ex.Request)
			}
			got, err := readRequests(ex.Request, textcmd.Memcached, textcmd.Limits{})
			if err != nil || !equalMsgs(got, want) {
				t.Fatalf("read %+v, %v; want %+v", got, err, want)
			}
			checkAnswer(t, ex.Answer)
		})
	}
	for name := range goldenRequests {
		if !seen[name] {
			t.Errorf("goldenRequests has %q, which the spec no longer shows", name)
		}
	}
}

// checkAnswer reads the answer stream as responses and encodes them back
// to the same bytes.
func checkAnswer(t *testing.T, answer []byte) {
	t.Helper()
	r := textcmd.NewReader(bytes.NewReader(answer), textcmd.Memcached, textcmd.Limits{})
	var again []byte
	for {
		_, parts, err := r.ReadResponse(nil, nil)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("answer %q: %v", answer, err)
		}
		last := parts[len(parts)-1].Name
		if textcmd.Memcached.Continues(last) {
			t.Fatalf("response closed by %q, which continues", last)
		}
		for _, p := range parts {
			again = textcmd.AppendMessage(again, p.Name, p.Args, p.Data)
		}
	}
	if !bytes.Equal(again, answer) {
		t.Errorf("answer re-encoded as %q, want %q", again, answer)
	}
}
