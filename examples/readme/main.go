// Readme is the server-and-client program of the README, line for line:
// main_test.go checks that the README shows this code, and runs it.
//
//	go run ./examples/readme
package main

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/tcpez/tcpez/client"
	"github.com/tcpez/tcpez/server"
	"github.com/tcpez/tcpez/span"
)

func main() {
	ctx := context.Background()
	srv := server.New(server.HandlerFunc(func(ctx context.Context, req []byte, sp *span.Span) ([]byte, error) {
		sp.Attr("command", "echo")
		return req, nil
	}), server.Config{})
	go func() {
		if err := srv.ListenAndServe("127.0.0.1:7070"); !errors.Is(err, server.ErrServerClosed) {
			log.Fatal(err)
		}
	}()
	defer srv.Shutdown(ctx)

	// New dials in the background; calls wait for the server to be up.
	c, err := client.New([]string{"127.0.0.1:7070"}, client.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	answer, err := c.Call(ctx, []byte("PING"))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s\n", answer)
}
