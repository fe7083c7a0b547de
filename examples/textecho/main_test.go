package main

import (
	"os/exec"
	"testing"
)

// TestRuns runs the example as a user would and checks what it prints.
func TestRuns(t *testing.T) {
	const want = `ECHO: OK "hello\r\nworld"
UPPER: TCP MADE EASY
LIST: 3 items, closed by DONE
SLOW: tcpez/textclient: SERVER_ERROR timeout
NOPE: tcpez/textclient: ERROR
`
	out, err := exec.Command("go", "run", ".").CombinedOutput()
	if err != nil || string(out) != want {
		t.Fatalf("go run: %v\n%s", err, out)
	}
}
