package protoserver

import (
	"errors"
	"slices"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	tcpezv1 "github.com/tcpez/tcpez/proto/tcpez/v1"
	"github.com/tcpez/tcpez/span"
)

// The envelope (proto/tcpez/v1/envelope.proto) is encoded and decoded here
// by hand, on the wire format, rather than through the generated tcpezv1
// types: that way a call allocates no envelope, copies no payload, and
// decodes no field it does not need. envelope_test.go checks that both
// agree. The Status message, which only failed calls carry, goes through
// the generated type.

// Field numbers of tcpez.v1.Request and tcpez.v1.Response.
const (
	reqMethod   protowire.Number = 1
	reqPayload  protowire.Number = 2
	reqSpanID   protowire.Number = 3
	reqTimeout  protowire.Number = 4
	reqMetadata protowire.Number = 5
	reqTraceID  protowire.Number = 6

	respStatus  protowire.Number = 1
	respPayload protowire.Number = 2

	mapKey   protowire.Number = 1
	mapValue protowire.Number = 2
)

// payloadTag is the byte that opens a tcpez.v1.Response's payload field.
const payloadTag = byte(respPayload<<3 | protowire.Number(protowire.BytesType))

var (
	errBadUTF8    = errors.New("string field is not valid UTF-8")
	errChanged    = errors.New("tcpez/protoserver: message changed while it was encoded")
	marshalOpts   = proto.MarshalOptions{}
	marshalCached = proto.MarshalOptions{UseCachedSize: true}
	unmarshalOpts = proto.UnmarshalOptions{}
	// mergeOpts decodes into a new message, which needs no reset first.
	mergeOpts = proto.UnmarshalOptions{Merge: true}
)

// request is a decoded tcpez.v1.Request. Its slices alias the frame it was
// decoded from.
type request struct {
	method  []byte
	payload []byte
	spanID  uint64
	traceID []byte // 16 bytes when valid
	timeout int64
	md      Metadata // nil when the request has none
	// split: the answer may be sent in two parts (Service.RespondTail).
	split bool
}

// decode parses b as proto.Unmarshal would: later fields win, unknown
// fields and fields of an unexpected wire type are skipped, strings must be
// UTF-8 (the method is checked by its lookup instead).
func (r *request) decode(b []byte) error {
	for len(b) > 0 {
		num, typ, n := consumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		switch {
		case num == reqMethod && typ == protowire.BytesType:
			r.method, n = consumeBytes(b)
		case num == reqPayload && typ == protowire.BytesType:
			r.payload, n = consumeBytes(b)
		case num == reqSpanID && typ == protowire.Fixed64Type:
			r.spanID, n = protowire.ConsumeFixed64(b)
		case num == reqTraceID && typ == protowire.BytesType:
			r.traceID, n = protowire.ConsumeBytes(b)
		case num == reqTimeout && typ == protowire.VarintType:
			var v uint64
			v, n = protowire.ConsumeVarint(b)
			r.timeout = int64(v)
		case num == reqMetadata && typ == protowire.BytesType:
			var entry []byte
			if entry, n = protowire.ConsumeBytes(b); n >= 0 {
				if err := r.decodeEntry(entry); err != nil {
					return err
				}
			}
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
	}
	return nil
}

// consumeTag is protowire.ConsumeTag, and consumeBytes
// protowire.ConsumeBytes, with the one-byte tags and lengths of an
// envelope's usual fields read inline: every request has two of each, and
// the calls cost BenchmarkServiceRespondVT 8 ns.
func consumeTag(b []byte) (protowire.Number, protowire.Type, int) {
	// Field 0 is invalid: ConsumeTag says so.
	if len(b) > 0 && b[0] < 0x80 && b[0] >= 1<<3 {
		return protowire.Number(b[0] >> 3), protowire.Type(b[0] & 7), 1
	}
	return protowire.ConsumeTag(b)
}

func consumeBytes(b []byte) ([]byte, int) {
	if len(b) > 0 && b[0] < 0x80 {
		if n := int(b[0]); n < len(b) {
			return b[1 : 1+n], 1 + n
		}
	}
	return protowire.ConsumeBytes(b)
}

// decodeEntry adds one metadata map entry.
func (r *request) decodeEntry(b []byte) error {
	var k, v []byte
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		switch {
		case num == mapKey && typ == protowire.BytesType:
			k, n = protowire.ConsumeBytes(b)
		case num == mapValue && typ == protowire.BytesType:
			v, n = protowire.ConsumeBytes(b)
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
	}
	if !utf8.Valid(k) || !utf8.Valid(v) {
		return errBadUTF8
	}
	if r.md == nil {
		r.md = make(Metadata, 4)
	}
	r.md[string(k)] = string(v)
	return nil
}

// appendRequest appends a tcpez.v1.Request to b. The payload is msg,
// encoded in place.
func appendRequest(b []byte, method string, msg proto.Message, spanID uint64, trace span.TraceID, timeout int64, md Metadata) ([]byte, error) {
	c := callFields{spanID: spanID, trace: trace, timeout: timeout, md: md}
	b, _, err := c.appendRequest(b, method, msg, false)
	return b, err
}

// callFields are the fields of a tcpez.v1.Request other than its method
// and payload.
type callFields struct {
	spanID  uint64
	trace   span.TraceID
	timeout int64
	md      Metadata
}

// appendRequest appends a tcpez.v1.Request to b, its payload msg last,
// encoded in place: with split set, a large msg may be sent by reference
// (appendField), the bytes of its tail then left out of b and returned for
// the caller to send right after it.
func (c *callFields) appendRequest(b []byte, method string, msg proto.Message, split bool) (out, tail []byte, err error) {
	b = protowire.AppendTag(b, reqMethod, protowire.BytesType)
	b = protowire.AppendString(b, method)
	b = c.append(b)
	if msg == nil {
		return b, nil, nil
	}
	return appendField(b, reqPayload, msg, split)
}

// appendField appends m as the bytes field num, leaving out an empty one
// as proto3 does. With split set, a large m may be split (splitTail): the
// bytes of its tail are then left out of head and returned. Every call's
// payload goes through it, so it asks once whether m has vtprotobuf's code
// rather than in sizeOf and again in appendSizedMessage.
func appendField(b []byte, num protowire.Number, m proto.Message, split bool) (head, tail []byte, err error) {
	vt, isVT := m.(vtMessage)
	var n int
	if isVT {
		n = vt.SizeVT()
	} else {
		n = marshalOpts.Size(m)
	}
	// The size is checked here too, not only in splitTail: a small
	// message, every call's case, then skips the call and the copy of
	// its result, a tenth of a small answer's encoding.
	if split && n >= tailMin {
		if sm, ok := splitTail(m, n); ok {
			head, err = appendSplit(b, num, &sm)
			return head, sm.tail, err
		}
	}
	if n == 0 {
		// Size does not check required fields; Marshal does.
		_, err := marshalCached.MarshalAppend(nil, m)
		return b, nil, err
	}
	b = slices.Grow(b, sizeResponse(n))
	b = protowire.AppendTag(b, num, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(n))
	start := len(b)
	if isVT {
		// Not appendSizedMessage: b has room already, and that call cost
		// BenchmarkServiceRespondVT 6 ns. MarshalToSizedBufferVT writes
		// backwards from the end of its buffer.
		b = b[:start+n]
		w, err := vt.MarshalToSizedBufferVT(b[start:])
		if err == nil && w != n {
			err = errChanged
		}
		return b, nil, err
	}
	b, err = marshalCached.MarshalAppend(b, m)
	if err == nil && len(b)-start != n {
		err = errChanged
	}
	return b, nil, err
}

// appendSplit appends sm as the bytes field num, up to its tail's bytes.
func appendSplit(b []byte, num protowire.Number, sm *splitMessage) ([]byte, error) {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(sm.size()))
	return sm.appendHead(b)
}

