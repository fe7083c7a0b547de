package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/tcpez/tcpez/frame"
)

func runCall(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("call", stderr)
	addr := fs.String("addr", "127.0.0.1:7070", `server address, "host:port" or "unix:/path"`)
	timeout := fs.Duration("timeout", 5*time.Second, "time allowed for the whole exchange")
	batch := fs.Bool("batch", false, "send all DATA as one batch")
	useTLS := fs.Bool("tls", false, "speak TLS")
	ca := fs.String("tls-ca", "", "verify the server against these CAs (PEM) instead of the system's")
	maxFrame := fs.Int("max-frame", frame.DefaultMaxFrameSize, "largest answer accepted, in bytes")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: tcpez call [flags] DATA...")
		fs.PrintDefaults()
	}
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return errUsage
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
	c, err := dial(ctx, *addr, tlsCfg)
	if err != nil {
		return err
	}
	defer c.Close()
	// The connection obeys ctx: its end unblocks any read or write.
	stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	answers, err := exchange(c, fs.Args(), *batch, frame.Limits{MaxFrameSize: *maxFrame})
	if ctx.Err() != nil && err != nil {
		err = fmt.Errorf("no answer within %v: %w", *timeout, ctx.Err())
	}
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
			return nil, fmt.Errorf("reading the batch answer: %w", err)
		}
		if !h.IsBatch() || h.Count() != len(data) {
			return nil, fmt.Errorf("%w: answer header %d to a batch of %d", frame.ErrProtocol, h, len(data))
		}
	}
	answers := make([]string, 0, len(data))
	for range data {
		p, err := r.ReadFrame(nil)
		if err != nil {
			return answers, fmt.Errorf("reading answer %d: %w", len(answers)+1, err)
		}
		answers = append(answers, string(p))
	}
	return answers, nil
}
