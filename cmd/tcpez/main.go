// Command tcpez runs and talks to tcpez servers.
//
//	tcpez serve --addr 127.0.0.1:7070                  run an echo server
//	tcpez serve --mode service                         run a demo protobuf service
//	tcpez call --addr 127.0.0.1:7070 hi                send frames, print the answers
//	tcpez call --method /tcpez.demo.Demo/Echo --data '{"a": 1}'
//	                                                   call a method with JSON, print JSON
//	tcpez bench [--addr A] [--method M --data JSON]    load a server, report its speed
//
// Run "tcpez <command> -h" for a command's flags; docs/CLI.md has them all.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// command is one subcommand: it parses its own flags and reports failure
// as an error, which main prints as one line.
type command struct {
	name, summary string
	run           func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

var commands = []command{
	{"serve", "run an echo server, or a demo service (--mode service)", runServe},
	{"call", "send frames, or call a method with JSON (--method), and print the answers", runCall},
	{"bench", "load a server (or an embedded one) and report its speed", runBench},
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	for _, c := range commands {
		if c.name != args[0] {
			continue
		}
		if err := c.run(ctx, args[1:], stdout, stderr); err != nil {
			if err != errUsage {
				fmt.Fprintf(stderr, "tcpez %s: %v\n", c.name, err)
			}
			return exitCode(err)
		}
		return 0
	}
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: tcpez <command> [flags]")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-6s %s\n", c.name, c.summary)
	}
}
