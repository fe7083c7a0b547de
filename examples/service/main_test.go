package main

import (
	"os/exec"
	"testing"
)

// TestRuns runs the example as a user would and checks what it prints.
func TestRuns(t *testing.T) {
	out, err := exec.Command("go", "run", ".").CombinedOutput()
	want := "put greeting: created true\n" +
		"get greeting: hello\n" +
		"get nothing: NotFound: no key \"nothing\"\n" +
		"list fruit/: fruit/apple fruit/kiwi\n" +
		"delete fruit/kiwi: existed true\n" +
		"without the token: Unauthenticated\n"
	if err != nil || string(out) != want {
		t.Fatalf("go run: %v\n%s", err, out)
	}
}
