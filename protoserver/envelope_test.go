package protoserver

import (
	"bytes"
	"maps"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	tcpezv1 "github.com/tcpez/tcpez/proto/tcpez/v1"
	"github.com/tcpez/tcpez/span"
)

// The hand-written envelope codec must agree with the generated types.

func TestAppendRequestDecodesAsGenerated(t *testing.T) {
	for _, tc := range []struct {
		method  string
		msg     proto.Message
		spanID  uint64
		trace   span.TraceID
		timeout int64
		md      Metadata
	}{
		{"/a.B/C", wrapperspb.String("hello"), 0, span.TraceID{}, 0, nil},
		{"Echo", wrapperspb.Bytes(nil), 1<<64 - 1, span.NewTraceID(), -5, Metadata{"k": "v", "": "", "ü": "ö"}},
		{"", nil, 42, span.TraceID{15: 1}, 1 << 40, Metadata{"a": "b"}},
	} {
		b, err := appendRequest([]byte("prefix"), tc.method, tc.msg, tc.spanID, tc.trace, tc.timeout, tc.md)
		if err != nil || !bytes.HasPrefix(b, []byte("prefix")) {
			t.Fatal(err)
		}
		b = b[len("prefix"):]
		var got tcpezv1.Request
		if err := proto.Unmarshal(b, &got); err != nil {
			t.Fatal(err)
		}
		var payload []byte
		if tc.msg != nil {
			payload, _ = proto.Marshal(tc.msg)
		}
		want := &tcpezv1.Request{Method: tc.method, Payload: payload, SpanId: tc.spanID, TimeoutNanos: tc.timeout, Metadata: tc.md}
		if !tc.trace.IsZero() {
			want.TraceId = tc.trace[:]
		}
		if !proto.Equal(&got, want) {
			t.Fatalf("decoded %v\nwant %v", &got, want)
		}
		// And our own decoder reads what the generated code writes.
		checkDecode(t, marshalDet(t, want))
	}
}

