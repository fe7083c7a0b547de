package frame_test

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/tcpez/tcpez/frame"
)

// TestWriteFrameTail: a frame written as a head and a tail is, byte for
// byte, the frame WriteFrame writes of the two joined, whether the parts
// fit the buffer, fill it, or pass it by far (written from the tail's own
// slice), and after frames already buffered.
func TestWriteFrameTail(t *testing.T) {
	sizes := []int{0, 1, 60, 4 << 10, 70 << 10, 1 << 20}
	for _, buf := range []int{16, 64, 4 << 10} {
		for _, h := range sizes[:4] {
			for _, n := range sizes {
				t.Run(fmt.Sprintf("buf=%d/head=%d/tail=%d", buf, h, n), func(t *testing.T) {
					head, tail := pattern(h, 1), pattern(n, 2)
					var got, want bytes.Buffer
					w := frame.NewWriterSize(&got, buf)
					ref := frame.NewWriterSize(&want, buf)
					for _, step := range []func(w *frame.Writer) error{
						func(w *frame.Writer) error { return w.WriteFrame([]byte("before")) },
						func(w *frame.Writer) error {
							if w == ref {
								return w.WriteFrame(append(append([]byte{}, head...), tail...))
							}
							return w.WriteFrameTail(head, tail)
						},
						func(w *frame.Writer) error { return w.WriteFrame([]byte("after")) },
						(*frame.Writer).Flush,
					} {
						if err := step(w); err != nil {
							t.Fatal(err)
						}
						if err := step(ref); err != nil {
							t.Fatal(err)
						}
					}
					if !bytes.Equal(got.Bytes(), want.Bytes()) {
						t.Fatalf("%d bytes written, want the %d of the joined frame", got.Len(), want.Len())
					}
				})
			}
		}
	}
}

// pattern is n bytes that differ from one position and seed to the next.
func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7) + seed
	}
	return b
}
