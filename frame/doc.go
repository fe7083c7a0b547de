// Package frame is the tcpez wire codec: it reads and writes the
// length-prefixed frames of docs/PROTOCOL.md.
//
//	w := frame.NewWriter(conn)
//	if err := w.WriteFrame([]byte("PING")); err != nil { ... }
//	if err := w.Flush(); err != nil { ... }
//	r := frame.NewReader(conn, frame.Limits{})
//	answer, err := r.ReadFrame(nil)
//
// A frame is a big-endian int32 length followed by that many bytes. A negative
// header -N opens a batch: N frames follow, and the answer is -N followed by N
// frames in request order. Frames sent back to back on one connection are
// answered in order. docs/PROTOCOL.md is the full specification.
//
// The package has two layers. Pure functions (AppendFrame, ParseHeader,
// ParseFrame, …) encode and decode whole frames held in memory. Reader and
// Writer are the same codec over a stream: Writer encodes headers with
// AppendHeader, Reader decodes them with the parsers' decoding and checks
// them with the same Limits methods, and both keep a buffer so that a
// server or client can read many frames from one syscall and coalesce many
// answers into one write, reusing the caller's buffers so that the steady
// state does not allocate. A
// BufferPool shared among connections lends them larger buffers during
// bursts, so that small buffers per connection do not cost a syscall per
// frame under load.
//
// Every length a peer announces is checked against Limits before any memory
// is taken for it, and memory for a large frame grows only as its bytes
// arrive, so a peer that announces a large frame and stalls holds only what
// it actually sent.
package frame
