// Textecho is a text command server built by registering commands, in the
// manner of MindTouch.Clacks, and a client that calls it:
//
//	ECHO <bytes>\r\n<data>\r\n    answered  OK <bytes>\r\n<data>\r\n
//	UPPER <word> ...\r\n          answered  WORD WORD ...\r\n (async)
//	SLOW\r\n                      answered  SERVER_ERROR timeout, after 50ms
//	LIST <n>\r\n                  answered  ITEM 1 .. ITEM n, then DONE
//
// Run it with
//
//	go run ./examples/textecho
//
// or serve on an address, and talk to it with nc:
//
//	go run ./examples/textecho --serve 127.0.0.1:7200
//	printf 'ECHO 5\r\nhello\r\n' | nc 127.0.0.1 7200
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"strconv"
	"time"

	"github.com/tcpez/tcpez/server"
	"github.com/tcpez/tcpez/textcmd"
	"github.com/tcpez/tcpez/textcmd/textclient"
	"github.com/tcpez/tcpez/textcmd/textserver"
)

// newMux registers the commands.
func newMux() *textserver.Mux {
	mux := textserver.NewMux(textserver.Config{Replies: map[string]textserver.Reply{
		"OK":   {CountArg: 1},     // OK <bytes>\r\n<data>\r\n
		"ITEM": {Continues: true}, // ITEM lines, then DONE
	}})
	// The data block's byte count is ECHO's first argument.
	mux.HandleFunc("ECHO", func(_ context.Context, req *textserver.Request, resp *textserver.Response) error {
		resp.Message("OK", [][]byte{req.Arg(0)}, req.Data)
		return nil
	}, textserver.Command{CountArg: 1})
	// An asynchronous handler answers from another goroutine.
	mux.HandleAsync("UPPER", func(_ context.Context, req *textserver.Request, resp *textserver.Response, done func(*textserver.Response, error)) {
		go func() {
			resp.Message(string(bytes.ToUpper(req.Arg(0))), bytesToUpper(req.Args[1:]), nil)
			done(resp, nil)
		}()
	}, textserver.Command{MinArgs: 1})
	// A handler slower than its command's timeout is answered with an
	// error line when the timeout passes.
	mux.HandleFunc("SLOW", func(ctx context.Context, _ *textserver.Request, _ *textserver.Response) error {
		<-ctx.Done()
		return ctx.Err()
	}, textserver.Command{Timeout: 50 * time.Millisecond})
	// A multi-part response: ITEM lines closed by DONE.
	mux.HandleFunc("LIST", func(_ context.Context, req *textserver.Request, resp *textserver.Response) error {
		n, err := strconv.Atoi(string(req.Arg(0)))
		if err != nil || n < 0 || n > 100 {
			return textserver.Errorf("CLIENT_ERROR", "LIST takes a count from 0 to 100")
		}
		for i := 1; i <= n; i++ {
			resp.Line("ITEM", strconv.Itoa(i))
		}
		resp.Line("DONE")
		return nil
	}, textserver.Command{MinArgs: 1})
	return mux
}

func bytesToUpper(args [][]byte) [][]byte {
	out := make([][]byte, len(args))
	for i, a := range args {
		out[i] = bytes.ToUpper(a)
	}
	return out
}

func main() {
	serve := flag.String("serve", "", "serve on `addr` until interrupted, instead of the demo")
	flag.Parse()
	mux := newMux()
	srv := textserver.NewServer(mux, server.Config{})
	if *serve != "" {
		go func() {
			sig := make(chan os.Signal, 1)
			signal.Notify(sig, os.Interrupt)
			<-sig
			srv.Shutdown(context.Background())
		}()
		if err := srv.ListenAndServe(*serve); err != server.ErrServerClosed {
			log.Fatal(err)
		}
		return
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	go srv.Serve(l)
	defer srv.Shutdown(context.Background())
	if err := demo(l.Addr().String(), mux.Grammar()); err != nil {
		log.Fatal(err)
	}
}

func demo(addr string, g textcmd.Grammar) error {
	c, err := textclient.New([]string{addr}, textclient.Config{Grammar: g})
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	resp, err := c.Call(ctx, textclient.Cmd("ECHO").Count().Data([]byte("hello\r\nworld")))
	if err != nil {
		return err
	}
	fmt.Printf("ECHO: %s %q\n", resp.Status(), resp.Parts[0].Data)

	// Three calls in flight at once share the connection, pipelined.
	calls := []*textclient.Future{
		c.Go(ctx, textclient.Cmd("UPPER").Arg("tcp").Arg("made").Arg("easy")),
		c.Go(ctx, textclient.Cmd("LIST").Uint(3)),
		c.Go(ctx, textclient.Cmd("SLOW")),
	}
	resp, err = calls[0].Wait()
	if err != nil {
		return err
	}
	fmt.Printf("UPPER: %s\n", bytes.TrimSpace(resp.Raw()))
	resp, err = calls[1].Wait()
	if err != nil {
		return err
	}
	fmt.Printf("LIST: %d items, closed by %s\n", len(resp.Items()), resp.Status())
	_, err = calls[2].Wait()
	fmt.Printf("SLOW: %v\n", err)
	_, err = c.Call(ctx, textclient.Cmd("NOPE"))
	fmt.Printf("NOPE: %v\n", err)
	return nil
}
