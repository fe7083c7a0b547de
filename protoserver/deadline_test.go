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

	// One whose Done was never asked for is reused; the earlier deadline
	// of its parent wins.
	soon, stop := context.WithTimeout(context.Background(), time.Minute)
	defer stop()
	c = withDeadline(soon, time.Hour)
	if d, _ := c.Deadline(); time.Until(d) > time.Minute {
		t.Fatalf("Deadline %v is the later one", d)
	}
	c.release()
	if c.Context != nil {
		t.Fatal("a released context keeps its parent")
	}
}
