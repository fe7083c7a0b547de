package budget_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/tcpez/tcpez/internal/budget"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// safety bounds every wait of a test; it is never the thing asserted.
const safety = 10 * time.Second

// acquireAsync starts an Acquire and returns its result channel, once the
// acquisition is queued.
func acquireAsync(t *testing.T, b *budget.Budget, a *budget.Account, n int64) <-chan error {
	t.Helper()
	before := b.Waiting()
	done := make(chan error, 1)
	go func() { done <- a.Acquire(context.Background(), n, safety) }()
	deadline := time.Now().Add(safety)
	for b.Waiting() == before {
		if time.Now().After(deadline) {
			t.Fatal("the acquisition never queued")
		}
		time.Sleep(time.Millisecond)
	}
	return done
}

func granted(t *testing.T, done <-chan error) {
	t.Helper()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Acquire: %v", err)
		}
	case <-time.After(safety):
		t.Fatal("Acquire still waiting")
	}
}

func pending(t *testing.T, done <-chan error) {
	t.Helper()
	select {
	case err := <-done:
		t.Fatalf("Acquire returned %v, want it still waiting", err)
	default:
	}
}

func TestWaitsUntilReleased(t *testing.T) {
	b := budget.New(100, 0, nil)
	x, y := b.NewAccount(), b.NewAccount()
	if !x.TryAcquire(100) {
		t.Fatal("the whole budget refused")
	}
	if y.TryAcquire(1) {
		t.Fatal("granted past the limit")
	}
	done := acquireAsync(t, b, y, 30)
	x.Release(20)
	pending(t, done)
	x.Release(10)
	granted(t, done)
	if got := y.Held(); got != 30 {
		t.Fatalf("y holds %d, want 30", got)
	}
	if got := b.Used(); got != 100 {
		t.Fatalf("used %d, want 100", got)
	}
}

// TestLeastHeldFirst: the largest connections give way first.
func TestLeastHeldFirst(t *testing.T) {
	b := budget.New(100, 0, nil)
	big, small, other := b.NewAccount(), b.NewAccount(), b.NewAccount()
	big.Charge(50)
	small.Charge(10)
	other.Charge(40)
	bigWants := acquireAsync(t, b, big, 10)
	smallWants := acquireAsync(t, b, small, 10)
	other.Release(10)
	granted(t, smallWants)
	pending(t, bigWants)
	// A newcomer holding more than the first waiter queues behind it.
	if big.TryAcquire(1) {
		t.Fatal("a connection holding more than a waiter jumped the queue")
	}
	other.Release(10)
	granted(t, bigWants)
}

// TestFirstWaiterIsNotSkipped: a small request behind a large one waits,
// or the large one could starve.
func TestFirstWaiterIsNotSkipped(t *testing.T) {
	b := budget.New(100, 0, nil)
	x, first, second := b.NewAccount(), b.NewAccount(), b.NewAccount()
	x.Charge(100)
	second.Charge(0)
	firstWants := acquireAsync(t, b, first, 50)
	second.Charge(1) // holds more than first: queued behind it
	secondWants := acquireAsync(t, b, second, 5)
	x.Release(10)
	pending(t, firstWants)
	pending(t, secondWants)
	x.Release(50)
	granted(t, firstWants)
	granted(t, secondWants)
}

// TestFloorAlwaysGranted: small requests progress when the budget is spent.
func TestFloorAlwaysGranted(t *testing.T) {
	b := budget.New(100, 16, nil)
	hog, honest := b.NewAccount(), b.NewAccount()
	hog.Charge(150)
	if !honest.TryAcquire(16) {
		t.Fatal("the floor was refused")
	}
	if honest.TryAcquire(1) {
		t.Fatal("granted past the floor with the budget spent")
	}
	if err := hog.Acquire(context.Background(), 1, time.Millisecond); !errors.Is(err, budget.ErrExhausted) {
		t.Fatalf("hog: %v, want ErrExhausted", err)
	}
}

func TestWaitBoundAndCancel(t *testing.T) {
	b := budget.New(100, 0, nil)
	x, y := b.NewAccount(), b.NewAccount()
	x.Charge(100)
	if err := y.Acquire(context.Background(), 1, time.Millisecond); !errors.Is(err, budget.ErrExhausted) {
		t.Fatalf("after the wait bound: %v, want ErrExhausted", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := y.Acquire(ctx, 1, 0); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v, want context.Canceled", err)
	}
	if err := y.Acquire(context.Background(), 101, 0); !errors.Is(err, budget.ErrExhausted) {
		t.Fatalf("more than the budget: %v, want ErrExhausted at once", err)
	}
	if b.Waiting() != 0 || y.Held() != 0 || b.Used() != 100 {
		t.Fatalf("after giving up: %d waiting, y holds %d, used %d", b.Waiting(), y.Held(), b.Used())
	}
}

// TestGivingUpUnblocksOthers: a first waiter that gives up lets the ones
// behind it in.
func TestGivingUpUnblocksOthers(t *testing.T) {
	b := budget.New(100, 0, nil)
	x, first, second := b.NewAccount(), b.NewAccount(), b.NewAccount()
	x.Charge(95)
	ctx, cancel := context.WithCancel(context.Background())
	firstDone := make(chan error, 1)
	go func() { firstDone <- first.Acquire(ctx, 50, 0) }()
	for b.Waiting() == 0 {
		time.Sleep(time.Millisecond)
	}
	second.Charge(1)
	x.Release(1)
	secondWants := acquireAsync(t, b, second, 5)
	cancel()
	if err := <-firstDone; !errors.Is(err, context.Canceled) {
		t.Fatalf("first: %v", err)
	}
	granted(t, secondWants)
}

// TestParkedBytesAreReclaimed: memory a pool keeps counts, and is freed
// when a request needs its room; with waiters, nothing is parked.
func TestParkedBytesAreReclaimed(t *testing.T) {
	var b *budget.Budget
	parked := int64(0)
	b = budget.New(100, 0, func(n int64) {
		b.Unpark(parked)
		parked = 0
	})
	x, y := b.NewAccount(), b.NewAccount()
	x.Charge(60)
	if !x.Park(60) {
		t.Fatal("Park refused with no one waiting")
	}
	parked = 60
	if b.Used() != 60 || x.Held() != 0 {
		t.Fatalf("used %d, x holds %d", b.Used(), x.Held())
	}
	if !y.TryAcquire(80) {
		t.Fatal("parked bytes were not reclaimed")
	}
	if b.Used() != 80 {
		t.Fatalf("used %d, want 80", b.Used())
	}
	x.Charge(20)
	done := acquireAsync(t, b, x, 10)
	y.Charge(0)
	if y.Park(10) {
		t.Fatal("parked while someone waits")
	}
	granted(t, done)
}

// BenchmarkChargeNothing is what every answer small enough not to be
// charged (server.answerFree) costs each request: the accounts of many
// connections charging nothing at once, on all Ps.
func BenchmarkChargeNothing(b *testing.B) {
	bud := budget.New(1<<30, 0, nil)
	b.RunParallel(func(pb *testing.PB) {
		a := bud.NewAccount()
		for pb.Next() {
			a.Charge(0)
		}
	})
}
