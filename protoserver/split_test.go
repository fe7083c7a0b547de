package protoserver

import (
	"bytes"
	"testing"
	"unsafe"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// TestSplitTail: a large message with a big bytes field is encoded as its
// other fields (unknown ones too), then the field's tag and length, with
// the field's bytes left for the tail, which are the message's own; joined,
// they decode to the message, which is left as it was. Messages that are
// small, have no such field, or may hold extensions are not split.
func TestSplitTail(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789abcdef"), tailMin/16+1)
	withUnknown := wrapperspb.Bytes(big)
	withUnknown.ProtoReflect().SetUnknown(protowire.AppendVarint(protowire.AppendTag(nil, 99, protowire.VarintType), 7))
	split := map[string]proto.Message{
		"only field":     wrapperspb.Bytes(big),
		"last field":     &anypb.Any{TypeUrl: "type.example/x", Value: big},
		"middle field":   &descriptorpb.UninterpretedOption{IdentifierValue: proto.String("id"), StringValue: big, AggregateValue: proto.String("agg"), DoubleValue: proto.Float64(2.5)},
		"unknown fields": withUnknown,
		"tailMin bytes":  &descriptorpb.UninterpretedOption{StringValue: big[:tailMin]},
	}
	for name, m := range split {
		t.Run(name, func(t *testing.T) {
			before := proto.Clone(m)
			n := sizeOf(m)
			sm, ok := splitTail(m, n)
			if !ok {
				t.Fatal("not split")
			}
			if sm.size() != n {
				t.Errorf("split size %d, want the message's %d", sm.size(), n)
			}
			head, err := sm.appendHead(nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(head)+len(sm.tail) != n {
				t.Errorf("head %d + tail %d bytes, want %d", len(head), len(sm.tail), n)
			}
			got := m.ProtoReflect().New().Interface()
			if err := proto.Unmarshal(append(head, sm.tail...), got); err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(got, m) {
				t.Error("joined, the parts decode to another message")
			}
			if !proto.Equal(m, before) {
				t.Error("splitting changed the message")
			}
		})
	}
	notSplit := map[string]proto.Message{
		"small":            wrapperspb.Bytes(big[:tailMin-1]),
		"no bytes field":   wrapperspb.String(string(big)),
		"may hold exts":    &descriptorpb.FieldOptions{Deprecated: proto.Bool(true), UninterpretedOption: []*descriptorpb.UninterpretedOption{{StringValue: big}}},
		"repeated bytes":   &descriptorpb.FileDescriptorProto{Dependency: []string{string(big)}},
		"big field nested": &descriptorpb.OneofDescriptorProto{Name: proto.String("x"), Options: &descriptorpb.OneofOptions{UninterpretedOption: []*descriptorpb.UninterpretedOption{{StringValue: big}}}},
	}
	for name, m := range notSplit {
		if _, ok := splitTail(m, sizeOf(m)); ok {
			t.Errorf("%s: split", name)
		}
	}
}

// TestUnmarshalAliasing: a reused request without vtprotobuf's
// unmarshal_unsafe still has its one large bytes field point into the
// buffer it was decoded from, wherever the field lies, and decodes to
// what proto.Unmarshal makes of the buffer; one whose field occurs twice,
// or that is decoded for a new request, is copied as usual.
func TestUnmarshalAliasing(t *testing.T) {
	big := bytes.Repeat([]byte("abcdefgh"), tailMin/8+3)
	last := mustMarshal(t, &anypb.Any{TypeUrl: "type.example/x", Value: big})
	middle := mustMarshal(t, &descriptorpb.UninterpretedOption{IdentifierValue: proto.String("id"), StringValue: big, AggregateValue: proto.String("agg")})
	twice := append(bytes.Clone(last), mustMarshal(t, &anypb.Any{Value: []byte("later")})...)
	cases := []struct {
		name    string
		b       []byte
		m       func() proto.Message
		reuse   bool
		alias   bool
		aliased bool
	}{
		{"last field", last, func() proto.Message { return new(anypb.Any) }, true, true, true},
		{"middle field", middle, func() proto.Message { return new(descriptorpb.UninterpretedOption) }, true, true, true},
		{"field twice", twice, func() proto.Message { return new(anypb.Any) }, true, true, false},
		{"new request", last, func() proto.Message { return new(anypb.Any) }, false, false, false},
		{"4 KiB", mustMarshal(t, wrapperspb.Bytes(big[:4<<10])), func() proto.Message { return new(wrapperspb.BytesValue) }, true, true, true},
		{"small", mustMarshal(t, wrapperspb.Bytes(big[:100])), func() proto.Message { return new(wrapperspb.BytesValue) }, true, true, false},
		// RequestReuse without AliasRequestBytes: a plain request's fields
		// may be kept, so they are copied.
		{"reuse only", last, func() proto.Message { return new(anypb.Any) }, true, false, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := c.m()
			aliased, err := unmarshalRequest(c.b, m, c.reuse, c.alias)
			if err != nil {
				t.Fatal(err)
			}
			want := c.m()
			if err := proto.Unmarshal(c.b, want); err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(m, want) {
				t.Errorf("decoded %v, want %v", m, want)
			}
			if aliased != c.aliased {
				t.Errorf("aliased %v, want %v", aliased, c.aliased)
			}
			if points := pointsInto(m, c.b); points != c.aliased {
				t.Errorf("a bytes field points into the buffer: %v, want %v", points, c.aliased)
			}
		})
	}
}

// pointsInto reports whether a top-level bytes field of m lies in b.
func pointsInto(m proto.Message, b []byte) bool {
	lo := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	hi := lo + uintptr(len(b))
	found := false
	m.ProtoReflect().Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Kind() == protoreflect.BytesKind && !fd.IsList() {
			if p := v.Bytes(); len(p) > 0 {
				at := uintptr(unsafe.Pointer(unsafe.SliceData(p)))
				found = found || (at >= lo && at < hi)
			}
		}
		return true
	})
	return found
}

