package textcmd

import (
	"io"

	"github.com/tcpez/tcpez/frame"
)

// Writer buffers messages so that many go out in one write. Nothing
// reaches the stream until the buffer fills or Flush is called. It writes
// through a *frame.Writer, sharing its buffering and gathering writes.
type Writer struct {
	w   *frame.Writer
	buf []byte
}

// NewWriter returns a Writer over w with frame.DefaultBufferSize.
func NewWriter(w io.Writer) *Writer { return To(frame.NewWriter(w)) }

// To returns a Writer that writes to w.
func To(w *frame.Writer) *Writer { return &Writer{w: w} }

// WriteMessage writes one message: the line of name and args, and data
// when it is not nil. The byte count must be among args where the
// protocol expects it. A name or argument that cannot be sent (ValidName,
// ValidToken) is ErrBadToken, and nothing is written.
func (w *Writer) WriteMessage(name []byte, args [][]byte, data []byte) error {
	if !ValidName(name) {
		return ErrBadToken
	}
	for _, a := range args {
		if !ValidToken(a) {
			return ErrBadToken
		}
	}
	w.buf = AppendMessage(w.buf[:0], name, args, nil)
	if _, err := w.w.Write(w.buf); err != nil {
		return err
	}
	if data == nil {
		return nil
	}
	if _, err := w.w.Write(data); err != nil {
		return err
	}
	_, err := w.w.Write(crlf)
	return err
}

var crlf = []byte("\r\n")

// WriteRaw writes bytes already encoded, such as a response a handler
// built with AppendMessage.
func (w *Writer) WriteRaw(p []byte) error {
	_, err := w.w.Write(p)
	return err
}

// Flush writes any buffered data to the stream.
func (w *Writer) Flush() error { return w.w.Flush() }
