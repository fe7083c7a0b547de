package protoserver

import (
	"bytes"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/descriptorpb"
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
