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
