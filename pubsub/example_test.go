package pubsub_test

import (
	"context"
	"fmt"
	"net"

	"github.com/tcpez/tcpez/pubsub"
	"github.com/tcpez/tcpez/server"
)

func Example() {
	hub := pubsub.NewHub()
	srv := server.New(hub, server.Config{})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	go srv.Serve(l)
	defer srv.Shutdown(context.Background())

	got := make(chan pubsub.Message, 1)
	c, err := pubsub.Dial(l.Addr().String(), pubsub.Config{OnMessage: func(m pubsub.Message) { got <- m }})
	if err != nil {
		panic(err)
	}
	defer c.Close()
	ctx := context.Background()
	if err := c.Listen(ctx, "news"); err != nil {
		panic(err)
	}
	if err := c.Notify(ctx, "news", []byte("pushed, not polled")); err != nil {
		panic(err)
	}
	m := <-got
	fmt.Printf("%s: %s\n", m.Channel, m.Data)
	// Output: news: pushed, not polled
}
