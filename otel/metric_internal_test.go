package tcpezotel

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestOwnCountsListEveryStat: every Stat constant of the server and client
// packages is a name Recorder counts as monotonic, so that a count added
// there is not exported as one that may go down.
func TestOwnCountsListEveryStat(t *testing.T) {
	var names []string
	for _, dir := range []string{"../server", "../client"} {
		files, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil {
			t.Fatal(err)
		}
		for _, path := range files {
			if strings.HasSuffix(path, "_test.go") {
				continue
			}
			f, err := parser.ParseFile(token.NewFileSet(), path, nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			ast.Inspect(f, func(n ast.Node) bool {
				vs, ok := n.(*ast.ValueSpec)
				if !ok {
					return true
				}
				for k, id := range vs.Names {
					if !strings.HasPrefix(id.Name, "Stat") || k >= len(vs.Values) {
						continue
					}
					if lit, ok := vs.Values[k].(*ast.BasicLit); ok && lit.Kind == token.STRING {
						v, err := strconv.Unquote(lit.Value)
						if err != nil {
							t.Fatal(err)
						}
						names = append(names, v)
					}
				}
				return true
			})
		}
	}
	if len(names) < 40 {
		t.Fatalf("found only %d Stat constants: %v", len(names), names)
	}
	for _, name := range names {
		if !monotonic(name) {
			t.Errorf("%q, a Stat constant, is not counted as monotonic", name)
		}
	}
	for _, name := range []string{"credits", "rows", "db hits"} {
		if monotonic(name) {
			t.Errorf("%q, a span's counter, is counted as monotonic", name)
		}
	}
}
