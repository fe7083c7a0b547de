package textserver_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"testing"

	"github.com/tcpez/tcpez/server"
	"github.com/tcpez/tcpez/textcmd/textserver"
)

// benchMux answers "get <key>" with a 16-byte value and stores "set"'s data
// nowhere: what is measured is the engine, the codec and the Mux.
func benchMux() *textserver.Mux {
	mux := textserver.NewMux(textserver.Config{})
	value := []byte("0123456789abcdef")
	mux.HandleFunc("get", func(_ context.Context, req *textserver.Request, resp *textserver.Response) error {
		resp.Message("VALUE", [][]byte{req.Arg(0), []byte("0"), []byte("16")}, value)
		resp.Line("END")
		return nil
	}, textserver.Command{MinArgs: 1})
	mux.HandleFunc("set", func(context.Context, *textserver.Request, *textserver.Response) error {
		return nil
	}, textserver.Command{CountArg: 4})
	return mux
}

// benchServer writes burst copies of req per write to a text server over
// loopback TCP and reads their answers; a write holds reqs requests.
func benchServer(b *testing.B, req, answer string, burst, reqs int) {
	_, addr := serve(b, benchMux(), server.Config{})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	out := bytes.Repeat([]byte(req), burst)
	in := make([]byte, len(answer)*burst)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Write(out); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(c, in); err != nil {
			b.Fatal(err)
		}
	}
	if !bytes.HasPrefix(in, []byte(answer)) {
		b.Fatalf("answer %q, want %q", in[:len(answer)], answer)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*reqs), "ns/req")
}

const (
	benchGet    = "get key:0001\r\n"
	benchGetAns = "VALUE key:0001 0 16\r\n0123456789abcdef\r\nEND\r\n"
	benchSet    = "set key:0001 0 0 16 noreply\r\n0123456789abcdef\r\n"
)

func BenchmarkGet16B(b *testing.B)             { benchServer(b, benchGet, benchGetAns, 1, 1) }
func BenchmarkGetPipelined64x16B(b *testing.B) { benchServer(b, benchGet, benchGetAns, 64, 64) }

// BenchmarkSetPipelined64x16B ends each burst with a get, whose answer is
// the only one (the sets ask for none).
func BenchmarkSetPipelined64x16B(b *testing.B) {
	benchServer(b, string(bytes.Repeat([]byte(benchSet), 63))+benchGet, benchGetAns, 1, 64)
}