func mustMarshal(t *testing.T, m proto.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// BenchmarkUnmarshalRequest: a reused 1 MiB request of plain protobuf-go
// code, decoded with its bytes field pointing into the frame (reuse) and
// copied (new).
//
//	go test -run '^$' -bench UnmarshalRequest -benchmem ./protoserver/
func BenchmarkUnmarshalRequest(b *testing.B) {
	enc, err := proto.Marshal(&anypb.Any{TypeUrl: "type.example/x", Value: make([]byte, 1<<20)})
	if err != nil {
		b.Fatal(err)
	}
	for _, reuse := range []bool{true, false} {
		name := map[bool]string{true: "reuse", false: "new"}[reuse]
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(enc)))
			var m anypb.Any
			for b.Loop() {
				aliased, err := unmarshalRequest(enc, &m, reuse, reuse)
				if err != nil || len(m.Value) != 1<<20 {
					b.Fatal(err)
				}
				releaseRequest(&m, aliased, proto.Reset)
			}
		})
	}
}

// FuzzUnmarshalRequest: a reused request decoded with a large bytes field
// pointing into the frame is the message proto.Unmarshal makes of the same
// bytes, whatever fields come before and after the large one and whatever
// its number, and it fails exactly when proto.Unmarshal does.
func FuzzUnmarshalRequest(f *testing.F) {
	seed := func(m proto.Message) []byte {
		b, err := proto.Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		return b
	}
	f.Add([]byte{}, []byte{}, uint8(6))
	f.Add(seed(&descriptorpb.UninterpretedOption{IdentifierValue: proto.String("id")}), seed(&descriptorpb.UninterpretedOption{AggregateValue: proto.String("agg")}), uint8(6))
	f.Add([]byte{0x3a, 0x01, 'x'}, []byte{}, uint8(6))   // the field twice, a small value first
	f.Add([]byte{}, []byte{0x3a, 0x01, 'x'}, uint8(6))   // the field twice, a small value last
	f.Add([]byte{}, []byte{}, uint8(0))                  // a message field (NamePart, with required fields)
	f.Add([]byte{0x0b}, []byte{0x0c}, uint8(6))          // inside a group
	f.Add([]byte{0x3a, 0x80, 0x80}, []byte{}, uint8(12)) // a length running past the end
	f.Fuzz(func(t *testing.T, before, after []byte, num uint8) {
		// num%16+1: field numbers 1 to 16 (7 is the bytes field).
		b := protowire.AppendTag(bytes.Clone(before), protowire.Number(num%16+1), protowire.BytesType)
		b = protowire.AppendVarint(b, tailMin)
		b = append(b, make([]byte, tailMin)...)
		b = append(b, after...)
		got := new(descriptorpb.UninterpretedOption)
		_, gotErr := unmarshalRequest(b, got, true, true)
		want := new(descriptorpb.UninterpretedOption)
		wantErr := proto.Unmarshal(b, want)
		if (gotErr == nil) != (wantErr == nil) {
			t.Fatalf("error %v, proto.Unmarshal's %v", gotErr, wantErr)
		}
		if gotErr == nil && !proto.Equal(got, want) {
			t.Fatalf("decoded %v, proto.Unmarshal %v", got, want)
		}
	})
}

// TestSplitTailLeavesRequiredFields: a proto2 message whose big bytes
// field is required is not split. Encoded without that field, its head
// failed the check that required fields are set, and the call with it:
// every such message of 64 KiB or more was refused as Internal.
func TestSplitTailLeavesRequiredFields(t *testing.T) {
	fdp := &descriptorpb.FileDescriptorProto{
		Name:    proto.String("required_test.proto"),
		Package: proto.String("tcpez.test"),
		Syntax:  proto.String("proto2"),
		MessageType: []*descriptorpb.DescriptorProto{{
			Name: proto.String("Blob"),
			Field: []*descriptorpb.FieldDescriptorProto{{
				Name:   proto.String("data"),
				Number: proto.Int32(1),
				Label:  descriptorpb.FieldDescriptorProto_LABEL_REQUIRED.Enum(),
				Type:   descriptorpb.FieldDescriptorProto_TYPE_BYTES.Enum(),
			}},
		}},
	}
	fd, err := protodesc.NewFile(fdp, nil)
	if err != nil {
		t.Fatal(err)
	}
	m := dynamicpb.NewMessage(fd.Messages().ByName("Blob"))
	m.Set(m.Descriptor().Fields().ByName("data"), protoreflect.ValueOfBytes(bytes.Repeat([]byte("x"), tailMin)))
	if _, ok := splitTail(m, sizeOf(m)); ok {
		t.Fatal("a message was split on its required field")
	}
	if _, err := marshalAppend(nil, m); err != nil {
		t.Fatalf("encoding it: %v", err)
	}
}
