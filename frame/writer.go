package frame

import (
	"bufio"
	"io"
	"math"
)

// Writer buffers frames so that many answers or requests go out in one
// write. Nothing reaches the stream until the buffer fills or Flush is called.
type Writer struct {
	bw *bufio.Writer
}

// NewWriter returns a Writer over w with DefaultBufferSize.
func NewWriter(w io.Writer) *Writer { return NewWriterSize(w, DefaultBufferSize) }

// NewWriterSize returns a Writer over w with a buffer of at least size bytes.
func NewWriterSize(w io.Writer, size int) *Writer {
	return &Writer{bw: bufio.NewWriterSize(w, size)}
}

// Reset discards unflushed data and writes to w next.
func (w *Writer) Reset(wr io.Writer) { w.bw.Reset(wr) }

// Buffered is the number of bytes written but not yet flushed.
func (w *Writer) Buffered() int { return w.bw.Buffered() }

// Fits reports whether a frame of n payload bytes fits in the buffer, so
// that writing it cannot cause a write to the stream.
func (w *Writer) Fits(n int) bool { return HeaderSize+n <= w.bw.Available() }

// WriteFrame writes payload as one frame. A payload larger than the buffer
// goes to the stream directly rather than being copied through it.
func (w *Writer) WriteFrame(payload []byte) error {
	if len(payload) > math.MaxInt32 {
		return &SizeError{Limit: MaxFrameSize, Size: int64(len(payload))}
	}
	if err := w.writeHeader(Header(len(payload))); err != nil {
		return err
	}
	_, err := w.bw.Write(payload)
	return err
}

// WriteBatchHeader writes the header of a batch of n frames; the caller
// writes the n frames next.
func (w *Writer) WriteBatchHeader(n int) error {
	if n < 1 {
		return ErrEmptyBatch
	}
	if n > MaxBatchCount {
		return &SizeError{Batch: true, Limit: MaxBatchCount, Size: int64(n)}
	}
	return w.writeHeader(BatchHeader(n))
}

// Flush writes any buffered data to the stream.
func (w *Writer) Flush() error { return w.bw.Flush() }

func (w *Writer) writeHeader(h Header) error {
	if w.bw.Available() < HeaderSize {
		if err := w.bw.Flush(); err != nil {
			return err
		}
	}
	// AvailableBuffer lets us append in place without a temporary slice.
	_, err := w.bw.Write(AppendHeader(w.bw.AvailableBuffer(), h))
	return err
}
