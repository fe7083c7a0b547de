package client

import (
	"errors"

	"github.com/tcpez/tcpez/frame"
)

// Codec is a wire format for a Client's connections: how a request goes
// on the wire and how its answer is read. Config.Codec nil is the tcpez v1
// protocol of docs/PROTOCOL.md. Whatever the codec, the rest is the
// client's: pooling, balancing, pipelining of concurrent calls, retries,
// reconnection, health checks, stats. docs/DESIGN.md says how a codec
// plugs in; package textcmd/textclient has one.
//
// With a codec, every answer is read by the connection's reader goroutine
// (the v1 path's callers reading their own answers peek at frame
// headers), and Pipeline, which sends a v1 batch, fails with
// ErrBatchUnsupported: concurrent calls pipeline on their own.
type Codec interface {
	// AppendRequest appends req, as the caller passed it to Call, to
	// the connection's write buffer buf.
	AppendRequest(buf, req []byte) []byte
	// ReadAnswer reads one whole answer, appending it to dst. Its errors
	// break the connection; protocol errors should match
	// frame.ErrProtocol.
	ReadAnswer(r *frame.Reader, dst []byte) ([]byte, error)
}

// ErrBatchUnsupported is Pipeline.Flush's error on a client whose Codec
// has no batches.
var ErrBatchUnsupported = errors.New("tcpez/client: this client's codec has no batches")
