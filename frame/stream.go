package frame

import (
	"encoding/binary"
	"fmt"
)

// Streams (version 3; docs/PROTOCOL.md, "Streams"): a call opened with
// KindOpen carries a sequence of messages each way in KindData frames,
// ended by KindEnd (or, from the server, an error frame), under per-stream
// flow control by KindWindow credits.

// FlagMore, on a data frame, says that the message goes on in the
// stream's next data frame: a message longer than a frame is sent in
// chunks. It is the only flag defined; only data frames may set it.
const FlagMore uint8 = 0x01

// StreamWindow is the credit each side of a new stream starts with: the
// bytes of data frames (6-byte mux header and body, without the 4-byte
// length) it may send before the receiver grants more with window frames.
const StreamWindow = 256 << 10

// DataCost is the credit a data frame with a body of n bytes takes: its
// mux header counts, so that even empty messages are bounded by the window.
func DataCost(n int) int { return MuxHeaderSize + n }

// ErrStreamWindow is a data frame the sender had no credit for. It
// matches ErrProtocol.
var ErrStreamWindow error = protocolError("stream data over its window")

// AppendData appends a data frame's length prefix and mux header for a
// body of bodyLen bytes, which the caller appends next.
func AppendData(buf []byte, id uint32, more bool, bodyLen int) []byte {
	buf = AppendMuxHeader(buf, KindData, id, bodyLen)
	if more {
		buf[len(buf)-5] = FlagMore
	}
	return buf
}

// AppendWindow appends a window frame granting n more bytes on stream id.
func AppendWindow(buf []byte, id uint32, n uint32) []byte {
	buf = AppendMuxHeader(buf, KindWindow, id, 4)
	return binary.BigEndian.AppendUint32(buf, n)
}

// WindowIncrement reads the body of a window frame: a grant of 0, or one
// that takes the window past 2^31-1, breaks the protocol.
func WindowIncrement(body []byte, window int64) (uint32, error) {
	n := binary.BigEndian.Uint32(body)
	if n == 0 || window+int64(n) > 1<<31-1 {
		return 0, fmt.Errorf("%w: window update of %d on a window of %d", ErrStreamWindow, n, window)
	}
	return n, nil
}
