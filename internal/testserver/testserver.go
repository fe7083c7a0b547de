// Package testserver runs a real tcpez server on a loopback port for the
// length of a test, and checks that it shuts down cleanly.
package testserver

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/tcpez/tcpez/server"
)

// shutdownBound bounds the graceful shutdown at the end of a test; it is a
// safety net, not something tests assert.
const shutdownBound = 10 * time.Second

// QuietLogger discards logs, keeping test output readable.
func QuietLogger() *logrus.Logger {
	l := logrus.New()
	l.SetOutput(io.Discard)
	return l
}

// Start serves h with cfg (logging to QuietLogger unless cfg says
// otherwise) on a fresh 127.0.0.1 port until the test ends, then shuts it
// down and requires Serve to have returned ErrServerClosed.
func Start(t testing.TB, h server.Handler, cfg server.Config) (*server.Server, string) {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = QuietLogger()
	}
	srv := server.New(h, cfg)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), shutdownBound)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-served; !errors.Is(err, server.ErrServerClosed) {
			t.Errorf("Serve returned %v, want ErrServerClosed", err)
		}
	})
	return srv, l.Addr().String()
}
