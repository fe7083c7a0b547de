// Service is a tcpez service-mode example: a small key-value store with
// four methods, served and called through the code that protoc-gen-go-tcpez
// generated from kvpb/kv.proto. Errors travel as statuses — a missing key
// is NotFound — and a token checked by an interceptor guards every call.
//
//	go run ./examples/service
package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/tcpez/tcpez/client"
	"github.com/tcpez/tcpez/examples/service/kvpb"
	"github.com/tcpez/tcpez/protoserver"
	"github.com/tcpez/tcpez/protoserver/middleware"
	"github.com/tcpez/tcpez/server"
	"github.com/tcpez/tcpez/span"
)

// store implements kvpb.KVServer.
type store struct {
	mu sync.Mutex
	m  map[string][]byte
}

func (s *store) Put(_ context.Context, req *kvpb.PutRequest, sp *span.Span) (*kvpb.PutResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, had := s.m[req.Key]
	s.m[req.Key] = req.Value
	return &kvpb.PutResponse{Created: !had}, nil
}

func (s *store) Get(_ context.Context, req *kvpb.GetRequest, sp *span.Span) (*kvpb.GetResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.m[req.Key]
	if !ok {
		return nil, protoserver.Errorf(protoserver.NotFound, "no key %q", req.Key)
	}
	return &kvpb.GetResponse{Value: v}, nil
}

func (s *store) Delete(_ context.Context, req *kvpb.DeleteRequest, sp *span.Span) (*kvpb.DeleteResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, had := s.m[req.Key]
	delete(s.m, req.Key)
	return &kvpb.DeleteResponse{Existed: had}, nil
}

func (s *store) List(_ context.Context, req *kvpb.ListRequest, sp *span.Span) (*kvpb.ListResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var keys []string
	for k := range s.m {
		if strings.HasPrefix(k, req.Prefix) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return &kvpb.ListResponse{Keys: keys}, nil
}

const token = "s3cret"

func main() {
	svc := protoserver.NewService(protoserver.ServiceConfig{Interceptors: []protoserver.Interceptor{middleware.TokenAuth(token)}})
	kvpb.RegisterKV(svc, &store{m: make(map[string][]byte)})
	srv := server.New(svc, server.Config{})
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
	kv := kvpb.NewKVClient(protoserver.NewClient(c, protoserver.ClientConfig{Interceptors: []protoserver.ClientInterceptor{middleware.ClientToken(token)}}))

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	put, err := kv.Put(ctx, &kvpb.PutRequest{Key: "greeting", Value: []byte("hello")})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("put greeting: created", put.Created)

	got, err := kv.Get(ctx, &kvpb.GetRequest{Key: "greeting"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("get greeting: %s\n", got.Value)

	// A server error arrives as a *protoserver.Status.
	_, err = kv.Get(ctx, &kvpb.GetRequest{Key: "nothing"})
	if st, ok := errors.AsType[*protoserver.Status](err); ok {
		fmt.Printf("get nothing: %v: %s\n", st.Code, st.Message)
	}

	// A pipeline sends its calls as one batch. The server runs a batch's
	// calls concurrently and answers them in order, so calls that depend
	// on each other go in separate batches: the List follows the Puts.
	p := kv.Pipeline()
	p.Put(&kvpb.PutRequest{Key: "fruit/apple", Value: []byte("red")})
	p.Put(&kvpb.PutRequest{Key: "fruit/kiwi", Value: []byte("green")})
	if err := p.Flush(ctx); err != nil {
		log.Fatal(err)
	}
	keys, err := kv.List(ctx, &kvpb.ListRequest{Prefix: "fruit/"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("list fruit/:", strings.Join(keys.Keys, " "))

	// A future.
	del := kv.GoDelete(ctx, &kvpb.DeleteRequest{Key: "fruit/kiwi"})
	d, err := del.Wait()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("delete fruit/kiwi: existed", d.Existed)

	// Without the token, the interceptor turns the call away.
	anon := kvpb.NewKVClient(protoserver.NewClient(c, protoserver.ClientConfig{}))
	_, err = anon.List(ctx, &kvpb.ListRequest{})
	fmt.Println("without the token:", protoserver.CodeOf(err))
}
