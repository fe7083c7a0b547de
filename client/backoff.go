package client

import (
	"context"
	"math/rand/v2"
	"time"
)

// wait returns the n-th wait of b, n ≥ 1; zero for n ≤ 0.
func (b Backoff) wait(n int) time.Duration {
	if n <= 0 || b.Base <= 0 {
		return 0
	}
	d := b.Base
	for i := 1; i < n && d < b.Max; i++ {
		d *= 2
	}
	d = min(d, b.Max)
	half := d / 2
	return half + rand.N(d-half+1)
}

// sleep waits for d, or less when ctx or stop ends first; it reports
// whether the whole wait elapsed.
func sleep(ctx context.Context, stop <-chan struct{}, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	case <-stop:
		return false
	}
}
