package server_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/tcpez/tcpez/frame"
	"github.com/tcpez/tcpez/server"
	"github.com/tcpez/tcpez/span"
)

// TestMuxVersion1HasNoRemote: a client that asks for version 1 of the
// multiplexed mode is acknowledged with 1 and cannot be called back or
// pushed to, so it never sees kinds it does not know.
func TestMuxVersion1HasNoRemote(t *testing.T) {
	srv, addr := startServer(t, func(ctx context.Context, req []byte, _ *span.Span) ([]byte, error) {
		if _, ok := server.RemoteFromContext(ctx); ok {
			return []byte("remote"), nil
		}
		return []byte("none"), nil
	}, server.Config{})
	c := dial(t, addr)
	preface := frame.AppendPreface(nil)
	preface[frame.HeaderSize+8] = 1 // the version byte
	write(t, c, preface)
	ack := readN(t, c, frame.HeaderSize+frame.AckSize)
	if a, ok := frame.ParseAck(ack[frame.HeaderSize:]); !ok || a.Version != 1 {
		t.Fatalf("ack %+v, %v; want version 1", a, ok)
	}
	write(t, c, frame.AppendMux(nil, frame.KindRequest, 1, []byte("x")))
	want := frame.AppendMux(nil, frame.KindAnswer, 1, []byte("none"))
	if got := readN(t, c, len(want)); !bytes.Equal(got, want) {
		t.Fatalf("got % x, want % x", got, want)
	}
	if rs := srv.Remotes(); len(rs) != 0 {
		t.Fatalf("%d remotes, want none", len(rs))
	}
}
