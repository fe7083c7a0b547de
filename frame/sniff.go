package frame

import (
	"encoding/binary"
	"errors"
)

// Foreign protocols that Sniff recognises.
const (
	TLS  = "TLS"
	HTTP = "HTTP"
)

// Sniff names the protocol whose first four bytes read as header h, when it
// is one that a tcpez peer is commonly confused with: a TLS record (a plain
// client on a TLS port reads its ClientHello or alert) or an HTTP request or
// status line. It returns TLS, HTTP or "". Any such h is over 16 MiB, so it
// is only consulted once a header has failed the limits: a valid frame is
// never taken for a foreign protocol.
func Sniff(h Header) string {
	var b [HeaderSize]byte
	binary.BigEndian.PutUint32(b[:], uint32(h))
	// A TLS record: content type 20-23 (change_cipher_spec, alert,
	// handshake, application_data), then version 3.x, x at most 4.
	if b[0] >= 20 && b[0] <= 23 && b[1] == 3 && b[2] <= 4 {
		return TLS
	}
	switch string(b[:]) {
	case "GET ", "POST", "PUT ", "HEAD", "DELE", "OPTI", "PATC", "CONN", "TRAC", "PRI ", "HTTP":
		return HTTP
	}
	return ""
}

// SniffError is Sniff for the error of a failed header read: the protocol
// named by the header of a *SizeError for a frame, or "".
func SniffError(err error) string {
	var se *SizeError
	if !errors.As(err, &se) || se.Batch || se.Size < 0 || se.Size > 1<<31-1 {
		return ""
	}
	return Sniff(Header(se.Size))
}
