package protoserver

import (
	"slices"

	"google.golang.org/protobuf/proto"
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
	if vt, ok := m.(vtMessage); ok {
		reset(m)
		return vt.UnmarshalVT(b)
	}
	return unmarshalOpts.Unmarshal(b, m)
}

// vtAliaser is a message with vtprotobuf's unmarshal_unsafe feature: its
// UnmarshalVTUnsafe points bytes and string fields into the buffer it
// decodes rather than copying them, which at 1 MiB is a copy of the whole
// request saved.
type vtAliaser interface{ UnmarshalVTUnsafe(b []byte) error }

// unmarshalRequest decodes a service's request b into m, which is empty,
// and reports whether m's fields alias b. They do when the request is
// reused (ServiceConfig.RequestReuse: no part of it may outlive the call)
// and m has UnmarshalVTUnsafe: b, the server's request buffer, outlives
// the method, and such a message must then be emptied with releaseRequest.
func unmarshalRequest(b []byte, m proto.Message, reuse bool) (aliased bool, err error) {
	if a, ok := m.(vtAliaser); ok && reuse {
		return true, a.UnmarshalVTUnsafe(b)
	}
	return false, unmarshalNew(b, m)
}

// releaseRequest empties a reused request for the next call. One whose
// fields alias a request buffer is emptied with proto.Reset, not ResetVT:
// ResetVT would keep those fields' slices for the next decoding to append
// into, or return sub-messages holding them to vtprotobuf's pools, where
// anyone's decoding would write into a buffer the server has since reused.
func releaseRequest(m proto.Message, aliased bool) {
	if aliased {
		proto.Reset(m)
		return
	}
	reset(m)
}

// vtResetter is a message with vtprotobuf's pool feature.
type vtResetter interface{ ResetVT() }

// reset empties m for reuse, keeping the memory of its fields if it can.
func reset(m proto.Message) {
	if r, ok := m.(vtResetter); ok {
		r.ResetVT()
		return
	}
	proto.Reset(m)
}
