package main

import (
	"bytes"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/tcpez/tcpez/pubsub"
	"github.com/tcpez/tcpez/server"
)

// TestRuns runs the example as a user would and checks what it prints.
func TestRuns(t *testing.T) {
	out, err := exec.Command("go", "run", ".").CombinedOutput()
	want := "bob sees alice: hi bob\nbob sees bob: hi alice\nbob sees alice: pushed, not polled\n"
	if err != nil || string(out) != want {
		t.Fatalf("go run: %v\n%s", err, out)
	}
}

// TestJoin: a member typing lines reaches another member of the room.
func TestJoin(t *testing.T) {
	srv := server.New(pubsub.NewHub(), server.Config{})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	defer srv.Close()
	seen := make(chan string, 16)
	dave, err := enter(l.Addr().String(), "dave", "lobby", func(m pubsub.Message) { seen <- format(m) })
	if err != nil {
		t.Fatal(err)
	}
	defer dave.c.Close()
	var out bytes.Buffer
	if err := join(l.Addr().String(), "carol", "lobby", strings.NewReader("hello\n"), &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"carol: joined", "carol: hello"} {
		select {
		case got := <-seen:
			if got != want {
				t.Fatalf("dave sees %q, want %q", got, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("dave saw nothing, want %q", want)
		}
	}
}
