package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"

	"github.com/tcpez/tcpez/client"
	"github.com/tcpez/tcpez/frame"
)

const callUsage = `usage: tcpez call [flags] DATA...
       tcpez call [flags] --method METHOD [--data JSON] [--protoset FILE]
       tcpez call [flags] --list [--protoset FILE]

With DATA, sends each as a raw frame (or all as one batch) and prints the
answers. With --method, calls a service-mode method with the JSON request
and prints the JSON answer, as grpcurl does for gRPC; the message types come
from --protoset or else from the service's reflection method. A failed call
prints its status ("NotFound: ...") and exits 1.

Flags:
`

func runCall(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return runCallIn(ctx, args, os.Stdin, stdout, stderr)
}

func runCallIn(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlags("call", stderr)
	addr := fs.String("addr", "127.0.0.1:7070", `server address, "host:port" or "unix:/path"`)
	timeout := fs.Duration("timeout", 5*time.Second, "time allowed for the whole exchange")
	batch := fs.Bool("batch", false, "send all DATA as one batch")
	useTLS := fs.Bool("tls", false, "speak TLS")
	ca := fs.String("tls-ca", "", "verify the server against these CAs (PEM) instead of the system's")
	maxFrame := fs.Int("max-frame", frame.DefaultMaxFrameSize, "largest request sent or answer accepted, in bytes")
	var so serviceCall
	fs.StringVar(&so.method, "method", "", `call this service-mode method ("/package.Service/Method") with --data, print the answer as JSON`)
	fs.StringVar(&so.data, "data", "{}", `the request as JSON, for --method; "-" reads it from standard input`)
	fs.StringVar(&so.protoset, "protoset", "", "message types from this descriptor set (protoc --descriptor_set_out --include_imports) instead of the service's reflection method")
	fs.BoolVar(&so.list, "list", false, "list the service's methods and their message types")
	fs.Usage = func() {
		fmt.Fprint(stderr, callUsage)
		fs.PrintDefaults()
	}
	if err := parse(fs, args); err != nil {
		return err
	}
	service := so.method != "" || so.list
	if service == (fs.NArg() > 0) {
		fs.Usage()
		return errUsage
	}
	if *timeout <= 0 {
		return badFlag(fs, "invalid --timeout %v: want a positive duration", *timeout)
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	var tlsCfg *tls.Config
	if *useTLS || *ca != "" {
		tlsCfg = &tls.Config{MinVersion: tls.VersionTLS12}
		if *ca != "" {
			pool, err := certPool(*ca)
			if err != nil {
				return err
			}
			tlsCfg.RootCAs = pool
		}
	}
	limits := frame.Limits{MaxFrameSize: *maxFrame}
	if service {
		if so.data == "-" {
			b, err := io.ReadAll(stdin)
			if err != nil {
				return err
			}
			so.data = string(b)
		}
		return so.run(ctx, *addr, client.Config{TLS: tlsCfg, Limits: limits}, stdout)
	}
	c, err := dial(ctx, *addr, tlsCfg)
	if err != nil {
		return interrupted(ctx, err)
	}
	defer c.Close()
	// The connection obeys ctx: its end unblocks any read or write.
	stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	answers, err := exchange(c, fs.Args(), *batch, limits)
	if err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		err = fmt.Errorf("no answer within %v: %w", *timeout, ctx.Err())
	}
	err = interrupted(ctx, err)
	for _, a := range answers {
		fmt.Fprintln(stdout, a)
	}
	return err
}

func dial(ctx context.Context, addr string, tlsCfg *tls.Config) (net.Conn, error) {
	network := "tcp"
	if path, ok := strings.CutPrefix(addr, "unix:"); ok {
		network, addr = "unix", path
	}
	if tlsCfg == nil {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
	d := tls.Dialer{Config: tlsCfg}
	return d.DialContext(ctx, network, addr)
}

// exchange sends data as frames (or one batch) and reads one answer each.
func exchange(c net.Conn, data []string, batch bool, lim frame.Limits) ([]string, error) {
	w := frame.NewWriter(c)
	if batch {
		if err := w.WriteBatchHeader(len(data)); err != nil {
			return nil, err
		}
	}
	for _, d := range data {
		if err := w.WriteFrame([]byte(d)); err != nil {
			return nil, err
		}
	}
	if err := w.Flush(); err != nil {
		return nil, err
	}
	r := frame.NewReader(c, lim)
	if batch {
		h, err := r.ReadHeader()
		if err != nil {
			return nil, fmt.Errorf("reading the batch answer: %w", foreign(err))
		}
		if !h.IsBatch() || h.Count() != len(data) {
			return nil, fmt.Errorf("%w: answer header %d to a batch of %d", frame.ErrProtocol, h, len(data))
		}
	}
	answers := make([]string, 0, len(data))
	for range data {
		p, err := r.ReadFrame(nil)
		if err != nil {
			return answers, fmt.Errorf("reading answer %d: %w", len(answers)+1, foreign(err))
		}
		answers = append(answers, string(p))
	}
	return answers, nil
}

// foreign names the protocol of a server whose answer is no tcpez frame,
// as the client package does, so that a TLS port is not reported as a
// frame of 352518912 bytes.
func foreign(err error) error {
	switch frame.SniffError(err) {
	case frame.TLS:
		return fmt.Errorf("the server speaks TLS: use --tls (%w)", err)
	case frame.HTTP:
		return fmt.Errorf("the server speaks HTTP, not tcpez (%w)", err)
	}
	return err
}

// interrupted says so of err when ctx was cancelled (SIGINT, SIGTERM)
// rather than timed out, whether in the dial or waiting for answers.
func interrupted(ctx context.Context, err error) error {
	if err != nil && errors.Is(ctx.Err(), context.Canceled) {
		return fmt.Errorf("interrupted: %w", err)
	}
	return err
}
