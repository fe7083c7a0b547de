package main

import (
	"os/exec"
	"testing"
)

// TestRuns runs the example as a user would and checks what it prints.
func TestRuns(t *testing.T) {
	out, err := exec.Command("go", "run", ".").CombinedOutput()
	want := "call: OK Request Succeeded\n" +
		"future: ERR Request Failed\n" +
		"pipeline 1: OK Request Succeeded\n" +
		"pipeline 2: ERR Request Failed\n"
	if err != nil || string(out) != want {
		t.Fatalf("go run: %v\n%s", err, out)
	}
}
