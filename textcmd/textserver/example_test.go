package textserver_test

import (
	"context"
	"fmt"
	"net"

	"github.com/tcpez/tcpez/server"
	"github.com/tcpez/tcpez/textcmd/textclient"
	"github.com/tcpez/tcpez/textcmd/textserver"
)

// A server built by registering commands, and a client calling it.
func ExampleMux() {
	mux := textserver.NewMux(textserver.Config{Replies: map[string]textserver.Reply{"OK": {CountArg: 1}}})
	// ECHO <bytes>\r\n<data>\r\n is answered OK <bytes>\r\n<data>\r\n.
	mux.HandleFunc("ECHO", func(_ context.Context, req *textserver.Request, resp *textserver.Response) error {
		resp.Message("OK", [][]byte{req.Arg(0)}, req.Data)
		return nil
	}, textserver.Command{CountArg: 1})
	srv := textserver.NewServer(mux, server.Config{Logger: quiet()})
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	go srv.Serve(l)
	defer srv.Close()

	c, err := textclient.New([]string{l.Addr().String()}, textclient.Config{Grammar: mux.Grammar()})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	resp, err := c.Call(context.Background(), textclient.Cmd("ECHO").Count().Data([]byte("hello")))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%s %q\n", resp.Status(), resp.Parts[0].Data)
	// Output: OK "hello"
}
