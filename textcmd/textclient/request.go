package textclient

import (
	"errors"
	"strconv"

	"github.com/tcpez/tcpez/textcmd"
)

// ErrNoReply is the error of a request holding the token "noreply", whose
// missing answer would put every later call on the connection out of step.
var ErrNoReply = errors.New("tcpez/textclient: noreply requests cannot be pipelined")

// ErrCount is the error of a request with data and no Count, or a Count
// and no data.
var ErrCount = errors.New("tcpez/textclient: a data block needs a Count, and a Count a data block")

// Request builds one request: a command name, its arguments, and a data
// block whose byte count goes where Count was called. Building does not
// allocate per token beyond the request's own buffer.
type Request struct {
	line    []byte // name and arguments so far, space-separated
	countAt int    // offset in line where the byte count goes; -1: none
	data    []byte
	hasData bool
	err     error
}

// Cmd starts a request for the command name. A name that cannot open a
// line (textcmd.ValidName) — empty, holding a space, CR or LF, or opening
// with 0x80 or 0x81, which a server takes for memcached's binary protocol
// and closes the connection on — makes Build fail with textcmd.ErrBadToken.
func Cmd(name string) *Request {
	r := &Request{countAt: -1}
	return r.add([]byte(name), textcmd.ValidName([]byte(name)))
}

func (r *Request) token(t []byte) *Request { return r.add(t, textcmd.ValidToken(t)) }

// add appends the token t, which valid says can be sent.
func (r *Request) add(t []byte, valid bool) *Request {
	if !valid {
		r.err = errors.Join(r.err, textcmd.ErrBadToken)
	}
	if string(t) == "noreply" {
		r.err = errors.Join(r.err, ErrNoReply)
	}
	if len(r.line) > 0 {
		r.line = append(r.line, ' ')
	}
	r.line = append(r.line, t...)
	return r
}

// Arg adds an argument.
func (r *Request) Arg(a string) *Request { return r.token([]byte(a)) }

// Bytes adds an argument given as bytes.
func (r *Request) Bytes(a []byte) *Request { return r.token(a) }

// Uint adds a decimal argument.
func (r *Request) Uint(n uint64) *Request {
	var b [20]byte
	return r.token(strconv.AppendUint(b[:0], n, 10))
}

// Int adds a decimal argument.
func (r *Request) Int(n int64) *Request {
	var b [20]byte
	return r.token(strconv.AppendInt(b[:0], n, 10))
}

// Count adds the byte count of the data block as the next argument.
func (r *Request) Count() *Request {
	if r.countAt >= 0 {
		r.err = errors.Join(r.err, ErrCount)
	}
	r.line = append(r.line, ' ')
	r.countAt = len(r.line)
	return r
}

// Data sets the data block; it is not copied until the request is sent.
func (r *Request) Data(b []byte) *Request {
	r.data, r.hasData = b, true
	return r
}

// AppendTo appends the request's bytes to buf.
func (r *Request) AppendTo(buf []byte) ([]byte, error) {
	if r.err != nil {
		return buf, r.err
	}
	if (r.countAt >= 0) != r.hasData {
		return buf, ErrCount
	}
	if r.countAt < 0 {
		return append(append(buf, r.line...), '\r', '\n'), nil
	}
	buf = append(buf, r.line[:r.countAt]...)
	buf = strconv.AppendInt(buf, int64(len(r.data)), 10)
	buf = append(buf, r.line[r.countAt:]...)
	buf = append(buf, '\r', '\n')
	buf = append(buf, r.data...)
	return append(buf, '\r', '\n'), nil
}

// Build returns the request's bytes.
func (r *Request) Build() ([]byte, error) { return r.AppendTo(nil) }
