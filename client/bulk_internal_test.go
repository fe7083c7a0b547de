package client

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestBulkWaitEndsAsConnectionIsGiven: a bulk call whose context ends
// just as the connection it waits for is given back either takes the
// connection or leaves it free: it is never left marked as carrying a
// bulk call nobody makes. Cancel and give race, so it is tried many
// times; each of the three outcomes (taken; left the line before the
// give; given as it left, and passed on) keeps the rule.
func TestBulkWaitEndsAsConnectionIsGiven(t *testing.T) {
	took, left := 0, 0
	for range 2000 {
		var q bulkQueue
		cn := &conn{}
		if !q.take(cn) {
			t.Fatal("a free connection could not be taken")
		}
		ctx, cancel := context.WithCancel(context.Background())
		type result struct {
			cn  *conn
			err error
		}
		res := make(chan result, 1)
		go func() {
			got, _, err := q.wait(ctx, nil, 0)
			res <- result{got, err}
		}()
		awaitWaiters(&q, 1)
		go cancel()
		q.give(cn)
		r := <-res
		q.mu.Lock()
		held := cn.bulk
		q.mu.Unlock()
		switch {
		case r.cn == cn && r.err == nil && held:
			took++
		case r.cn == nil && errors.Is(r.err, context.Canceled) && !held:
			left++
		default:
			t.Fatalf("wait returned %p, %v and the connection is marked %v; want it (%p), marked, or nil, the context's error and the connection free", r.cn, r.err, held, cn)
		}
	}
	t.Logf("took %d, left %d", took, left)
}

// awaitWaiters waits until n calls wait in q.
func awaitWaiters(q *bulkQueue, n int) {
	for {
		q.mu.Lock()
		k := len(q.waiters)
		q.mu.Unlock()
		if k == n {
			return
		}
		time.Sleep(20 * time.Microsecond)
	}
}

// TestBulkQueueServesInOrder: connections given back go to the waiting
// calls in the order they came, and a newcomer does not take a free
// connection ahead of them.
func TestBulkQueueServesInOrder(t *testing.T) {
	var q bulkQueue
	a, b := &conn{}, &conn{}
	if !q.take(a) || q.take(a) {
		t.Fatal("take: a free connection is taken once")
	}
	ctx := context.Background()
	got := make([]chan *conn, 3)
	for i := range got {
		got[i] = make(chan *conn, 1)
		go func() {
			cn, _, _ := q.wait(ctx, nil, 0)
			got[i] <- cn
		}()
		awaitWaiters(&q, i+1)
	}
	if q.take(b) {
		t.Fatal("a newcomer took a free connection while calls waited")
	}
	q.give(a)
	if cn := <-got[0]; cn != a {
		t.Fatalf("first in line got %p, want a", cn)
	}
	q.give(a)
	if cn := <-got[1]; cn != a {
		t.Fatalf("second in line got %p, want a", cn)
	}
	q.give(a)
	if cn := <-got[2]; cn != a {
		t.Fatalf("third in line got %p, want a", cn)
	}
	q.give(a)
	if !q.take(b) || !q.take(a) {
		t.Fatal("with nobody waiting, free connections are taken")
	}
}

// TestBulkWaitRunsOutOfPatience: a call waiting in line while no bulk call
// ends leaves the line once patience has passed, impatient, with no
// connection; the line is empty after it.
func TestBulkWaitRunsOutOfPatience(t *testing.T) {
	var q bulkQueue
	if !q.take(&conn{}) {
		t.Fatal("a free connection could not be taken")
	}
	cn, impatient, err := q.wait(context.Background(), nil, time.Millisecond)
	if cn != nil || !impatient || err != nil {
		t.Fatalf("wait = %p, %v, %v; want nil, impatient, nil", cn, impatient, err)
	}
	q.mu.Lock()
	n := len(q.waiters)
	q.mu.Unlock()
	if n != 0 {
		t.Fatalf("%d waiters left in line", n)
	}
}
