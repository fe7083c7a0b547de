package frame

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
)

// The multiplexed mode (docs/PROTOCOL.md, "The multiplexed mode") keeps the
// v1 length prefix and puts a small header at the front of every payload:
//
//	+------------+---------+---------+-----------------+------------+
//	| length i32 | kind u8 | flags u8| call id u32, BE | body       |
//	+------------+---------+---------+-----------------+------------+
//
// The functions here parse and append those frames without state, as
// ParseFrame and AppendFrame do for v1.

// MuxHeaderSize is the size of the header at the front of a mux frame's
// payload: kind, flags and call id.
const MuxHeaderSize = 6

// Kind says what a mux frame carries.
type Kind uint8

// The kinds of the multiplexed mode. Version 1 has kinds 1 to 5; version 2
// adds 6 and 7, traffic the server starts; version 3 adds 8 to 11, streams
// (see stream.go). The values 12 to 15 are reserved; a peer only sends a
// kind once both sides announced its version in the negotiation.
//
// Calls go both ways in version 2, each direction with its own ids: a
// request (from the client) and a call (from the server) open a call in
// the sender's id space, and an answer, error or cancel names a call of
// the id space of the side that opened it, so ids never collide.
const (
	KindRequest Kind = 1  // a call from the client: the body is the request payload
	KindAnswer  Kind = 2  // the answer to the peer's call with the same id
	KindError   Kind = 3  // the peer's call with the same id failed: code and message
	KindCancel  Kind = 4  // the caller gave up its call with the same id; an optional code
	KindGoAway  Kind = 5  // the server takes no new calls; id 0, code and message
	KindNotify  Kind = 6  // version 2: a notification from the server; id 0, never answered
	KindCall    Kind = 7  // version 2: a call from the server to the client
	KindOpen    Kind = 8  // version 3: the client opens a stream; the body is its opening payload
	KindData    Kind = 9  // version 3: a chunk of a stream's message; FlagMore says the message goes on
	KindEnd     Kind = 10 // version 3: the sender sends no more on the stream; the body is a trailer
	KindWindow  Kind = 11 // version 3: the receiver lets the sender send more; a uint32 BE increment
)

