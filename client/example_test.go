package client_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"strings"

	"github.com/sirupsen/logrus"

	"github.com/tcpez/tcpez/client"
	"github.com/tcpez/tcpez/server"
	"github.com/tcpez/tcpez/span"
)

// startUpper runs a tcpez server on 127.0.0.1:0 that answers each request
// in upper case, and returns its address and a function that stops it.
func startUpper() (addr string, stop func()) {
	quiet := logrus.New()
	quiet.SetOutput(io.Discard)
	srv := server.New(server.HandlerFunc(func(_ context.Context, req []byte, _ *span.Span) ([]byte, error) {
		return []byte(strings.ToUpper(string(req))), nil
	}), server.Config{Logger: quiet})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = srv.Serve(ln)
	}()
	return ln.Addr().String(), func() {
		_ = srv.Close()
		<-served
	}
}

func Example() {
	addr, stop := startUpper()
	defer stop()

	c, err := client.New([]string{addr}, client.Config{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()

	ans, err := c.Call(context.Background(), []byte("hello"))
	fmt.Println(string(ans), err)
	// Output: HELLO <nil>
}

// Futures let one goroutine have many calls in flight; they share the
// connection and their frames go out together.
func ExampleClient_Go() {
	addr, stop := startUpper()
	defer stop()
	c, err := client.New([]string{addr}, client.Config{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()

	ctx := context.Background()
	var calls []*client.Future
	for _, word := range []string{"one", "two", "three"} {
		calls = append(calls, c.Go(ctx, []byte(word)))
	}
	for _, call := range calls {
		ans, err := call.Wait()
		fmt.Println(string(ans), err)
	}
	// Output:
	// ONE <nil>
	// TWO <nil>
	// THREE <nil>
}

// A Pipeline sends its requests as one protocol batch.
func ExampleClient_Pipeline() {
	addr, stop := startUpper()
	defer stop()
	c, err := client.New([]string{addr}, client.Config{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()

	p := c.Pipeline()
	p.Enqueue([]byte("a"))
	p.Enqueue([]byte("b"))
	p.Enqueue([]byte("c"))
	answers, err := p.Flush(context.Background())
	fmt.Printf("%q %v\n", answers, err)
	// Output: ["A" "B" "C"] <nil>
}

// CallAppend reuses the caller's buffer: no allocation per call.
func ExampleClient_CallAppend() {
	addr, stop := startUpper()
	defer stop()
	c, err := client.New([]string{addr}, client.Config{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()

	buf := make([]byte, 0, 64)
	for _, word := range []string{"x", "yz"} {
		ans, err := c.CallAppend(context.Background(), buf[:0], []byte(word))
		fmt.Println(string(ans), err)
	}
	// Output:
	// X <nil>
	// YZ <nil>
}

// CallAppendTail sends a request in two parts as one: a small header and
// a large body that stays where it is, written from the caller's slice
// rather than copied after the header.
func ExampleClient_CallAppendTail() {
	addr, stop := startUpper()
	defer stop()
	c, err := client.New([]string{addr}, client.Config{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()

	image := []byte(strings.Repeat("p", 1<<20)) // a 1 MiB body
	ans, err := c.CallAppendTail(context.Background(), nil, []byte("jpeg:"), image)
	fmt.Println(len(ans), string(ans[:7]), err)
	// Output: 1048581 JPEG:PP <nil>
}

// A request that is safe to run twice may be retried even when its
// connection broke after it was sent.
func ExampleWithIdempotent() {
	addr, stop := startUpper()
	defer stop()
	c, err := client.New([]string{addr}, client.Config{MaxRetries: 3})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()

	ctx := client.WithIdempotent(context.Background())
	ans, err := c.Call(ctx, []byte("get balance"))
	fmt.Println(string(ans), err)
	// Output: GET BALANCE <nil>
}
