// Chat is a small chat room on tcpez's push (package pubsub), like Net::Clacks'
// chat example: every line a member types is published to the room's
// channel, and the server pushes it to every member at once.
//
// With no arguments it plays a short conversation on a server of its own:
//
//	go run ./examples/chat
//
// or run a server and join it from other terminals, typing lines:
//
//	go run ./examples/chat serve 127.0.0.1:7070
//	go run ./examples/chat join 127.0.0.1:7070 alice lobby
//	go run ./examples/chat join 127.0.0.1:7070 bob lobby
//
// A member whose connection is lost is told when it is back ("reconnected"),
// having joined its room again; what was said meanwhile is lost to it.
package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"time"

	"github.com/tcpez/tcpez/pubsub"
	"github.com/tcpez/tcpez/server"
)

func main() {
	var err error
	switch {
	case len(os.Args) == 3 && os.Args[1] == "serve":
		err = serve(os.Args[2])
	case len(os.Args) == 5 && os.Args[1] == "join":
		err = join(os.Args[2], os.Args[3], os.Args[4], os.Stdin, os.Stdout)
	case len(os.Args) == 1:
		err = demo(os.Stdout)
	default:
		err = fmt.Errorf("usage: chat | chat serve ADDR | chat join ADDR NAME ROOM")
	}
	if err != nil {
		log.Fatal(err)
	}
}

func serve(addr string) error {
	srv := server.New(pubsub.NewHub(), server.Config{})
	log.Printf("chat server on %s", addr)
	return srv.ListenAndServe(addr)
}

// member is one person in one room.
type member struct {
	name, room string
	c          *pubsub.Client
}

// enter joins room at addr as name; show gets what the room says.
func enter(addr, name, room string, show func(pubsub.Message)) (*member, error) {
	c, err := pubsub.Dial(addr, pubsub.Config{OnMessage: show})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Listen(ctx, room); err != nil {
		c.Close()
		return nil, err
	}
	return &member{name: name, room: room, c: c}, nil
}

func (m *member) say(line string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return m.c.Notify(ctx, m.room, []byte(m.name+": "+line))
}

func format(m pubsub.Message) string {
	if m.Reconnected {
		return "* reconnected"
	}
	return string(m.Data)
}

func join(addr, name, room string, in io.Reader, out io.Writer) error {
	m, err := enter(addr, name, room, func(msg pubsub.Message) { fmt.Fprintln(out, format(msg)) })
	if err != nil {
		return err
	}
	defer m.c.Close()
	_ = m.say("joined")
	lines := bufio.NewScanner(in)
	for lines.Scan() {
		if err := m.say(lines.Text()); err != nil {
			fmt.Fprintln(out, "* not sent:", err)
		}
	}
	return lines.Err()
}

// demo plays a conversation between alice and bob, showing what bob sees.
func demo(out io.Writer) error {
	srv := server.New(pubsub.NewHub(), server.Config{})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	go srv.Serve(l)
	defer srv.Shutdown(context.Background())
	addr := l.Addr().String()

	seen := make(chan string, 16)
	bob, err := enter(addr, "bob", "lobby", func(m pubsub.Message) { seen <- format(m) })
	if err != nil {
		return err
	}
	defer bob.c.Close()
	alice, err := enter(addr, "alice", "lobby", func(pubsub.Message) {})
	if err != nil {
		return err
	}
	defer alice.c.Close()

	for _, turn := range []struct {
		who  *member
		line string
	}{{alice, "hi bob"}, {bob, "hi alice"}, {alice, "pushed, not polled"}} {
		if err := turn.who.say(turn.line); err != nil {
			return err
		}
		select {
		case line := <-seen:
			fmt.Fprintln(out, "bob sees", line)
		case <-time.After(5 * time.Second):
			return fmt.Errorf("bob saw nothing")
		}
	}
	return nil
}
