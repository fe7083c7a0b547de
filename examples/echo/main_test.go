package main

import (
	"os/exec"
	"testing"
)

// TestRuns runs the example as a user would and checks what it prints.
func TestRuns(t *testing.T) {
	out, err := exec.Command("go", "run", ".").CombinedOutput()
	if err != nil || string(out) != "PING\nPING1 PING2\n" {
		t.Fatalf("go run: %v\n%s", err, out)
	}
}
