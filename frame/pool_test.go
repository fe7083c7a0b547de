package frame_test

import (
	"bytes"
	"io"
	"testing"

	"github.com/tcpez/tcpez/frame"
)

// burstSource returns its chunks in order, each in as many reads as the
// reader's buffer needs, and records how much room each read offered.
type burstSource struct {
	splitReader
	offers []int
}

func (s *burstSource) Read(p []byte) (int, error) {
	s.offers = append(s.offers, len(p))
	return s.splitReader.Read(p)
}

// payloads returns n distinct payloads of size bytes.
func payloads(n, size int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = bytes.Repeat([]byte{byte(i), byte(i >> 8), 0x5a}, size/3+1)[:size]
	}
	return out
}

// TestReaderBorrowsDuringBursts: 4 KiB frames on a 4 KiB buffer take a
// read or two each; with a pool, a burst of them is read in 64 KiB reads,
// and once it is consumed the reader waits for more on its own buffer.
func TestReaderBorrowsDuringBursts(t *testing.T) {
	const own, frames = 4 << 10, 64
	ps := payloads(frames, 4<<10)
	var burst []byte
	for _, p := range ps {
		burst = frame.AppendFrame(burst, p)
	}
	reads := map[bool]int{}
	for _, pooled := range []bool{false, true} {
		src := &burstSource{splitReader: splitReader{parts: [][]byte{bytes.Clone(burst), frame.AppendFrame(nil, []byte("after"))}}}
		r := frame.NewReaderSize(src, own, frame.Limits{})
		if pooled {
			r.SetPool(frame.NewBufferPool(64 << 10))
		}
		var buf []byte
		for i, want := range append(ps, []byte("after")) {
			h, err := r.ReadHeader()
			if err == nil {
				buf, err = r.ReadPayload(buf, h.Len())
			}
			if err != nil || !bytes.Equal(buf, want) {
				t.Fatalf("pooled %v, frame %d: %d bytes, %v", pooled, i, len(buf), err)
			}
		}
		if _, err := r.ReadHeader(); err != io.EOF {
			t.Fatalf("pooled %v: after the last frame %v, want io.EOF", pooled, err)
		}
		reads[pooled] = len(src.offers)
		if last := src.offers[len(src.offers)-1]; last > own {
			t.Errorf("pooled %v: waited for more data with %d bytes of buffer, want its own %d", pooled, last, own)
		}
		if big := slicesMax(src.offers); pooled && big <= own {
			t.Errorf("pooled: no read larger than the own buffer (largest %d)", big)
		}
	}
	if reads[true]*4 > reads[false] {
		t.Errorf("%d reads with a pool, %d without; want far fewer with one", reads[true], reads[false])
	}
	// A read per frame without; with, a read per 16 frames (64 KiB), and
	// the reads around the burst.
	if reads[false] < frames || reads[true] > frames/16+3 {
		t.Errorf("%d reads without a pool, %d with, for %d frames; want at least one per frame without, one per 16 with", reads[false], reads[true], frames)
	}
}

func slicesMax(s []int) int {
	m := 0
	for _, v := range s {
		m = max(m, v)
	}
	return m
}

// TestWriterBorrowsForBursts: 4 KiB frames on a 4 KiB buffer each cause a
// write; with a pool they wait in a borrowed buffer for Flush (15 fit in
// 64 KiB), and a burst
// larger than it goes out in a few writes, byte for byte as written.
func TestWriterBorrowsForBursts(t *testing.T) {
	for _, frames := range []int{15, 40} {
		ps := payloads(frames, 4<<10)
		var want []byte
		for _, p := range ps {
			want = frame.AppendFrame(want, p)
		}
		writes := map[bool]int{}
		for _, pooled := range []bool{false, true} {
			var dst countingWriter
			w := frame.NewWriterSize(&dst, 4<<10)
			if pooled {
				w.SetPool(frame.NewBufferPool(64 << 10))
			}
			for _, p := range ps {
				if err := w.WriteFrame(p); err != nil {
					t.Fatal(err)
				}
			}
			if pooled && frames == 15 && dst.writes != 0 {
				t.Errorf("%d writes before Flush of a burst that fits the borrowed buffer", dst.writes)
			}
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(dst.Bytes(), want) {
				t.Fatalf("%d frames, pooled %v: the stream differs from the frames written", frames, pooled)
			}
			writes[pooled] = dst.writes
			// After Flush the writer is back on its own buffer: a small
			// frame is held, and the next burst borrows again.
			if err := w.WriteFrame([]byte("x")); err != nil || w.Buffered() != frame.HeaderSize+1 {
				t.Fatalf("after Flush: %d buffered, %v", w.Buffered(), err)
			}
		}
		if writes[true]*4 > writes[false] {
			t.Errorf("%d frames: %d writes with a pool, %d without; want far fewer with one", frames, writes[true], writes[false])
		}
	}
}

// TestReaderTakeAndDetach: Take hands out frames where they lie while
// they are buffered whole, and after Detach the Reader reads on into other
// memory, so every frame taken before keeps its bytes; with and without a
// pool, whose borrowed buffer must not be lent again either.
func TestReaderTakeAndDetach(t *testing.T) {
	ps := payloads(300, 1000)
	var stream []byte
	for _, p := range ps {
		stream = frame.AppendFrame(stream, p)
	}
	for _, pooled := range []bool{false, true} {
		// Reads of varied sizes, some filling the buffer, some not.
		src := &splitReader{}
		for rest, i := stream, 0; len(rest) > 0; i++ {
			n := min(len(rest), []int{7000, 1500, 30000, 2500}[i%4])
			src.parts, rest = append(src.parts, rest[:n]), rest[n:]
		}
		r := frame.NewReaderSize(src, 4<<10, frame.Limits{})
		if pooled {
			r.SetPool(frame.NewBufferPool(64 << 10))
		}
		var taken [][]byte
		var wants [][]byte
		for i, want := range ps {
			h, err := r.ReadHeader()
			if err != nil {
				t.Fatalf("pooled %v, frame %d: %v", pooled, i, err)
			}
			buffered := r.Buffered()
			p, ok := r.Take(h.Len())
			if ok != (h.Len() <= buffered) {
				t.Fatalf("pooled %v, frame %d: Take says %v with %d of %d bytes buffered", pooled, i, ok, buffered, h.Len())
			}
			if !ok {
				if p, err = r.ReadPayload(nil, h.Len()); err != nil {
					t.Fatalf("pooled %v, frame %d: %v", pooled, i, err)
				}
			} else {
				taken, wants = append(taken, p), append(wants, want)
				r.Detach()
			}
			if !bytes.Equal(p, want) {
				t.Fatalf("pooled %v, frame %d: wrong bytes", pooled, i)
			}
		}
		if len(taken) < len(ps)/2 {
			t.Fatalf("pooled %v: only %d of %d frames were buffered whole", pooled, len(taken), len(ps))
		}
		for i, p := range taken {
			if !bytes.Equal(p, wants[i]) {
				t.Fatalf("pooled %v: taken frame %d was overwritten after Detach", pooled, i)
			}
		}
	}
}
