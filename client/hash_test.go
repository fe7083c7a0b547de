package client_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"

	"github.com/tcpez/tcpez/client"
)

// keyPass calls once with each of nkeys keys, from 8 goroutines, and
// returns the server that answered each.
func keyPass(t testing.TB, c *client.Client, nkeys int) []string {
	t.Helper()
	ctx := ctxFor(t)
	out := make([]string, nkeys)
	errs := make(chan error, 8)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < nkeys; i += 8 {
				key := fmt.Sprintf("key-%d", i)
				ans, err := c.Call(client.WithKey(ctx, key), []byte(key))
				if err == nil {
					out[i], err = serverOf(ans, []byte(key))
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	return out
}

func countByServer(owners []string) map[string]int {
	n := make(map[string]int)
	for _, id := range owners {
		n[id]++
	}
	return n
}

// checkMoved asserts that from before to after exactly the keys of the
// servers in gone moved, and returns how many did.
func checkMoved(t testing.TB, before, after []string, gone ...string) (moved int) {
	t.Helper()
	for i := range before {
		switch {
		case slices.Contains(gone, before[i]):
			if slices.Contains(gone, after[i]) {
				t.Fatalf("key-%d still on %s", i, after[i])
			}
			moved++
		case after[i] != before[i]:
			t.Fatalf("key-%d moved from %s to %s, though %s is still up", i, before[i], after[i], before[i])
		}
	}
	return moved
}

// TestRendezvous sends 10k keys to 5 servers: each key goes to the same
// server every time; removing a server moves its keys and no other; a
// server that is down has its keys go where they would go without it.
func TestRendezvous(t *testing.T) {
	const nkeys = 10000
	var servers []*idServer
	for i := range 5 {
		servers = append(servers, startIDServer(t, fmt.Sprintf("s%d", i+1), "127.0.0.1:0"))
	}
	r := newChanResolver()
	ev := newEvents()
	c := newClient(t, nil, fast(client.Config{
		Resolver:      r,
		Balancer:      client.Rendezvous,
		OnStateChange: ev.hook,
	}))
	r.set(addrsOf(servers)...)
	for _, s := range servers {
		waitEvent(t, ev, s.addr, client.Connected, 0)
	}

	first := keyPass(t, c, nkeys)
	spread := countByServer(first)
	if again := keyPass(t, c, nkeys); !slices.Equal(first, again) {
		t.Fatal("keys moved between two passes over a stable set")
	}
	for _, s := range servers {
		// Binomial(10000, 1/5): 2000 ± 40; 1000 is 25 deviations away.
		if spread[s.id] < nkeys/10 {
			t.Errorf("%s got %d keys of %d", s.id, spread[s.id], nkeys)
		}
	}
	t.Logf("10k keys over 5 servers: %v", spread)

	// Calls without a key are balanced as by PowerOfTwo.
	seen := make(map[string]bool)
	for i := range 200 {
		req := fmt.Appendf(nil, "nokey-%d", i)
		ans, err := c.Call(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		id, _ := serverOf(ans, req)
		seen[id] = true
	}
	if len(seen) < 3 {
		t.Errorf("calls without a key reached only %v", slices.Sorted(maps.Keys(seen)))
	}

	// s5 leaves the set: its keys, and only they, move.
	gone := servers[4]
	r.set(addrsOf(servers[:4])...)
	afterRemove := keyPass(t, c, nkeys)
	moved := checkMoved(t, first, afterRemove, gone.id)
	t.Logf("removing %s moved %d keys (%.1f%%), exactly its own; now %v", gone.id, moved,
		100*float64(moved)/nkeys, countByServer(afterRemove))

	// s4 goes down while still in the set: its keys go to their
	// next-highest server, which is where they go once s4 is removed.
	down := servers[3]
	down.stop(t, false)
	waitEvent(t, ev, down.addr, client.Disconnected, 0)
	whileDown := keyPass(t, c, nkeys)
	moved = checkMoved(t, afterRemove, whileDown, down.id)
	r.set(addrsOf(servers[:3])...)
	if afterDownRemoved := keyPass(t, c, nkeys); !slices.Equal(whileDown, afterDownRemoved) {
		t.Fatal("keys of a down server went elsewhere than after its removal")
	}
	t.Logf("%s down moved %d keys, exactly its own, to their next-highest server; now %v", down.id, moved,
		countByServer(whileDown))
}