// append appends c's fields.
func (c *callFields) append(b []byte) []byte {
	if c.spanID != 0 {
		b = protowire.AppendTag(b, reqSpanID, protowire.Fixed64Type)
		b = protowire.AppendFixed64(b, c.spanID)
	}
	if !c.trace.IsZero() {
		b = protowire.AppendTag(b, reqTraceID, protowire.BytesType)
		b = protowire.AppendBytes(b, c.trace[:])
	}
	if c.timeout != 0 {
		b = protowire.AppendTag(b, reqTimeout, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(c.timeout))
	}
	if len(c.md) == 0 {
		// Ranging over no map still sets up an iterator: 5 ns of a
		// call's 70 in BenchmarkClientLayerVT.
		return b
	}
	for k, v := range c.md {
		n := 2 + protowire.SizeBytes(len(k)) + protowire.SizeBytes(len(v))
		b = protowire.AppendTag(b, reqMetadata, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(n))
		b = protowire.AppendTag(b, mapKey, protowire.BytesType)
		b = protowire.AppendString(b, k)
		b = protowire.AppendTag(b, mapValue, protowire.BytesType)
		b = protowire.AppendString(b, v)
	}
	return b
}

// sizeResponse is an upper bound on the encoded size of a bytes field of
// n bytes.
func sizeResponse(n int) int { return 1 + protowire.SizeVarint(uint64(n)) + n }

// appendStatus appends a failed call's tcpez.v1.Response to b.
func appendStatus(b []byte, st *tcpezv1.Status) []byte {
	enc, err := marshalOpts.Marshal(st)
	if err != nil {
		// Only a message that is not UTF-8 can fail: keep the code.
		enc, _ = marshalOpts.Marshal(&tcpezv1.Status{Code: st.GetCode(), Message: "(message not valid UTF-8)"})
	}
	b = protowire.AppendTag(b, respStatus, protowire.BytesType)
	return protowire.AppendBytes(b, enc)
}

// decodeResponse parses a tcpez.v1.Response. payload aliases b; st is the
// Status, nil when the call succeeded.
func decodeResponse(b []byte) (payload []byte, st *Status, err error) {
	// Nearly every answer is its payload field alone, as Service encodes
	// it: taken here without the loop below.
	if len(b) > 1 && b[0] == payloadTag {
		if n, m := protowire.ConsumeVarint(b[1:]); m > 0 && n == uint64(len(b)-1-m) {
			return b[1+m:], nil, nil
		}
	}
	var stBytes []byte
	hasStatus := false
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, nil, protowire.ParseError(n)
		}
		b = b[n:]
		switch {
		case num == respStatus && typ == protowire.BytesType:
			var v []byte
			v, n = protowire.ConsumeBytes(b)
			// A message field that occurs twice is merged, as
			// concatenating its encodings does.
			if hasStatus {
				stBytes = append(stBytes[:len(stBytes):len(stBytes)], v...)
			} else {
				stBytes = v
			}
			hasStatus = true
		case num == respPayload && typ == protowire.BytesType:
			payload, n = protowire.ConsumeBytes(b)
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return nil, nil, protowire.ParseError(n)
		}
		b = b[n:]
	}
	if hasStatus {
		var p tcpezv1.Status
		if err := unmarshalOpts.Unmarshal(stBytes, &p); err != nil {
			return nil, nil, err
		}
		st = FromProto(&p)
	}
	return payload, st, nil
}
