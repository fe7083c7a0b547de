package protoserver

import (
	"context"
	"encoding/binary"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// vtBytes is a BytesValue with the methods vtprotobuf generates for it
// (size, marshal, unmarshal and pool's ResetVT), written out by hand:
// protoserver's tests do not depend on vtprotobuf.
type vtBytes struct{ wrapperspb.BytesValue }

func (m *vtBytes) SizeVT() int {
	if len(m.Value) == 0 {
		return 0
	}
	return 1 + protowire.SizeBytes(len(m.Value))
}

func (m *vtBytes) MarshalToSizedBufferVT(b []byte) (int, error) {
	if len(m.Value) == 0 {
		return 0, nil
	}
	// Backwards from the end of b, as vtprotobuf writes.
	var head [1 + binary.MaxVarintLen64]byte
	h := protowire.AppendVarint(protowire.AppendTag(head[:0], 1, protowire.BytesType), uint64(len(m.Value)))
	i := len(b) - len(m.Value)
	copy(b[i:], m.Value)
	i -= len(h)
	copy(b[i:], h)
	return len(b) - i, nil
}

func (m *vtBytes) UnmarshalVT(b []byte) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		if num == 1 && typ == protowire.BytesType {
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return protowire.ParseError(n)
			}
			m.Value = append(m.Value[:0], v...)
			b = b[n:]
			continue
		}
		if n = protowire.ConsumeFieldValue(num, typ, b); n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
	}
	return nil
}

func (m *vtBytes) ResetVT() {
	v := m.Value[:0]
	m.Reset()
	m.Value = v
}

// BenchmarkClientLayerVT is the client's share of a service call at 16 B
// with vtprotobuf's messages, with no network: what a generated client's
// UnaryInto does around the byte layer's call (its buffers, the request
// envelope, the answer decoded into a reused response). BenchmarkServiceRespondVT
// in bench/ is the server's share.
func BenchmarkClientLayerVT(b *testing.B) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const method = "/tcpez.bench.vt.v1.Echo/Unary"
	req, resp := &vtBytes{}, &vtBytes{}
	req.Value = make([]byte, 16)
	// The answer envelope: the response, 18 bytes, as the payload field.
	ans := protowire.AppendTag(nil, respPayload, protowire.BytesType)
	ans = protowire.AppendBytes(ans, protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), req.Value))
	b.ReportAllocs()
	for b.Loop() {
		bufs := getBuffers()
		out, tail, err := encodeCallTail(bufs.req[:0], ctx, method, req, true)
		if err != nil || tail != nil || len(out) != 2+len(method)+2+18 {
			b.Fatalf("request % x, tail %d, %v", out, len(tail), err)
		}
		bufs.req = out
		bufs.ans = append(bufs.ans[:0], ans...)
		if err := decodeAnswer(bufs.ans, resp, false); err != nil || len(resp.Value) != 16 {
			b.Fatalf("answer %v, %v", resp.Value, err)
		}
		putBuffers(bufs)
	}
}
