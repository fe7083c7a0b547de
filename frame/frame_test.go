package frame_test

import (
	"bytes"
	"errors"
	"io"
	"math"
	"net"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/tcpez/tcpez/frame"
)

func TestLimitsValidate(t *testing.T) {
	for _, lim := range []frame.Limits{
		{MaxFrameSize: -1},
		{MaxBatchCount: -1},
		{MaxFrameSize: math.MaxInt32 + 1},
		{MaxBatchCount: math.MaxInt32 + 1},
	} {
		if err := lim.Validate(); !errors.Is(err, frame.ErrInvalidLimits) {
			t.Errorf("%+v: Validate() = %v, want ErrInvalidLimits", lim, err)
		}
	}
	for _, lim := range []frame.Limits{{}, {MaxFrameSize: math.MaxInt32, MaxBatchCount: math.MaxInt32}} {
		if err := lim.Validate(); err != nil {
			t.Errorf("%+v: Validate() = %v", lim, err)
		}
	}
}

func TestCheckHeader(t *testing.T) {
	lim := frame.Limits{MaxFrameSize: 10, MaxBatchCount: 3}
	for _, tc := range []struct {
		h    frame.Header
		want error
	}{
		{0, nil},
		{10, nil},
		{11, frame.ErrFrameTooLarge},
		{math.MaxInt32, frame.ErrFrameTooLarge},
		{-1, nil},
		{-3, nil},
		{-4, frame.ErrBatchTooLarge},
		{math.MinInt32, frame.ErrMalformedHeader},
	} {
		err := lim.CheckHeader(tc.h)
		if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
			t.Errorf("CheckHeader(%d) = %v, want %v", tc.h, err, tc.want)
		}
	}
	if err := lim.CheckLength(-1); !errors.Is(err, frame.ErrNegativeLength) {
		t.Errorf("CheckLength(-1) = %v", err)
	}
}

func TestSizeErrorCarriesBothLengths(t *testing.T) {
	_, _, _, err := frame.ParseHeader([]byte{0x7f, 0xff, 0xff, 0xff}, frame.Limits{MaxFrameSize: 1000})
	var se *frame.SizeError
	if !errors.As(err, &se) {
		t.Fatalf("err = %v, want *SizeError", err)
	}
	if se.Batch || se.Limit != 1000 || se.Size != math.MaxInt32 {
		t.Errorf("SizeError = %+v", se)
	}
	if !strings.Contains(se.Error(), "2147483647") || !strings.Contains(se.Error(), "1000") {
		t.Errorf("message %q lacks the lengths", se.Error())
	}
	_, _, _, err = frame.ParseHeader(frame.AppendHeader(nil, frame.BatchHeader(50_000_000)), frame.Limits{})
	if !errors.As(err, &se) || !se.Batch || se.Size != 50_000_000 || se.Limit != frame.DefaultMaxBatchCount {
		t.Errorf("batch SizeError = %v", err)
	}
	if errors.Is(err, frame.ErrFrameTooLarge) {
		t.Error("a batch SizeError matches ErrFrameTooLarge")
	}
}

func TestParseFrame(t *testing.T) {
	buf := frame.AppendFrame(nil, []byte("abc"))
	buf = frame.AppendFrame(buf, nil)
	for i := range len(buf) {
		if i == 7 {
			continue // exactly the first frame
		}
		_, _, ok, err := frame.ParseFrame(buf[:i], frame.Limits{})
		if i < 7 && (ok || err != nil) {
			t.Fatalf("ParseFrame(%d bytes) = ok %v, err %v; want incomplete", i, ok, err)
		}
	}
	rest, p, ok, err := frame.ParseFrame(buf, frame.Limits{})
	if !ok || err != nil || string(p) != "abc" {
		t.Fatalf("ParseFrame = %q, %v, %v", p, ok, err)
	}
	// The payload must not let an append overwrite the next frame.
	if cap(p) != 3 {
		t.Errorf("payload cap %d, want 3", cap(p))
	}
	rest, p, ok, err = frame.ParseFrame(rest, frame.Limits{})
	if !ok || err != nil || len(p) != 0 || len(rest) != 0 {
		t.Fatalf("empty frame: %q, %v, %v, rest %d", p, ok, err, len(rest))
	}
	if _, _, _, err := frame.ParseFrame([]byte{0xff, 0xff, 0xff, 0xff}, frame.Limits{}); !errors.Is(err, frame.ErrNegativeLength) {
		t.Errorf("negative: %v", err)
	}
}

