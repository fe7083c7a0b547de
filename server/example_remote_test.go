package server_test

import (
	"context"
	"fmt"
	"net"

	"github.com/tcpez/tcpez/client"
	"github.com/tcpez/tcpez/server"
	"github.com/tcpez/tcpez/span"
)

// A handler that asks its client a question before it answers, on the
// same connection, and a notification pushed to every connected client.
func ExampleRemoteFromContext() {
	srv := server.New(server.HandlerFunc(func(ctx context.Context, req []byte, _ *span.Span) ([]byte, error) {
		r, ok := server.RemoteFromContext(ctx)
		if !ok {
			return nil, fmt.Errorf("a v1 or older mux client cannot be called back")
		}
		name, err := r.Call(ctx, []byte("your name?"))
		if err != nil {
			return nil, err
		}
		return fmt.Appendf(nil, "hello %s, you said %s", name, req), nil
	}), server.Config{})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	go srv.Serve(l)
	defer srv.Shutdown(context.Background())

	pushed := make(chan string, 1)
	c, err := client.New([]string{l.Addr().String()}, client.Config{
		Handler: client.HandlerFunc(func(ctx context.Context, req []byte, _ *span.Span) ([]byte, error) {
			return []byte("alice"), nil // the server's question
		}),
		OnNotify: func(n client.Notification) { pushed <- string(n.Payload) },
	})
	if err != nil {
		panic(err)
	}
	defer c.Close()
	ans, err := c.Call(context.Background(), []byte("hi"))
	if err != nil {
		panic(err)
	}
	fmt.Println(string(ans))

	sent, dropped := server.Broadcast(srv.Remotes(), []byte("news for all"))
	fmt.Println(sent, dropped, <-pushed)
	// Output:
	// hello alice, you said hi
	// 1 0 news for all
}
