package textcmd_test

import (
	"testing"

	"github.com/tcpez/tcpez/textcmd"
)

// loopReader returns the bytes of msg over and over, at most chunk bytes
// a read: an endless stream of pipelined messages that allocates nothing.
type loopReader struct {
	msg   []byte
	off   int
	chunk int
}

func (l *loopReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) && n < l.chunk {
		c := copy(p[n:min(len(p), l.chunk)], l.msg[l.off:])
		n += c
		l.off = (l.off + c) % len(l.msg)
	}
	return n, nil
}

const (
	benchResponse = "VALUE key:0001 0 16\r\n0123456789abcdef\r\nEND\r\n"
	benchRequest  = "set key:0001 0 0 16\r\n0123456789abcdef\r\n"
)

// benchRead reads msg again and again from a stream that delivers chunk
// bytes a read: large chunks keep whole messages at hand (the fast path),
// small ones have each message arrive over several reads.
func benchRead(b *testing.B, msg string, chunk int, read func(*textcmd.Reader, []byte) ([]byte, error)) {
	r := textcmd.NewReader(&loopReader{msg: []byte(msg), chunk: chunk}, textcmd.Memcached, textcmd.Limits{})
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		var err error
		if buf, err = read(r, buf); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkReaderMessage(b *testing.B) {
	var m textcmd.Message
	read := func(r *textcmd.Reader, buf []byte) ([]byte, error) { return r.ReadMessage(buf, &m) }
	b.Run("buffered", func(b *testing.B) { benchRead(b, benchRequest, 16<<10, read) })
	b.Run("split", func(b *testing.B) { benchRead(b, benchRequest, 7, read) })
}

func BenchmarkReaderResponse(b *testing.B) {
	parts := make([]textcmd.Message, 0, 4)
	read := func(r *textcmd.Reader, buf []byte) ([]byte, error) {
		var err error
		buf, parts, err = r.ReadResponse(buf, parts[:0])
		return buf, err
	}
	b.Run("buffered", func(b *testing.B) { benchRead(b, benchResponse, 16<<10, read) })
	b.Run("split", func(b *testing.B) { benchRead(b, benchResponse, 7, read) })
}