func TestReaderSplitByteByByte(t *testing.T) {
	var data []byte
	data = frame.AppendFrame(data, []byte("one"))
	data = frame.AppendBatch(data, []byte("two"), nil, bytes.Repeat([]byte("x"), 5000))
	data = frame.AppendFrame(data, nil)
	got, err := decode(data, frame.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	r := frame.NewReaderSize(iotest.OneByteReader(bytes.NewReader(data)), 16, frame.Limits{})
	var n int
	for {
		h, err := r.ReadHeader()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		count := 1
		if h.IsBatch() {
			count = h.Count()
		}
		for range count {
			var p []byte
			if h.IsBatch() {
				p, err = r.ReadFrame(nil)
			} else {
				p, err = r.ReadPayload(nil, h.Len())
			}
			if err != nil {
				t.Fatal(err)
			}
			_ = p
		}
		n++
	}
	if n != len(got) || n != 3 {
		t.Fatalf("read %d messages one byte at a time, %d at once; want 3", n, len(got))
	}
}

func TestReaderTruncation(t *testing.T) {
	full := frame.AppendFrame(nil, []byte("hello"))
	for cut := 1; cut < len(full); cut++ {
		_, err := decode(full[:cut], frame.Limits{})
		if !errors.Is(err, frame.ErrTruncated) || !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("cut at %d: %v, want ErrTruncated", cut, err)
		}
	}
	// A batch that ends between its frames is truncated too.
	batch := frame.AppendBatch(nil, []byte("a"), []byte("b"))
	if _, err := decode(batch[:9], frame.Limits{}); !errors.Is(err, frame.ErrTruncated) {
		t.Errorf("batch cut between frames: %v", err)
	}
}

// stallReader delivers its data, then reports an error as a stalled peer
// would be reported by a read deadline.
type stallReader struct {
	data []byte
}

var errStalled = errors.New("stalled")

func (s *stallReader) Read(p []byte) (int, error) {
	if len(s.data) == 0 {
		return 0, errStalled
	}
	n := copy(p, s.data)
	s.data = s.data[n:]
	return n, nil
}

func TestReaderMemoryFollowsArrivedBytes(t *testing.T) {
	// Announce 16 MiB, send 10 bytes, stall.
	data := frame.AppendHeader(nil, frame.DefaultMaxFrameSize)
	data = append(data, "0123456789"...)
	r := frame.NewReader(&stallReader{data: data}, frame.Limits{})
	h, err := r.ReadHeader()
	if err != nil {
		t.Fatal(err)
	}
	p, err := r.ReadPayload(nil, h.Len())
	if !errors.Is(err, errStalled) {
		t.Fatalf("err = %v, want the stall passed through", err)
	}
	if cap(p) > 64<<10 {
		t.Errorf("a stalled 16 MiB frame holds %d bytes after 10 arrived", cap(p))
	}
}

func TestReaderReusesBuffer(t *testing.T) {
	data := frame.AppendFrame(nil, []byte("abcdef"))
	data = frame.AppendFrame(data, []byte("xyz"))
	r := frame.NewReader(bytes.NewReader(data), frame.Limits{})
	buf := make([]byte, 0, 64)
	p, err := r.ReadFrame(buf)
	if err != nil || string(p) != "abcdef" || &p[0] != &buf[:1][0] {
		t.Fatalf("first frame %q, %v, or not in the caller's buffer", p, err)
	}
	p, err = r.ReadFrame(p)
	if err != nil || string(p) != "xyz" || &p[0] != &buf[:1][0] {
		t.Fatalf("second frame %q, %v, or not in the caller's buffer", p, err)
	}
	if _, err := r.ReadFrame(p); !errors.Is(err, frame.ErrTruncated) {
		t.Fatalf("ReadFrame at end = %v, want ErrTruncated (a frame was required)", err)
	}
}

