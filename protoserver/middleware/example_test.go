package middleware_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net"

	"github.com/sirupsen/logrus"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/tcpez/tcpez/client"
	"github.com/tcpez/tcpez/protoserver"
	"github.com/tcpez/tcpez/protoserver/middleware"
	"github.com/tcpez/tcpez/server"
)

type str = *wrapperspb.StringValue

// A service guarded by a token guards its calls with TokenAuth and its
// streams with TokenAuthStream; its clients send the token with both.
func ExampleTokenAuthStream() {
	quiet := logrus.New()
	quiet.SetOutput(io.Discard)
	svc := protoserver.NewService(protoserver.ServiceConfig{
		Interceptors:       []protoserver.Interceptor{middleware.TokenAuth("s3cret")},
		StreamInterceptors: []protoserver.StreamInterceptor{middleware.TokenAuthStream("s3cret")},
		Logger:             quiet,
	}).HandleStream("Letters", protoserver.ServerStreamMethod(func(req str, s *protoserver.ServerStream[str, str]) error {
		for _, r := range req.GetValue() {
			if err := s.Send(wrapperspb.String(string(r))); err != nil {
				return err
			}
		}
		return nil
	}))
	srv := server.New(svc, server.Config{Logger: quiet})
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

	letters := func(pc *protoserver.Client) {
		s, err := protoserver.OpenServerStream[str, str](context.Background(), pc, "Letters", wrapperspb.String("ok"))
		for err == nil {
			var m str
			if m, err = s.Recv(); err == nil {
				fmt.Print(m.GetValue(), " ")
			}
		}
		if err == io.EOF {
			err = nil // the method returned: OK
		}
		fmt.Println(protoserver.CodeOf(err))
	}
	letters(protoserver.NewClient(c, protoserver.ClientConfig{
		Interceptors:       []protoserver.ClientInterceptor{middleware.ClientToken("s3cret")},
		StreamInterceptors: []protoserver.ClientStreamInterceptor{middleware.ClientTokenStream("s3cret")},
	}))
	letters(protoserver.NewClient(c, protoserver.ClientConfig{}))
	// Output:
	// o k OK
	// Unauthenticated
}
