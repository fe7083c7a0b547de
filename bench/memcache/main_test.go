package main

import (
	"os"
	"testing"
)

// TestMain lets the test binary serve the Go loop, as main does: the
// load generator starts its own executable for it (startGoloop).
func TestMain(m *testing.M) {
	serveGoloopIfAsked()
	os.Exit(m.Run())
}