func TestLargeFrameRoundTrip(t *testing.T) {
	payload := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	var stream bytes.Buffer
	w := frame.NewWriter(&stream)
	if err := w.WriteFrame(payload); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	r := frame.NewReader(&stream, frame.Limits{})
	got, err := r.ReadFrame(nil)
	if err != nil || !bytes.Equal(got, payload) {
		t.Fatalf("1 MiB frame: err %v, equal %v", err, bytes.Equal(got, payload))
	}
	if cap(got) != len(payload) {
		t.Errorf("buffer cap %d for a %d-byte frame", cap(got), len(payload))
	}
}

func TestWriterCoalescesAndMatchesAppend(t *testing.T) {
	var stream countingWriter
	w := frame.NewWriter(&stream)
	var want []byte
	for i := range 100 {
		p := bytes.Repeat([]byte{byte(i)}, i)
		if err := w.WriteFrame(p); err != nil {
			t.Fatal(err)
		}
		want = frame.AppendFrame(want, p)
	}
	if err := w.WriteBatchHeader(2); err != nil {
		t.Fatal(err)
	}
	want = frame.AppendHeader(want, -2)
	if stream.writes != 0 {
		t.Fatalf("%d writes before Flush", stream.writes)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if stream.writes != 1 || !bytes.Equal(stream.Bytes(), want) {
		t.Fatalf("%d writes; bytes equal: %v", stream.writes, bytes.Equal(stream.Bytes(), want))
	}
	if err := w.WriteBatchHeader(0); !errors.Is(err, frame.ErrEmptyBatch) {
		t.Errorf("WriteBatchHeader(0) = %v", err)
	}
}

type countingWriter struct {
	bytes.Buffer
	writes int
}

func (c *countingWriter) Write(p []byte) (int, error) {
	c.writes++
	return c.Buffer.Write(p)
}

// vectorWriter records each call: a gathering write is one call.
type vectorWriter struct {
	countingWriter
	vectors int
}

func (v *vectorWriter) WriteBuffers(bufs *net.Buffers) (int64, error) {
	v.vectors++
	var n int64
	for _, b := range *bufs {
		m, _ := v.Buffer.Write(b)
		n += int64(m)
	}
	*bufs = nil
	return n, nil
}

// TestWriterOverflow: a frame that does not fit in the room left goes out
// at once with what is buffered, in one gathering write when the stream
// offers one (payloads up to 64 KiB), and in order either way; sizes
// around the buffer's edge.
func TestWriterOverflow(t *testing.T) {
	const size = 64
	for _, vector := range []bool{true, false} {
		for _, n := range []int{size - 4 - 10, size - 4 - 9, size - 4, size - 3, size, 3 * size, 64<<10 + 1} {
			var v vectorWriter
			var dst io.Writer = &v.countingWriter
			if vector {
				dst = &v
			}
			w := frame.NewWriterSize(dst, size)
			small := []byte("0123456789"[:6]) // a 10-byte frame
			big := bytes.Repeat([]byte{'x'}, n)
			for _, p := range [][]byte{small, big, small} {
				if err := w.WriteFrame(p); err != nil {
					t.Fatal(err)
				}
			}
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
			want := frame.AppendFrame(frame.AppendFrame(frame.AppendFrame(nil, small), big), small)
			if !bytes.Equal(v.Bytes(), want) {
				t.Fatalf("vector %v, %d-byte frame: stream differs", vector, n)
			}
			fits := len(want) <= size
			switch {
			case fits && (v.vectors != 0 || v.writes != 1):
				t.Errorf("%d bytes fit: %d gathering writes and %d writes, want 0 and 1", len(want), v.vectors, v.writes)
			case n > 64<<10 && v.vectors != 0:
				t.Errorf("a %d-byte payload went out in a gathering write: it is sent as bufio sends it", n)
			case !fits && n <= 64<<10 && vector && (v.vectors != 1 || v.writes > 1):
				t.Errorf("%d bytes overflow: %d gathering writes and %d writes, want 1 and at most 1", len(want), v.vectors, v.writes)
			}
		}
	}
}

// A failed write is returned from then on, as bufio.Writer does.
func TestWriterErrorSticks(t *testing.T) {
	w := frame.NewWriterSize(failingWriter{}, 16)
	if err := w.WriteFrame(make([]byte, 100)); !errors.Is(err, errWrite) {
		t.Fatalf("WriteFrame = %v, want the stream's error", err)
	}
	if err := w.WriteFrame(nil); !errors.Is(err, errWrite) {
		t.Fatalf("WriteFrame after = %v, want the stream's error", err)
	}
	if err := w.Flush(); !errors.Is(err, errWrite) {
		t.Fatalf("Flush after = %v, want the stream's error", err)
	}
	w.Reset(io.Discard)
	if err := w.WriteFrame(make([]byte, 100)); err != nil {
		t.Fatalf("after Reset: %v", err)
	}
}

var errWrite = errors.New("write failed")

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errWrite }

