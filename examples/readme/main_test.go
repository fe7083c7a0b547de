package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestREADMEShowsThisProgram: the README's server-and-client block is the
// body of main, so that what a reader copies is what TestRunsFromCold runs.
func TestREADMEShowsThisProgram(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile("main.go")
	if err != nil {
		t.Fatal(err)
	}
	// Every Go block is checked here: a second one would be code no test
	// runs.
	if n := strings.Count(string(readme), "```go\n"); n != 1 {
		t.Fatalf("README has %d Go blocks; only the one under \"## A server and a client\" is run", n)
	}
	block, ok := goBlockAfter(string(readme), "## A server and a client")
	if !ok {
		t.Fatal("README: no Go block under \"## A server and a client\"")
	}
	body, ok := mainBody(string(src))
	if !ok {
		t.Fatal("main.go: no func main")
	}
	if block != body {
		t.Fatalf("README block and main.go's main differ.\nREADME:\n%s\nmain.go:\n%s", block, body)
	}
}

// goBlockAfter returns the first ```go block after the heading.
func goBlockAfter(doc, heading string) (string, bool) {
	_, rest, ok := strings.Cut(doc, "\n"+heading+"\n")
	if !ok {
		return "", false
	}
	_, rest, ok = strings.Cut(rest, "```go\n")
	if !ok {
		return "", false
	}
	block, _, ok := strings.Cut(rest, "```\n")
	return block, ok
}

// mainBody returns the statements of func main, one tab less indented.
func mainBody(src string) (string, bool) {
	_, rest, ok := strings.Cut(src, "\nfunc main() {\n")
	if !ok {
		return "", false
	}
	body, _, ok := strings.Cut(rest, "\n}\n")
	if !ok {
		return "", false
	}
	var b strings.Builder
	for line := range strings.Lines(body + "\n") {
		b.WriteString(strings.TrimPrefix(line, "\t"))
	}
	return b.String(), true
}

// TestRunsFromCold runs the program 20 times in a row, each a new process
// whose client is made before its server listens, as a reader would run it.
func TestRunsFromCold(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "readme")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	for i := range 20 {
		out, err := exec.Command(bin).CombinedOutput()
		if err != nil || string(out) != "PING\n" {
			t.Fatalf("run %d: %v\n%s", i+1, err, out)
		}
	}
}
