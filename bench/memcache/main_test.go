package main

import (
	"fmt"
	"os"
	"testing"
)

// TestMain lets the test binary serve the Go loop, as main does: the
// load generator starts its own executable for it (startGoloop).
func TestMain(m *testing.M) {
	if kind := os.Getenv(goloopEnv); kind != "" {
		fmt.Fprintln(os.Stderr, serveGoloop(kind == oneReadEnv)) // it serves until killed
		os.Exit(1)
	}
	os.Exit(m.Run())
}