// PeekHeader looks without consuming; NextBuffered tells a message that
// can be read without blocking from one still arriving.
func TestPeekHeaderAndNextBuffered(t *testing.T) {
	in := frame.AppendFrame(nil, []byte("abc"))
	in = frame.AppendHeader(in, frame.BatchHeader(2))
	in = append(frame.AppendHeader(in, 9), 'x') // 1 of 9 payload bytes
	r := frame.NewReader(bytes.NewReader(in), frame.Limits{})
	if r.NextBuffered() {
		t.Fatal("NextBuffered before anything was read")
	}
	for _, want := range []struct {
		h     frame.Header
		whole bool
	}{{3, true}, {frame.BatchHeader(2), true}, {9, false}} {
		h, err := r.PeekHeader()
		if err != nil || h != want.h {
			t.Fatalf("PeekHeader = %d, %v; want %d", h, err, want.h)
		}
		if got := r.NextBuffered(); got != want.whole {
			t.Fatalf("header %d: NextBuffered = %v, want %v", h, got, want.whole)
		}
		if again, _ := r.PeekHeader(); again != h {
			t.Fatalf("PeekHeader consumed: %d then %d", h, again)
		}
		if _, err := r.ReadHeader(); err != nil {
			t.Fatal(err)
		}
		if !h.IsBatch() && want.whole {
			if _, err := r.ReadPayload(nil, h.Len()); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestReadLength: the length of a frame is known, and checked, before its
// payload is read, so that a server can take memory for it first.
func TestReadLength(t *testing.T) {
	lim := frame.Limits{MaxFrameSize: 8}
	r := frame.NewReader(bytes.NewReader(frame.AppendFrame(nil, []byte("abc"))), lim)
	n, err := r.ReadLength()
	if err != nil || n != 3 {
		t.Fatalf("ReadLength = %d, %v", n, err)
	}
	if p, err := r.ReadPayload(nil, n); err != nil || string(p) != "abc" {
		t.Fatalf("ReadPayload = %q, %v", p, err)
	}
	for name, tc := range map[string]struct {
		in   []byte
		want error
	}{
		"end of stream":    {nil, frame.ErrTruncated},
		"half a header":    {[]byte{0, 0}, frame.ErrTruncated},
		"negative":         {frame.AppendHeader(nil, -1), frame.ErrNegativeLength},
		"over the limit":   {frame.AppendHeader(nil, 9), frame.ErrProtocol},
		"malformed header": {[]byte{0x80, 0, 0, 0}, frame.ErrMalformedHeader},
	} {
		r := frame.NewReader(bytes.NewReader(tc.in), lim)
		if _, err := r.ReadLength(); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", name, err, tc.want)
		}
	}
}

// TestWriterWriteRaw: raw bytes of every size, mixed with frames, come out
// in order and unchanged, pooled or not: the path other codecs use.
func TestWriterWriteRaw(t *testing.T) {
	for _, pool := range []*frame.BufferPool{nil, frame.NewBufferPool(1 << 10)} {
		var out bytes.Buffer
		w := frame.NewWriterSize(&out, 64)
		w.SetPool(pool)
		var want []byte
		for _, n := range []int{0, 1, 60, 65, 700, 5000, 100 << 10} {
			p := bytes.Repeat([]byte{byte('a' + n%26)}, n)
			if m, err := w.Write(p); err != nil || m != n {
				t.Fatalf("Write(%d bytes) = %d, %v", n, m, err)
			}
			want = append(want, p...)
			if err := w.WriteFrame([]byte("f")); err != nil {
				t.Fatal(err)
			}
			want = frame.AppendFrame(want, []byte("f"))
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out.Bytes(), want) {
			t.Fatalf("pool %v: wrote %d bytes, want %d, or they differ", pool != nil, out.Len(), len(want))
		}
	}
}
