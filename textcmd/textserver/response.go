package textserver

import "github.com/tcpez/tcpez/textcmd"

// Response is the answer a handler builds: one message, or several for a
// multi-part response, or none for a request that gets no answer on the
// wire (memcached's noreply).
type Response struct {
	buf []byte
}

// Line appends a line of status and args.
func (r *Response) Line(status string, args ...string) {
	r.buf = append(r.buf, status...)
	for _, a := range args {
		r.buf = append(r.buf, ' ')
		r.buf = append(r.buf, a...)
	}
	r.buf = append(r.buf, '\r', '\n')
}

// Message appends a line of status and args and, when data is not nil,
// data as its data block; the byte count must be among args where the
// protocol expects it.
func (r *Response) Message(status string, args [][]byte, data []byte) {
	r.buf = textcmd.AppendMessage(append(r.buf, status...), nil, args, data)
}

// Raw appends bytes already encoded, for handlers that format numbers
// with strconv.Append* and spare the allocations of Line.
func (r *Response) Raw(b ...byte) { r.buf = append(r.buf, b...) }

// Buffer returns the bytes appended so far, for appending to in place:
// pass what the append returns to SetBuffer.
func (r *Response) Buffer() []byte { return r.buf }

// SetBuffer replaces the bytes of the response.
func (r *Response) SetBuffer(b []byte) { r.buf = b }

// Len is the number of bytes appended so far.
func (r *Response) Len() int { return len(r.buf) }
