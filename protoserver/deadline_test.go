package protoserver

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestDeadlineCtx: a method's deadline context reports its deadline, the
// parent's cancellation, and its expiry, through Err alone or through the
// Done channel made on demand.
func TestDeadlineCtx(t *testing.T) {
	parent, cancel := context.WithCancel(context.Background())
	c := withDeadline(parent, time.Hour)
	if d, ok := c.Deadline(); !ok || time.Until(d) < 59*time.Minute {
		t.Fatalf("Deadline %v, %v", d, ok)
	}
	if err := c.Err(); err != nil {
		t.Fatalf("running: %v", err)
	}
	cancel()
	if err := c.Err(); !errors.Is(err, context.Canceled) {
		t.Fatalf("parent cancelled: %v", err)
	}
	<-c.Done() // made now, over a cancelled parent
	c.release()

	// Over a parent that can be cancelled but was not, as the server's
	// call contexts are.
	live, stopLive := context.WithCancel(context.Background())
	defer stopLive()
	expired := withDeadline(live, time.Nanosecond)
	for expired.Err() == nil {
	}
	if err := expired.Err(); err != context.DeadlineExceeded {
		t.Fatalf("past its deadline: %v", err)
	}
	<-expired.Done()
	if err := expired.Err(); err != context.DeadlineExceeded {
		t.Fatalf("past its deadline, with Done: %v", err)
	}
	if err := context.Cause(expired); err != context.DeadlineExceeded {
		t.Fatalf("Cause past its deadline: %v", err)
	}
	expired.release()

	// Contexts derived from it end with it.
	c = withDeadline(context.Background(), time.Millisecond)
	child, stopChild := context.WithCancel(c)
	defer stopChild()
	<-child.Done()
	if err := context.Cause(child); err != context.DeadlineExceeded {
		t.Fatalf("child's cause: %v", err)
	}
	c.release()

	// The earlier deadline of its parent wins.
	soon, stop := context.WithTimeout(context.Background(), time.Minute)
	defer stop()
	c = withDeadline(soon, time.Hour)
	if d, _ := c.Deadline(); time.Until(d) > time.Minute {
		t.Fatalf("Deadline %v is the later one", d)
	}
	c.release()
}

// TestDeadlineCtxOutlivesMethod: work a handler starts with
// context.WithoutCancel, which never asks for Done, keeps its own call's
// values after the method returned and another call took its place.
func TestDeadlineCtxOutlivesMethod(t *testing.T) {
	type key struct{}
	first := withDeadline(context.WithValue(context.Background(), key{}, "first"), time.Hour)
	background := context.WithoutCancel(first)
	first.release()
	second := withDeadline(context.WithValue(context.Background(), key{}, "second"), time.Hour)
	defer second.release()
	if got := background.Value(key{}); got != "first" {
		t.Fatalf("background work of the first call sees %v", got)
	}
}
