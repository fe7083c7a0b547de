package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/tcpez/tcpez/frame"
	"github.com/tcpez/tcpez/server"
	"github.com/tcpez/tcpez/span"
	"github.com/tcpez/tcpez/stats"
	"github.com/tcpez/tcpez/stats/statsd"
)

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("serve", stderr)
	addr := fs.String("addr", "127.0.0.1:7070", `listen address, "host:port" or "unix:/path"`)
	idle := fs.Duration("idle-timeout", server.DefaultIdleTimeout, "close connections idle this long")
	read := fs.Duration("read-timeout", server.DefaultReadTimeout, "time a started frame has to arrive")
	write := fs.Duration("write-timeout", server.DefaultWriteTimeout, "time a peer has to take its answers")
	maxFrame := fs.Int("max-frame", frame.DefaultMaxFrameSize, "largest frame accepted, in bytes")
	maxConns := fs.Int("max-conns", server.DefaultMaxConns, "most connections served at once")
	maxInFlight := fs.Int("max-inflight", server.DefaultMaxInFlight, "requests read ahead per connection")
	memBudget := fs.Int64("memory-budget", 0, "bytes of requests and answers held at once (0: a sixteenth of the memory available, -1: none)")
	memWait := fs.Duration("memory-wait", server.DefaultMemoryWait, "time a frame may wait for room in the memory budget")
	perPeer := fs.Int("max-conns-per-peer", server.DefaultMaxConnsPerPeer, "most connections from one IP address (/64 for IPv6), -1: no limit")
	handshakes := fs.Int("max-handshakes", server.DefaultMaxHandshakes, "most connections in their TLS handshake at once; more evict the oldest")
	protocol := fs.String("protocol", "auto", `"auto": serve v1 and mux clients on the same port; "v1": v1 only, as servers before mux`)
	mode := fs.String("mode", "bytes", `"bytes": echo every frame; "service": a protobuf service with methods `+
		demoMethod+` (JSON object echo), `+echoMethod+`, health and reflection`)
	delay := fs.Duration("delay", 0, "wait this long before each answer (demos, tests; bytes mode)")
	cert := fs.String("tls-cert", "", "TLS certificate file (PEM)")
	key := fs.String("tls-key", "", "TLS key file (PEM)")
	clientCA := fs.String("tls-client-ca", "", "require client certificates signed by these CAs (PEM)")
	statsdAddr := fs.String("statsd", "", "send metrics to this statsd daemon, host:port")
	prefix := fs.String("statsd-prefix", "tcpez", "prefix of the statsd metric names")
	level := fs.String("log-level", "info", "log level: debug, info, warn, error")
	grace := fs.Duration("shutdown-timeout", 30*time.Second, "on SIGINT/SIGTERM, time to answer what was read")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return badFlag(fs, "unexpected argument %q", fs.Arg(0))
	}
	if *protocol != "auto" && *protocol != "v1" {
		return badFlag(fs, `invalid --protocol %q: want "auto" or "v1"`, *protocol)
	}
	if *clientCA != "" && (*cert == "" || *key == "") {
		return badFlag(fs, "--tls-client-ca needs --tls-cert and --tls-key")
	}

	logger := logrus.New()
	logger.SetOutput(stderr)
	lvl, err := logrus.ParseLevel(*level)
	if err != nil {
		return badFlag(fs, "invalid --log-level %q: want debug, info, warn or error", *level)
	}
	logger.SetLevel(lvl)
	tlsCfg, err := serverTLS(*cert, *key, *clientCA)
	if err != nil {
		return err
	}
	var rec stats.Recorder = stats.Nop{}
	if *statsdAddr != "" {
		sd, err := statsd.New(statsd.Config{Address: *statsdAddr, Prefix: *prefix})
		if err != nil {
			return err
		}
		defer sd.Close()
		rec = sd
	}

	var h server.Handler = echoHandler(*delay)
	switch *mode {
	case "bytes":
	case "service":
		h = demoService(logger)
	default:
		return badFlag(fs, `invalid --mode %q: want "bytes" or "service"`, *mode)
	}
	cfg := server.Config{
		Limits:          frame.Limits{MaxFrameSize: *maxFrame},
		MaxConns:        *maxConns,
		MaxInFlight:     *maxInFlight,
		MemoryBudget:    *memBudget,
		MemoryWait:      *memWait,
		MaxConnsPerPeer: *perPeer,
		MaxHandshakes:   *handshakes,
		IdleTimeout:     *idle,
		ReadTimeout:     *read,
		WriteTimeout:    *write,
		TLS:             tlsCfg,
		Logger:          logger,
		Stats:           rec,
		V1Only:          *protocol == "v1",
	}
	// Checked before the address is printed: scripts take that line to
	// mean that the server is up.
	if err := cfg.Validate(); err != nil {
		return badFlag(fs, "%v", err)
	}
	srv := server.New(h, cfg)
	l, err := srv.Listen(*addr)
	if err != nil {
		return err
	}
	// The first line is the address, so that scripts and tests can find a
	// server started on port 0.
	if l.Addr().Network() == "unix" {
		fmt.Fprintf(stdout, "unix:%s\n", l.Addr())
	} else {
		fmt.Fprintln(stdout, l.Addr())
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	logger.Info("tcpez: shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), *grace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-served; !errors.Is(err, server.ErrServerClosed) {
		return err
	}
	return nil
}

// echoHandler answers each request with its own payload, after delay.
func echoHandler(delay time.Duration) server.HandlerFunc {
	return func(ctx context.Context, req []byte, _ *span.Span) ([]byte, error) {
		if delay > 0 {
			t := time.NewTimer(delay)
			defer t.Stop()
			select {
			case <-t.C:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		return req, nil
	}
}
