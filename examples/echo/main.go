// Echo is the smallest complete tcpez program: a server that answers every
// request with its own bytes, and a client that calls it.
//
//	go run ./examples/echo
package main

import (
	"context"
	"fmt"
	"log"
	"net"
	"time"

	"github.com/tcpez/tcpez/client"
	"github.com/tcpez/tcpez/server"
	"github.com/tcpez/tcpez/span"
)

// echo is the handler: the answer is the request.
func echo(ctx context.Context, req []byte, sp *span.Span) ([]byte, error) {
	sp.Attr("command", "echo")
	return req, nil
}

func main() {
	srv := server.New(server.HandlerFunc(echo), server.Config{})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	go srv.Serve(l)
	defer srv.Shutdown(context.Background())

	c, err := client.New([]string{l.Addr().String()}, client.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	answer, err := c.Call(ctx, []byte("PING"))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s\n", answer)

	// A pipeline sends its requests as one batch; answers come in order.
	p := c.Pipeline()
	p.Enqueue([]byte("PING1"))
	p.Enqueue([]byte("PING2"))
	answers, err := p.Flush(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s %s\n", answers[0], answers[1])
}
