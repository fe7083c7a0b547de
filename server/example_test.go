package server_test

import (
	"context"
	"fmt"
	"net"
	"strings"

	"github.com/tcpez/tcpez/frame"
	"github.com/tcpez/tcpez/server"
	"github.com/tcpez/tcpez/span"
)

// An upper-casing server, and a client that speaks the wire format by hand.
func Example() {
	srv := server.New(server.HandlerFunc(func(ctx context.Context, req []byte, sp *span.Span) ([]byte, error) {
		sp.Attr("command", "upper")
		return []byte(strings.ToUpper(string(req))), nil
	}), server.Config{})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	go srv.Serve(l)
	defer srv.Shutdown(context.Background())

	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		panic(err)
	}
	defer c.Close()
	c.Write(frame.AppendFrame(nil, []byte("ping")))
	answer, err := frame.NewReader(c, frame.Limits{}).ReadFrame(nil)
	fmt.Println(string(answer), err)
	// Output: PING <nil>
}

// blobStore answers a request for a blob with a small header of its own and
// the blob itself, which the server writes from where it is kept instead
// of copying it after the header.
type blobStore struct{ blobs map[string][]byte }

func (b blobStore) Respond(ctx context.Context, req []byte, sp *span.Span) ([]byte, error) {
	head, tail, err := b.RespondTail(ctx, nil, req, sp)
	return append(head, tail...), err
}

func (b blobStore) RespondAppend(ctx context.Context, dst, req []byte, sp *span.Span) ([]byte, error) {
	head, tail, err := b.RespondTail(ctx, dst, req, sp)
	return append(head, tail...), err
}

func (b blobStore) RespondTail(_ context.Context, dst, req []byte, _ *span.Span) (head, tail []byte, err error) {
	blob, ok := b.blobs[string(req)]
	if !ok {
		return append(dst, "missing"...), nil, nil
	}
	return fmt.Appendf(dst, "%d bytes:", len(blob)), blob, nil
}

// A TailHandler's answer is its head then its tail, one frame.
func ExampleTailHandler() {
	store := blobStore{blobs: map[string][]byte{"logo": []byte(strings.Repeat("#", 100<<10))}}
	srv := server.New(store, server.Config{})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	go srv.Serve(l)
	defer srv.Shutdown(context.Background())

	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		panic(err)
	}
	defer c.Close()
	c.Write(frame.AppendFrame(nil, []byte("logo")))
	answer, err := frame.NewReader(c, frame.Limits{}).ReadFrame(nil)
	fmt.Println(len(answer), string(answer[:15]), err)
	// Output: 102413 102400 bytes:## <nil>
}