func (k Kind) String() string {
	switch k {
	case KindRequest:
		return "request"
	case KindAnswer:
		return "answer"
	case KindError:
		return "error"
	case KindCancel:
		return "cancel"
	case KindGoAway:
		return "goaway"
	case KindNotify:
		return "notify"
	case KindCall:
		return "call"
	case KindOpen:
		return "open"
	case KindData:
		return "data"
	case KindEnd:
		return "end"
	case KindWindow:
		return "window"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Code says why a call failed, in an error or a go-away frame.
type Code uint16

// Error codes. The codes marked "not run" say that the handler never saw
// the request, so a client may send it again elsewhere.
const (
	CodeHandler      Code = 1 // the handler returned an error or panicked
	CodeCancelled    Code = 2 // the call was cancelled before it was answered
	CodeTooMany      Code = 3 // not run: the connection's MaxInFlight was reached
	CodeOverloaded   Code = 4 // not run: the server's bound on running calls was reached
	CodeShuttingDown Code = 5 // not run: the server is shutting down (also in go-away)
	CodeTooLarge     Code = 6 // not run: the request frame was over the server's limit
	CodeProtocol     Code = 7 // the peer broke the protocol; the connection closes
	CodeDeadline     Code = 8 // the caller's deadline passed before the call was answered
	CodeNoHandler    Code = 9 // not run: the peer has no handler for calls from the server (or for streams)
)

// NotRun reports whether a call that failed with c never reached a handler.
func (c Code) NotRun() bool {
	return c == CodeTooMany || c == CodeOverloaded || c == CodeShuttingDown || c == CodeTooLarge || c == CodeNoHandler
}

func (c Code) String() string {
	switch c {
	case CodeHandler:
		return "handler error"
	case CodeCancelled:
		return "cancelled"
	case CodeTooMany:
		return "too many in flight"
	case CodeOverloaded:
		return "overloaded"
	case CodeShuttingDown:
		return "shutting down"
	case CodeTooLarge:
		return "frame too large"
	case CodeProtocol:
		return "protocol error"
	case CodeDeadline:
		return "deadline exceeded"
	case CodeNoHandler:
		return "no handler"
	}
	return fmt.Sprintf("code(%d)", uint16(c))
}

// MuxFrame is one parsed mux frame. Body aliases the parsed buffer.
type MuxFrame struct {
	Kind  Kind
	Flags uint8
	ID    uint32
	Body  []byte
}

// ErrMuxMalformed is a mux frame whose header breaks the rules: shorter
// than MuxHeaderSize, an unknown kind, flags set, a body where none
// belongs. It matches ErrProtocol.
var ErrMuxMalformed error = protocolError("malformed mux frame")

// AppendMuxHeader appends the length prefix and mux header of a frame
// whose body of bodyLen bytes the caller appends next, so that a body need
// not be copied twice.
func AppendMuxHeader(buf []byte, k Kind, id uint32, bodyLen int) []byte {
	if bodyLen > math.MaxInt32-MuxHeaderSize {
		panic("tcpez/frame: mux body over MaxFrameSize")
	}
	buf = AppendHeader(buf, Header(MuxHeaderSize+bodyLen))
	buf = append(buf, byte(k), 0)
	return binary.BigEndian.AppendUint32(buf, id)
}

// AppendMux appends one whole mux frame.
func AppendMux(buf []byte, k Kind, id uint32, body []byte) []byte {
	return append(AppendMuxHeader(buf, k, id, len(body)), body...)
}

// AppendMuxFrame appends f, flags included (the one way to send FlagMore).
func AppendMuxFrame(buf []byte, f MuxFrame) []byte {
	buf = AppendMux(buf, f.Kind, f.ID, f.Body)
	buf[len(buf)-len(f.Body)-MuxHeaderSize+1] = f.Flags
	return buf
}

// AppendMuxError appends an error frame (or, with KindGoAway, a go-away
// frame) with code and message.
func AppendMuxError(buf []byte, k Kind, id uint32, code Code, msg string) []byte {
	buf = AppendMuxHeader(buf, k, id, 2+len(msg))
	buf = binary.BigEndian.AppendUint16(buf, uint16(code))
	return append(buf, msg...)
}

// ParseMux reads one whole mux frame from the front of buf. ok is false
// when buf does not yet hold it all.
func ParseMux(buf []byte, lim Limits) (rest []byte, f MuxFrame, ok bool, err error) {
	rest, payload, ok, err := ParseFrame(buf, lim)
	if !ok || err != nil {
		return buf, MuxFrame{}, false, err
	}
	f, err = ParseMuxPayload(payload)
	if err != nil {
		return buf, MuxFrame{}, false, err
	}
	return rest, f, true, nil
}

// ParseMuxPayload parses the payload of a frame already read as a mux
// frame.
func ParseMuxPayload(p []byte) (MuxFrame, error) {
	if len(p) < MuxHeaderSize {
		return MuxFrame{}, fmt.Errorf("%w: %d bytes, shorter than its header", ErrMuxMalformed, len(p))
	}
	f, err := ParseMuxHeader(p, len(p)-MuxHeaderSize)
	f.Body = p[MuxHeaderSize:]
	return f, err
}

// ParseMuxHeader checks the mux header at the front of p (at least
// MuxHeaderSize bytes) for a body of bodyLen bytes, which a reader may then
// read where it likes. The frame returned has no Body.
func ParseMuxHeader(p []byte, bodyLen int) (MuxFrame, error) {
	f := MuxFrame{Kind: Kind(p[0]), Flags: p[1], ID: binary.BigEndian.Uint32(p[2:])}
	if f.Flags != 0 && (f.Kind != KindData || f.Flags != FlagMore) {
		return MuxFrame{}, fmt.Errorf("%w: flags %#02x on %v", ErrMuxMalformed, f.Flags, f.Kind)
	}
	switch f.Kind {
	case KindRequest, KindAnswer, KindCall, KindOpen, KindData, KindEnd:
	case KindWindow:
		if bodyLen != 4 {
			return MuxFrame{}, fmt.Errorf("%w: window update with a body of %d bytes", ErrMuxMalformed, bodyLen)
		}
	case KindNotify:
		if f.ID != 0 {
			return MuxFrame{}, fmt.Errorf("%w: notify with id %d", ErrMuxMalformed, f.ID)
		}
	case KindError, KindGoAway:
		if bodyLen < 2 {
			return MuxFrame{}, fmt.Errorf("%w: %v without a code", ErrMuxMalformed, f.Kind)
		}
		if f.Kind == KindGoAway && f.ID != 0 {
			return MuxFrame{}, fmt.Errorf("%w: goaway with id %d", ErrMuxMalformed, f.ID)
		}
	case KindCancel:
		if bodyLen != 0 && bodyLen != 2 {
			return MuxFrame{}, fmt.Errorf("%w: cancel with a body of %d bytes", ErrMuxMalformed, bodyLen)
		}
	default:
		return MuxFrame{}, fmt.Errorf("%w: unknown %v", ErrMuxMalformed, f.Kind)
	}
	return f, nil
}

// ErrorCode splits the body of an error or go-away frame.
func (f MuxFrame) ErrorCode() (Code, string) {
	if len(f.Body) < 2 {
		return 0, ""
	}
	return Code(binary.BigEndian.Uint16(f.Body)), string(f.Body[2:])
}

// The negotiation (docs/PROTOCOL.md, "Negotiation"): a client that speaks
// the multiplexed mode starts with a v1 frame holding the preface; a server
// that speaks it answers with a v1 frame holding the acknowledgement, and
// both then speak mux frames. Any other answer comes from a v1 server.
var (
	prefaceMagic = []byte{0x00, 0xff, 't', 'c', 'p', 'e', 'z', '?'}
	ackMagic     = []byte{0x00, 0xff, 't', 'c', 'p', 'e', 'z', '!'}
)

const (
	// PrefaceSize is the payload length of the preface frame.
	PrefaceSize = 12
	// AckSize is the payload length of the acknowledgement frame.
	AckSize = 20
	// MuxVersion is the version of the multiplexed mode this package
	// speaks: 3, which adds streams to version 2's notifications and calls
	// from the server.
	MuxVersion = 3
)

// Ack is what a server announces when it accepts the multiplexed mode.
type Ack struct {
	Version      uint8
	MaxInFlight  uint32 // calls one connection may have unanswered
	MaxFrameSize uint32 // the largest frame payload the server reads
}

// AppendPreface appends the preface frame a client sends first.
func AppendPreface(buf []byte) []byte {
	buf = AppendHeader(buf, PrefaceSize)
	buf = append(buf, prefaceMagic...)
	return append(buf, MuxVersion, 0, 0, 0)
}

// IsPreface reports whether a first frame's payload is the preface, and
// the version it asks for. A payload that is not is an ordinary v1 request.
func IsPreface(p []byte) (version uint8, ok bool) {
	if len(p) != PrefaceSize || !bytes.Equal(p[:8], prefaceMagic) || p[8] == 0 {
		return 0, false
	}
	return p[8], true
}

// AppendAck appends the acknowledgement frame a mux server answers the
// preface with.
func AppendAck(buf []byte, a Ack) []byte {
	buf = AppendHeader(buf, AckSize)
	buf = append(buf, ackMagic...)
	buf = append(buf, a.Version, 0, 0, 0)
	buf = binary.BigEndian.AppendUint32(buf, a.MaxInFlight)
	return binary.BigEndian.AppendUint32(buf, a.MaxFrameSize)
}

// ParseAck reads the answer to the preface: ok false means the answer came
// from a v1 server's handler, and the connection speaks v1.
func ParseAck(p []byte) (a Ack, ok bool) {
	if len(p) != AckSize || !bytes.Equal(p[:8], ackMagic) || p[8] == 0 {
		return Ack{}, false
	}
	return Ack{
		Version:      p[8],
		MaxInFlight:  binary.BigEndian.Uint32(p[12:]),
		MaxFrameSize: binary.BigEndian.Uint32(p[16:]),
	}, true
}
