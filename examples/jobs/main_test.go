package main

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"
)

// TestRuns runs the example as a user would and checks what it prints on
// stdout; stderr has the workers' request logs, one per job with its span.
func TestRuns(t *testing.T) {
	cmd := exec.Command("go", "run", ".")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	want := "3 workers: fast-1 fast-2 slow-3 (5x slower), one job at a time each\n" +
		"60 jobs (512×512 to 256×256, blur radius 3) from 12 goroutines, each with a 20s deadline\n" +
		"jobs done: 60, failed: 0\n" +
		"every result matches the job run locally: true\n" +
		"every worker got jobs: true\n" +
		"the slow worker got fewer than the fast ones' average: true\n" +
		"a 64 MiB image streamed: 10 progress events, a 1024×1024 result whose checksum matches its rows: true\n" +
		"a big job with a 100ms deadline: DeadlineExceeded\n"
	if err != nil || string(out) != want {
		t.Fatalf("go run: %v\n%s\nstderr:\n%s", err, out, stderr.Bytes())
	}
	logs := stderr.String()
	if !strings.Contains(logs, "rows=512") || !strings.Contains(logs, "resize_ms=") || !strings.Contains(logs, "worker=slow-3") {
		t.Fatalf("the request log lacks the spans:\n%s", logs)
	}
}
