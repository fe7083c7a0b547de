package span_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/tcpez/tcpez/span"
)

func TestTraceID(t *testing.T) {
	id := span.NewTraceID()
	if id.IsZero() || len(id.String()) != 32 {
		t.Fatalf("NewTraceID %v", id)
	}
	back, err := span.ParseTraceID(strings.ToUpper(id.String()))
	if err != nil || back != id {
		t.Fatalf("ParseTraceID(%v) = %v, %v", id, back, err)
	}
	for _, bad := range []string{"", "0af7651916cd43dd8448eb211c80319", "0af7651916cd43dd8448eb211c80319g"} {
		if _, err := span.ParseTraceID(bad); !errors.Is(err, span.ErrInvalidID) {
			t.Errorf("ParseTraceID(%q) = %v, want ErrInvalidID", bad, err)
		}
	}
}

// TestTraceOfSpans: a root span gets a trace id when asked, keeps it, and
// loses it at Reset; its child shares it, with the root as parent.
func TestTraceOfSpans(t *testing.T) {
	root := span.New()
	tr := root.TraceID()
	if tr.IsZero() || root.TraceID() != tr {
		t.Fatal("a root span's trace id is not stable")
	}
	child := root.Child()
	if child.TraceID() != tr || child.ParentID() != root.ID() || child.ID() == root.ID() {
		t.Fatalf("child %v of %v", child, root)
	}
	want := "00-" + tr.String() + "-" + root.ID().String() + "-01"
	if got := root.Traceparent(); got != want {
		t.Fatalf("Traceparent %q, want %q", got, want)
	}
	if f := child.Fields(nil); f["trace_id"] != tr.String() {
		t.Fatalf("Fields %v lack the trace id", f)
	}
	root.Reset(span.NewID())
	if root.TraceID() == tr {
		t.Fatal("Reset kept the trace id")
	}
}

func TestContext(t *testing.T) {
	type key struct{}
	parent := context.WithValue(context.Background(), key{}, "v")
	sp := span.New()
	for _, ctx := range []context.Context{span.NewContext(parent, sp), &span.Context{Context: parent, Span: sp}} {
		if span.FromContext(ctx) != sp || ctx.Value(key{}) != "v" {
			t.Fatalf("%T: span %v, value %v", ctx, span.FromContext(ctx), ctx.Value(key{}))
		}
	}
	if span.FromContext(parent) != nil {
		t.Fatal("a span from a context without one")
	}
}
