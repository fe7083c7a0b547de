package frame

import (
	"encoding/binary"
	"math"
)

// Header is the int32 that starts every frame: a payload length when zero or
// positive, the count of the frames that follow when negative.
type Header int32

// IsBatch reports whether h opens a batch.
func (h Header) IsBatch() bool { return h < 0 }

// Len is the payload length of a frame header.
func (h Header) Len() int { return int(h) }

// Count is the number of frames a batch header announces.
func (h Header) Count() int { return -int(h) }

// BatchHeader is the header that opens a batch of n frames.
func BatchHeader(n int) Header { return Header(-n) }

// AppendHeader appends the four bytes of h to buf.
func AppendHeader(buf []byte, h Header) []byte {
	return binary.BigEndian.AppendUint32(buf, uint32(h))
}

// AppendFrame appends payload to buf as one frame. Payloads over MaxFrameSize
// cannot be expressed; Writer reports them as errors, this function panics.
func AppendFrame(buf, payload []byte) []byte {
	if len(payload) > math.MaxInt32 {
		panic("tcpez/frame: payload over MaxFrameSize")
	}
	buf = AppendHeader(buf, Header(len(payload)))
	return append(buf, payload...)
}

// AppendBatch appends payloads to buf as one batch. An empty batch cannot be
// expressed and appends nothing.
func AppendBatch(buf []byte, payloads ...[]byte) []byte {
	if len(payloads) == 0 {
		return buf
	}
	buf = AppendHeader(buf, BatchHeader(len(payloads)))
	for _, p := range payloads {
		buf = AppendFrame(buf, p)
	}
	return buf
}

// ParseHeader reads the header that starts a request or an answer from the
// front of buf and checks it against lim. ok is false when buf holds fewer
// than HeaderSize bytes.
func ParseHeader(buf []byte, lim Limits) (rest []byte, h Header, ok bool, err error) {
	if len(buf) < HeaderSize {
		return buf, 0, false, nil
	}
	h = decodeHeader(buf)
	if err := lim.CheckHeader(h); err != nil {
		return buf, h, false, err
	}
	return buf[HeaderSize:], h, true, nil
}

// ParseFrame reads one whole frame from the front of buf: a header that must
// be a length (a negative one is ErrNegativeLength), then the payload, which
// aliases buf. ok is false when buf does not yet hold the whole frame.
func ParseFrame(buf []byte, lim Limits) (rest, payload []byte, ok bool, err error) {
	if len(buf) < HeaderSize {
		return buf, nil, false, nil
	}
	h := decodeHeader(buf)
	if err := lim.CheckLength(h); err != nil {
		return buf, nil, false, err
	}
	end := HeaderSize + h.Len()
	if len(buf) < end {
		return buf, nil, false, nil
	}
	return buf[end:], buf[HeaderSize:end:end], true, nil
}

// decodeHeader decodes the header at the front of buf, which holds at
// least HeaderSize bytes: the one decoding the parsers and Reader share.
func decodeHeader(buf []byte) Header { return Header(binary.BigEndian.Uint32(buf)) }
