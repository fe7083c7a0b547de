// Reqrep is the original tcpez request/response example, ported: a
// compatible-mode protobuf server — one Request message in, one Response
// message out, no envelope, exactly what the original ProtoServer spoke —
// and a typed client that calls it plainly, with a future and with a
// pipeline.
//
//	go run ./examples/reqrep
package main

import (
	"context"
	"fmt"
	"log"
	"net"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/tcpez/tcpez/client"
	"github.com/tcpez/tcpez/examples/reqrep/reqreppb"
	"github.com/tcpez/tcpez/protoserver"
	"github.com/tcpez/tcpez/server"
	"github.com/tcpez/tcpez/span"
)

// handle is the business logic: the request is already decoded, and the
// answer is encoded for us.
func handle(ctx context.Context, req *reqreppb.Request, sp *span.Span) (*reqreppb.Response, error) {
	sp.Attr("command", req.GetCommand())
	if req.GetCommand() == "SUCCEED" {
		return &reqreppb.Response{Status: proto.String("OK"), Message: proto.String("Request Succeeded")}, nil
	}
	return &reqreppb.Response{Status: proto.String("ERR"), Message: proto.String("Request Failed")}, nil
}

func request(command, args string) *reqreppb.Request {
	return &reqreppb.Request{Command: proto.String(command), Args: proto.String(args)}
}

func main() {
	srv := server.New(protoserver.Compatible(handle, protoserver.CompatibleConfig{}), server.Config{})
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
	rr := protoserver.NewCompatibleClient[reqreppb.Request, reqreppb.Response](c)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	resp, err := rr.Call(ctx, request("SUCCEED", "nil"))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("call:", resp.GetStatus(), resp.GetMessage())

	f := rr.Go(ctx, request("FAIL", "nil"))
	if resp, err = f.Wait(); err != nil {
		log.Fatal(err)
	}
	fmt.Println("future:", resp.GetStatus(), resp.GetMessage())

	// A pipeline sends its requests as one batch; answers come in order.
	p := rr.Pipeline()
	futures := []*protoserver.Future[reqreppb.Response]{
		p.Enqueue(request("SUCCEED", "1")),
		p.Enqueue(request("FAIL", "2")),
	}
	if err := p.Flush(ctx); err != nil {
		log.Fatal(err)
	}
	for i, f := range futures {
		resp, err := f.Wait()
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("pipeline %d: %s %s\n", i+1, resp.GetStatus(), resp.GetMessage())
	}
}
