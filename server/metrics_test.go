package server

import (
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"net"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestREADMEListsEveryMetric checks the README's list of server metrics
// against the Stat constants, both ways: a metric added without a line in
// the README, or a README name no constant has, fails.
func TestREADMEListsEveryMetric(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	const start, end = "Server metrics", "plus each span's"
	text := string(readme)
	i := strings.Index(text, start)
	j := strings.Index(text[max(i, 0):], end)
	if i < 0 || j < 0 {
		t.Fatalf("README.md has no paragraph from %q to %q", start, end)
	}
	var listed []string
	for _, m := range regexp.MustCompile("`([a-z_.]+)`").FindAllStringSubmatch(text[i:i+j], -1) {
		listed = append(listed, m[1])
	}
	slices.Sort(listed)

	declared := statConstants(t)
	if !slices.Equal(listed, declared) {
		t.Errorf("README.md lists\n\t%v\nthe Stat constants are\n\t%v", listed, declared)
	}
}

// statConstants returns the values of the package's Stat constants, sorted.
func statConstants(t *testing.T) []string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "metrics.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	ast.Inspect(f, func(n ast.Node) bool {
		vs, ok := n.(*ast.ValueSpec)
		if !ok {
			return true
		}
		for k, name := range vs.Names {
			if !strings.HasPrefix(name.Name, "Stat") || k >= len(vs.Values) {
				continue
			}
			if lit, ok := vs.Values[k].(*ast.BasicLit); ok && lit.Kind == token.STRING {
				v, err := strconv.Unquote(lit.Value)
				if err != nil {
					t.Fatal(err)
				}
				out = append(out, v)
			}
		}
		return true
	})
	if len(out) == 0 {
		t.Fatal("no Stat constants found in metrics.go")
	}
	slices.Sort(out)
	return out
}

// TestTimeoutsAreNetErrors: the timeout sentinels answer net.Error's
// Timeout, wrapped or not, and stay distinct for errors.Is.
func TestTimeoutsAreNetErrors(t *testing.T) {
	for _, sentinel := range []error{ErrIdleTimeout, ErrReadTimeout, ErrWriteTimeout} {
		wrapped := fmt.Errorf("conn 1: %w", sentinel)
		var ne net.Error
		if !errors.As(wrapped, &ne) || !ne.Timeout() {
			t.Errorf("%v: not a net.Error with Timeout true", sentinel)
		}
		if !errors.Is(wrapped, sentinel) {
			t.Errorf("%v: errors.Is lost it", sentinel)
		}
	}
	if errors.Is(ErrReadTimeout, ErrWriteTimeout) || errors.Is(ErrIdleTimeout, ErrReadTimeout) {
		t.Error("distinct timeouts match each other")
	}
}
