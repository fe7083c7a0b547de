package protoserver_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"strings"

	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/tcpez/tcpez/client"
	"github.com/tcpez/tcpez/protoserver"
	"github.com/tcpez/tcpez/server"
	"github.com/tcpez/tcpez/span"
)

// run serves h on loopback and returns a client for it and a function that
// stops both.
func run(h server.Handler) (*client.Client, func()) {
	srv := server.New(h, server.Config{Logger: quietLogger()})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	go srv.Serve(l)
	c, err := client.New([]string{l.Addr().String()}, client.Config{})
	if err != nil {
		log.Fatal(err)
	}
	return c, func() {
		c.Close()
		srv.Shutdown(context.Background())
	}
}

// A compatible-mode server has one request and one response type, bare on
// the wire, as the original tcpez ProtoServer had.
func ExampleCompatible() {
	upper := func(ctx context.Context, req *wrapperspb.StringValue, sp *span.Span) (*wrapperspb.StringValue, error) {
		return wrapperspb.String(strings.ToUpper(req.GetValue())), nil
	}
	c, stop := run(protoserver.Compatible(upper, protoserver.CompatibleConfig{}))
	defer stop()

	cc := protoserver.NewCompatibleClient[wrapperspb.StringValue, wrapperspb.StringValue](c)
	resp, err := cc.Call(context.Background(), wrapperspb.String("hello"))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(resp.GetValue())
	// Output: HELLO
}

// A service serves many methods, registered here by hand; generated code
// does the same with Register<Service>.
func ExampleNewService() {
	svc := protoserver.NewService(protoserver.ServiceConfig{}).
		Handle("Upper", protoserver.Method(func(ctx context.Context, req *wrapperspb.StringValue, sp *span.Span) (*wrapperspb.StringValue, error) {
			return wrapperspb.String(strings.ToUpper(req.GetValue())), nil
		})).
		Handle("Len", protoserver.Method(func(ctx context.Context, req *wrapperspb.StringValue, sp *span.Span) (*wrapperspb.Int64Value, error) {
			return wrapperspb.Int64(int64(len(req.GetValue()))), nil
		}))
	c, stop := run(svc)
	defer stop()

	pc := protoserver.NewClient(c, protoserver.ClientConfig{})
	ctx := context.Background()
	var upper wrapperspb.StringValue
	if err := pc.Call(ctx, "Upper", wrapperspb.String("hello"), &upper); err != nil {
		log.Fatal(err)
	}
	n, err := protoserver.Go[wrapperspb.Int64Value](ctx, pc, "Len", wrapperspb.String("hello")).Wait()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(upper.GetValue(), n.GetValue())
	// Output: HELLO 5
}

// A handler's error reaches the caller as a *Status, with its code.
func ExampleErrorf() {
	svc := protoserver.NewService(protoserver.ServiceConfig{Logger: quietLogger()}).
		Handle("Get", protoserver.Method(func(ctx context.Context, req *wrapperspb.StringValue, sp *span.Span) (*wrapperspb.StringValue, error) {
			return nil, protoserver.Errorf(protoserver.NotFound, "no key %q", req.GetValue())
		})).
		Handle("Crash", protoserver.Method(func(ctx context.Context, req *wrapperspb.StringValue, sp *span.Span) (*wrapperspb.StringValue, error) {
			panic("out of coffee")
		}))
	c, stop := run(svc)
	defer stop()

	pc := protoserver.NewClient(c, protoserver.ClientConfig{})
	var resp wrapperspb.StringValue
	err := pc.Call(context.Background(), "Get", wrapperspb.String("k"), &resp)
	if st, ok := errors.AsType[*protoserver.Status](err); ok {
		fmt.Println(st.Code, st.Message)
	}
	err = pc.Call(context.Background(), "Crash", wrapperspb.String("k"), &resp)
	fmt.Println(err)
	err = pc.Call(context.Background(), "Put", wrapperspb.String("k"), &resp)
	fmt.Println(protoserver.CodeOf(err))
	// Output:
	// NotFound no key "k"
	// tcpez/protoserver: Internal: panic: out of coffee
	// Unimplemented
}

// A method made with MethodInto fills a response the service reuses from
// call to call; with RequestReuse for the request, a call allocates no
// message on the server. (A generated Register uses it for a method M when
// the server also has MInto.)
func ExampleMethodInto() {
	svc := protoserver.NewService(protoserver.ServiceConfig{RequestReuse: true}).
		Handle("Upper", protoserver.MethodInto(func(ctx context.Context, req *wrapperspb.StringValue, resp *wrapperspb.StringValue, sp *span.Span) error {
			resp.Value = strings.ToUpper(req.GetValue())
			return nil
		}))
	c, stop := run(svc)
	defer stop()

	pc := protoserver.NewClient(c, protoserver.ClientConfig{})
	var resp wrapperspb.StringValue
	for _, s := range []string{"hello", "world"} {
		if err := pc.Call(context.Background(), "Upper", wrapperspb.String(s), &resp); err != nil {
			log.Fatal(err)
		}
		fmt.Println(resp.GetValue())
	}
	// Output:
	// HELLO
	// WORLD
}
