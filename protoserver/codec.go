package protoserver

import (
	"slices"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Messages are encoded and decoded here. A message with the methods that
// planetscale/vtprotobuf generates (protoc-gen-go-vtproto with the size,
// marshal and unmarshal features) is encoded by them rather than by
// protobuf-go's reflection: bench/vtpb measures the difference. Any other
// message goes through protobuf-go, so plain generated code keeps working;
// tcpez itself does not depend on vtprotobuf.
//
// A message reused from call to call (a client's response message, a
// service's request with ServiceConfig.RequestReuse) is reset with the
// ResetVT that vtprotobuf's pool feature generates, when it has one: that
// keeps the memory of its bytes and repeated fields, into which the next
// decoding copies, so a reused message of that kind decodes without
// allocating.

// vtMessage is what vtprotobuf generates for a message.
type vtMessage interface {
	SizeVT() int
	MarshalToSizedBufferVT(b []byte) (int, error)
	UnmarshalVT(b []byte) error
}

// sizeOf is the encoded size of m.
func sizeOf(m proto.Message) int {
	if vt, ok := m.(vtMessage); ok {
		return vt.SizeVT()
	}
	return marshalOpts.Size(m)
}

// appendSizedMessage appends m, whose size n was just taken with sizeOf,
// to b.
func appendSizedMessage(b []byte, m proto.Message, n int) ([]byte, error) {
	vt, ok := m.(vtMessage)
	if !ok {
		return marshalCached.MarshalAppend(b, m)
	}
	start := len(b)
	b = slices.Grow(b, n)[:start+n]
	// MarshalToSizedBufferVT writes backwards from the end of its buffer.
	w, err := vt.MarshalToSizedBufferVT(b[start:])
	if err == nil && w != n {
		return b[:start], errChanged
	}
	return b, err
}

// marshalAppend appends m to b.
func marshalAppend(b []byte, m proto.Message) ([]byte, error) {
	if _, ok := m.(vtMessage); !ok {
		return marshalOpts.MarshalAppend(b, m)
	}
	return appendSizedMessage(b, m, sizeOf(m))
}

// unmarshalNew decodes b into m, which is empty: a new message, or one
// that was reset.
func unmarshalNew(b []byte, m proto.Message) error {
	if vt, ok := m.(vtMessage); ok {
		return vt.UnmarshalVT(b)
	}
	return mergeOpts.Unmarshal(b, m)
}

// unmarshalReset decodes b into m, replacing what m held.
func unmarshalReset(b []byte, m proto.Message) error {
	// One question for the usual reused message, which has both.
	switch vt := m.(type) {
	case vtReusable:
		vt.ResetVT()
		return vt.UnmarshalVT(b)
	case vtMessage:
		proto.Reset(m)
		return vt.UnmarshalVT(b)
	}
	return unmarshalOpts.Unmarshal(b, m)
}

// vtReusable is a vtMessage with the ResetVT of vtprotobuf's pool feature.
type vtReusable interface {
	vtMessage
	vtResetter
}

// vtAliaser is a message with vtprotobuf's unmarshal_unsafe feature: its
// UnmarshalVTUnsafe points bytes and string fields into the buffer it
// decodes rather than copying them, which at 1 MiB is a copy of the whole
// request saved.
type vtAliaser interface{ UnmarshalVTUnsafe(b []byte) error }

// unmarshalRequest decodes a service's request b into m, which is empty,
// and reports whether m's fields alias b. They may when the request is
// reused (ServiceConfig.RequestReuse): all its bytes and string fields
// when m has UnmarshalVTUnsafe, whose code the user chose to generate;
// else, with aliasPlain (ServiceConfig.AliasRequestBytes), its one large
// bytes field if it has one (findAliasable). b, the server's request
// buffer, outlives the method, and such a message must then be emptied
// with releaseRequest.
func unmarshalRequest(b []byte, m proto.Message, reuse, aliasPlain bool) (aliased bool, err error) {
	if !reuse {
		return false, unmarshalNew(b, m)
	}
	if a, ok := m.(vtAliaser); ok {
		return true, a.UnmarshalVTUnsafe(b)
	}
	if !aliasPlain {
		return false, unmarshalNew(b, m)
	}
	if f, ok := findAliasable(b, m); ok {
		return true, f.unmarshal(b, m)
	}
	return false, unmarshalNew(b, m)
}

// aliasMin is the smallest bytes field findAliasable points into the
// frame: below it, protobuf-go's copy costs less than the scan.
const aliasMin = 1 << 10

// aliasable is the one large bytes field of an encoded message that a
// message without vtprotobuf's unmarshal_unsafe can still point into the
// buffer: the field's bytes, and where the whole field lies in it.
type aliasable struct {
	fd         protoreflect.FieldDescriptor
	value      []byte
	start, end int
}

// findAliasable looks, at the top level of b (an encoded m) of aliasMin
// bytes or more, for a bytes field of aliasMin bytes or more that occurs
// once and that decoding it last leaves the same: not repeated, not in a
// oneof (a later member would win; proto3 optional's own is fine), not
// required (the rest would fail its check), in a message that takes no
// extensions.
func findAliasable(b []byte, m proto.Message) (aliasable, bool) {
	if len(b) < aliasMin {
		return aliasable{}, false
	}
	desc := m.ProtoReflect().Descriptor()
	if desc.ExtensionRanges().Len() > 0 {
		return aliasable{}, false
	}
	var f aliasable
	for at := 0; at < len(b); {
		num, typ, n := protowire.ConsumeTag(b[at:])
		if n < 0 {
			return aliasable{}, false
		}
		size := protowire.ConsumeFieldValue(num, typ, b[at+n:])
		if size < 0 {
			return aliasable{}, false
		}
		start, end := at, at+n+size
		at = end
		if f.fd != nil && num == f.fd.Number() {
			return aliasable{}, false // twice: the last one wins
		}
		if f.fd != nil || typ != protowire.BytesType || size < aliasMin {
			continue
		}
		fd := desc.Fields().ByNumber(num)
		if fd == nil || fd.Kind() != protoreflect.BytesKind || fd.Cardinality() != protoreflect.Optional {
			continue
		}
		if oo := fd.ContainingOneof(); oo != nil && !oo.IsSynthetic() {
			continue
		}
		v, _ := protowire.ConsumeBytes(b[start+n : end])
		f = aliasable{fd: fd, value: v, start: start, end: end}
	}
	return f, f.fd != nil
}

// unmarshal decodes b into m, empty, with f's field pointing into b. The
// rest of b is decoded as usual: in place when the field ends b, as it
// does when fields come in order, else from a copy of the few bytes
// around it.
func (f *aliasable) unmarshal(b []byte, m proto.Message) error {
	rest := b[:f.start]
	if f.end < len(b) {
		rest = append(append(make([]byte, 0, len(b)-(f.end-f.start)), b[:f.start]...), b[f.end:]...)
	}
	if err := unmarshalNew(rest, m); err != nil {
		return err
	}
	m.ProtoReflect().Set(f.fd, protoreflect.ValueOfBytes(f.value))
	return nil
}

// releaseRequest empties a reused request for the next call. One whose
// fields alias a request buffer is emptied with zero, not ResetVT: ResetVT
// would keep those fields' slices for the next decoding to append into,
// or return sub-messages holding them to vtprotobuf's pools, where
// anyone's decoding would write into a buffer the server has since reused.
// zero is the request type's own (MethodHandler.zeroReq); a message that
// cannot keep its fields' memory is emptied with it too.
func releaseRequest(m proto.Message, aliased bool, zero func(proto.Message)) {
	if r, ok := m.(vtResetter); ok && !aliased {
		r.ResetVT()
		return
	}
	zero(m)
}

// vtResetter is a message with vtprotobuf's pool feature.
type vtResetter interface{ ResetVT() }

// keepsMemory reports whether reset keeps the memory of m's fields, for
// the next decoding to write into.
func keepsMemory(m proto.Message) bool {
	_, ok := m.(vtResetter)
	return ok
}

// reset empties m for reuse, keeping the memory of its fields if it can.
func reset(m proto.Message) {
	if r, ok := m.(vtResetter); ok {
		r.ResetVT()
		return
	}
	proto.Reset(m)
}

// tailMin is the smallest bytes field a large message is sent with by
// reference: the encoding stops before its bytes, which go to the socket
// from the message's own slice (server.TailHandler, client.CallAppendTail).
// A copy of 1 MiB costs about as much as a loopback write of it.
const tailMin = 64 << 10

// splitMessage is a message whose largest bytes field is sent by
// reference: the encoding of the rest of it, then the field, which is
// valid protobuf whatever the field's number, since fields may come in
// any order.
type splitMessage struct {
	rest     proto.Message // the message without the field: its other fields are the message's own
	restSize int
	num      protowire.Number
	tail     []byte // the field's bytes
}

// splitTail splits m, whose encoded size is n, if it is large and has a
// bytes field of tailMin bytes or more at its top level. It walks the
// fields by index rather than with Range, whose closures would be an
// allocation or two a call.
func splitTail(m proto.Message, n int) (splitMessage, bool) {
	if n < tailMin {
		return splitMessage{}, false
	}
	pm := m.ProtoReflect()
	if pm.Descriptor().ExtensionRanges().Len() > 0 {
		return splitMessage{}, false // its extensions would need Range
	}
	fields := pm.Descriptor().Fields()
	var big protoreflect.FieldDescriptor
	var tail []byte
	for i := range fields.Len() {
		fd := fields.Get(i)
		// Not a required field: the head, encoded without it, would
		// fail proto2's check that required fields are set.
		if fd.Kind() != protoreflect.BytesKind || fd.Cardinality() != protoreflect.Optional || !pm.Has(fd) {
			continue
		}
		if b := pm.Get(fd).Bytes(); len(b) >= max(tailMin, len(tail)) {
			big, tail = fd, b
		}
	}
	if big == nil {
		return splitMessage{}, false
	}
	// A shallow copy: Set shares the values' memory, and the copy is only
	// read, to be encoded.
	rest := pm.New()
	for i := range fields.Len() {
		if fd := fields.Get(i); fd != big && pm.Has(fd) {
			rest.Set(fd, pm.Get(fd))
		}
	}
	rest.SetUnknown(pm.GetUnknown())
	r := rest.Interface()
	return splitMessage{rest: r, restSize: sizeOf(r), num: big.Number(), tail: tail}, true
}

// appendMaybeSplit appends m to b; with split set, a large m may be split
// (splitTail), its tail's bytes then left out of head and returned.
func appendMaybeSplit(b []byte, m proto.Message, split bool) (head, tail []byte, err error) {
	n := sizeOf(m)
	if split {
		if sm, ok := splitTail(m, n); ok {
			head, err = sm.appendHead(b)
			return head, sm.tail, err
		}
	}
	head, err = appendSizedMessage(b, m, n)
	return head, nil, err
}

// size is the encoded size of the whole message.
func (s *splitMessage) size() int {
	return s.restSize + protowire.SizeTag(s.num) + protowire.SizeBytes(len(s.tail))
}

// appendHead appends the message's encoding up to the tail's bytes.
func (s *splitMessage) appendHead(b []byte) ([]byte, error) {
	b, err := appendSizedMessage(b, s.rest, s.restSize)
	if err != nil {
		return b, err
	}
	b = protowire.AppendTag(b, s.num, protowire.BytesType)
	return protowire.AppendVarint(b, uint64(len(s.tail))), nil
}
