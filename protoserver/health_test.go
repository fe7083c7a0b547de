package protoserver_test

import (
	"context"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/tcpez/tcpez/client"
	"github.com/tcpez/tcpez/protoserver"
	"github.com/tcpez/tcpez/protoserver/middleware"
	"github.com/tcpez/tcpez/server"
	"github.com/tcpez/tcpez/span"
)

// TestHealthMethod: every service answers the health method, past an auth
// interceptor, until it drains.
func TestHealthMethod(t *testing.T) {
	svc := protoserver.NewService(protoserver.ServiceConfig{Interceptors: []protoserver.Interceptor{middleware.TokenAuth("secret")}})
	_, addr := serve(t, svc, server.Config{})
	c := protoserver.NewClient(newClient(t, addr, client.Config{}), protoserver.ClientConfig{})
	if _, err := protoserver.Call[emptypb.Empty](ctxFor(t), c, protoserver.HealthMethod, &emptypb.Empty{}); err != nil {
		t.Fatalf("serving: %v", err)
	}
	svc.Drain()
	_, err := protoserver.Call[emptypb.Empty](ctxFor(t), c, protoserver.HealthMethod, &emptypb.Empty{})
	if protoserver.CodeOf(err) != protoserver.Unavailable {
		t.Fatalf("draining: %v, want Unavailable", err)
	}
}

// TestHealthProbeEjectsDrainingServer: a client health-checking two
// services with HealthProbe stops sending calls to the one that drains.
func TestHealthProbeEjectsDrainingServer(t *testing.T) {
	who := func(id string) *protoserver.Service {
		return protoserver.NewService(protoserver.ServiceConfig{}).Handle("Who", protoserver.Method(
			func(context.Context, *emptypb.Empty, *span.Span) (*wrapperspb.StringValue, error) {
				return wrapperspb.String(id), nil
			}))
	}
	a, b := who("a"), who("b")
	_, addrA := serve(t, a, server.Config{})
	_, addrB := serve(t, b, server.Config{})
	ejected := make(chan string, 4)
	bc, err := client.New([]string{addrA, addrB}, client.Config{
		HealthCheck: client.HealthCheck{Interval: 10 * time.Millisecond, Timeout: time.Second, Probe: protoserver.HealthProbe()},
		OnStateChange: func(e client.StateEvent) {
			if e.State == client.Ejected {
				ejected <- e.Addr
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer bc.Close()
	c := protoserver.NewClient(bc, protoserver.ClientConfig{})

	a.Drain()
	select {
	case addr := <-ejected:
		if addr != addrA {
			t.Fatalf("ejected %s, want the draining %s", addr, addrA)
		}
	case <-time.After(safety):
		t.Fatal("the draining server was not ejected")
	}
	for range 20 {
		got, err := protoserver.Call[wrapperspb.StringValue](ctxFor(t), c, "Who", &emptypb.Empty{})
		if err != nil || got.GetValue() != "b" {
			t.Fatalf("after ejection: %v, %v; want every call on b", got, err)
		}
	}
}