func marshalDet(t testing.TB, m proto.Message) []byte {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// checkDecode decodes b with both decoders: whatever the generated one
// accepts, ours must accept with the same values.
func checkDecode(t *testing.T, b []byte) {
	t.Helper()
	var want tcpezv1.Request
	wantErr := proto.Unmarshal(b, &want)
	var got request
	gotErr := got.decode(b)
	if wantErr != nil {
		// Ours skips checking the method's UTF-8: a bad name is no method.
		return
	}
	if gotErr != nil {
		t.Fatalf("%x: %v; the generated code decodes it as %v", b, gotErr, &want)
	}
	if string(got.method) != want.Method || !bytes.Equal(got.payload, want.Payload) || got.spanID != want.SpanId || !bytes.Equal(got.traceID, want.TraceId) ||
		got.timeout != want.TimeoutNanos || !maps.Equal(map[string]string(got.md), want.Metadata) {
		t.Fatalf("%x: decoded %+v, want %v", b, got, &want)
	}
}

func TestResponseRoundTrip(t *testing.T) {
	a, _ := anypb.New(wrapperspb.String("detail"))
	for _, want := range []*tcpezv1.Response{
		{},
		{Payload: []byte("answer")},
		{Status: &tcpezv1.Status{Code: 5, Message: "missing", Details: []*anypb.Any{a}}},
		{Status: &tcpezv1.Status{}, Payload: []byte("x")}, // a status of code OK is success
	} {
		payload, st, err := decodeResponse(marshalDet(t, want))
		if err != nil || !bytes.Equal(payload, want.Payload) {
			t.Fatalf("%v: %q, %v", want, payload, err)
		}
		if !proto.Equal(st.protoOrNil(), FromProto(want.Status).protoOrNil()) {
			t.Fatalf("%v: status %v", want, st)
		}
	}
	// The server's encodings decode with the generated type.
	enc := appendStatus(nil, &tcpezv1.Status{Code: 13, Message: "m"})
	var got tcpezv1.Response
	if err := proto.Unmarshal(enc, &got); err != nil || got.Status.GetCode() != 13 || got.Status.GetMessage() != "m" {
		t.Fatalf("%v, %v", &got, err)
	}
	enc, _, err := appendField(nil, respPayload, wrapperspb.String("p"), false)
	if err != nil {
		t.Fatal(err)
	}
	if err := proto.Unmarshal(enc, &got); err != nil || got.Status != nil {
		t.Fatal(err)
	}
	var s wrapperspb.StringValue
	if err := proto.Unmarshal(got.Payload, &s); err != nil || s.Value != "p" {
		t.Fatal(s.Value, err)
	}
	// A status split in two fields is merged, as by the generated code.
	split := protowire.AppendTag(nil, respStatus, protowire.BytesType)
	split = protowire.AppendBytes(split, marshalDet(t, &tcpezv1.Status{Code: 3}))
	split = protowire.AppendTag(split, respStatus, protowire.BytesType)
	split = protowire.AppendBytes(split, marshalDet(t, &tcpezv1.Status{Message: "later"}))
	if _, st, err := decodeResponse(split); err != nil || st.Code != 3 || st.Message != "later" {
		t.Fatalf("split status: %v, %v", st, err)
	}
}

func (s *Status) protoOrNil() *tcpezv1.Status {
	if s == nil {
		return nil
	}
	return s.Proto()
}

// TestDecodeInlineReadsRefuseAsProtowire: the envelope decoder's inline
// reads of one-byte tags and lengths refuse what protowire refuses: field
// number 0, and a length past the end.
func TestDecodeInlineReadsRefuseAsProtowire(t *testing.T) {
	for _, b := range [][]byte{
		{0x00, 0x01},      // field 0, a varint
		{0x02, 0x01, 'M'}, // field 0, bytes
		{0x0a, 0x02, 'M'}, // a method longer than the rest
		{0x12, 0x01},      // a payload with nothing after its length
	} {
		var r request
		if err := r.decode(b); err == nil {
			t.Errorf("%x decoded as method %q, payload %x: want an error", b, r.method, r.payload)
		}
	}
}

// FuzzDecodeRequest compares the envelope decoders on arbitrary input.
func FuzzDecodeRequest(f *testing.F) {
	full := &tcpezv1.Request{Method: "/p.S/M", Payload: []byte{1, 2, 3}, SpanId: 9, TimeoutNanos: 1000, Metadata: map[string]string{"a": "b"}}
	b, _ := proto.Marshal(full)
	f.Add(b)
	f.Add([]byte{})
	f.Add([]byte{0x0a, 0x01})                   // truncated method
	f.Add([]byte{0x19, 1, 2, 3})                // truncated fixed64
	f.Add([]byte{0x18, 0x05})                   // span id as a varint: skipped
	f.Add([]byte{0x2a, 0x04, 0x0a, 0x01, 0xff}) // metadata key not UTF-8
	f.Add([]byte{0x2a, 0x02, 0x10, 0x01})       // metadata entry of a bad type
	f.Add([]byte{0x0b, 0x0c})                   // a group
	f.Add([]byte{0x00})                         // field number 0
	f.Add([]byte{0x0a, 0x02, 'M'})              // a length past the end
	f.Fuzz(func(t *testing.T, b []byte) { checkDecode(t, b) })
}

// FuzzDecodeResponse compares decodeResponse, the client's parser of
// answers, with the generated type's decoding on arbitrary input: what the
// generated code decodes, decodeResponse decodes alike. It is laxer on
// what the generated code refuses (a field number out of range, say),
// skipping it as an unknown field.
func FuzzDecodeResponse(f *testing.F) {
	f.Add(marshalDet(f, &tcpezv1.Response{Payload: []byte("answer")}))
	f.Add(marshalDet(f, &tcpezv1.Response{Status: &tcpezv1.Status{Code: 5, Message: "missing"}}))
	f.Add(marshalDet(f, &tcpezv1.Response{Status: &tcpezv1.Status{}, Payload: []byte("x")}))
	f.Add([]byte{})
	f.Add([]byte{0x12, 0x00})             // an empty payload
	f.Add([]byte{0x12, 0x03, 1, 2})       // truncated payload
	f.Add([]byte{0x12, 0x01, 1, 0x12, 0}) // the payload twice: the last wins
	f.Add([]byte{0x12, 0x80, 0x01, 1})    // a length longer than the rest
	f.Add([]byte{0x0a, 0x02, 0x12, 0x01}) // a status whose message is cut
	f.Fuzz(func(t *testing.T, b []byte) {
		var want tcpezv1.Response
		if proto.Unmarshal(b, &want) != nil {
			return
		}
		payload, st, err := decodeResponse(b)
		if err != nil {
			t.Fatalf("%x: %v; the generated code decodes it as %v", b, err, &want)
		}
		if !bytes.Equal(payload, want.Payload) {
			t.Fatalf("%x: payload %x, want %x", b, payload, want.Payload)
		}
		if !proto.Equal(st.protoOrNil(), FromProto(want.Status).protoOrNil()) {
			t.Fatalf("%x: status %v, want %v", b, st, want.Status)
		}
	})
}
