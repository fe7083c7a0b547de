package main

// The Go memcached client most Go programs use, github.com/bradfitz/gomemcache,
// against kvcache's memcached listener. It lives in the bench module so
// that the main module does not depend on it: it is only a test's
// dependency, and bench/ already carries the dependencies of comparisons.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
)

// startKvcacheForTest builds and starts kvcache with a memcached listener.
func startKvcacheForTest(t *testing.T) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	dir := t.TempDir()
	bin, err := buildKvcache(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	p, err := startKvcache(ctx, "kvcache", bin, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.stop)
	return p.addr
}

func TestGomemcache(t *testing.T) {
	mc := memcache.New(startKvcacheForTest(t))
	mc.Timeout = 5 * time.Second

	// The first call on a new client: no warm-up.
	if _, err := mc.Get("absent"); !errors.Is(err, memcache.ErrCacheMiss) {
		t.Fatalf("Get of a missing key: %v, want ErrCacheMiss", err)
	}
	if err := mc.Ping(); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	value := []byte("binary\r\nvalue\x00\xff")
	if err := mc.Set(&memcache.Item{Key: "k", Value: value, Flags: 42}); err != nil {
		t.Fatalf("Set: %v", err)
	}
	it, err := mc.Get("k")
	if err != nil || string(it.Value) != string(value) || it.Flags != 42 {
		t.Fatalf("Get = %+v, %v; want the value set with flags 42", it, err)
	}
	if err := mc.Add(&memcache.Item{Key: "k", Value: []byte("x")}); !errors.Is(err, memcache.ErrNotStored) {
		t.Fatalf("Add of a held key: %v, want ErrNotStored", err)
	}
	if err := mc.Replace(&memcache.Item{Key: "nope", Value: []byte("x")}); !errors.Is(err, memcache.ErrNotStored) {
		t.Fatalf("Replace of a missing key: %v, want ErrNotStored", err)
	}
	if err := mc.Append(&memcache.Item{Key: "k", Value: []byte("+tail")}); err != nil {
		t.Fatalf("Append: %v", err)
	}
	if err := mc.Prepend(&memcache.Item{Key: "k", Value: []byte("head+")}); err != nil {
		t.Fatalf("Prepend: %v", err)
	}
	if it, err = mc.Get("k"); err != nil || string(it.Value) != "head+"+string(value)+"+tail" {
		t.Fatalf("after Append and Prepend: %q, %v", it.Value, err)
	}

	// Compare and swap: the first swap wins, the stale one loses.
	it, _ = mc.Get("k")
	stale := *it
	it.Value = []byte("swapped")
	if err := mc.CompareAndSwap(it); err != nil {
		t.Fatalf("CompareAndSwap: %v", err)
	}
	stale.Value = []byte("stale")
	if err := mc.CompareAndSwap(&stale); !errors.Is(err, memcache.ErrCASConflict) {
		t.Fatalf("stale CompareAndSwap: %v, want ErrCASConflict", err)
	}

	// GetMulti across present and missing keys.
	for i := range 20 {
		if err := mc.Set(&memcache.Item{Key: fmt.Sprintf("m%d", i), Value: []byte(fmt.Sprint(i))}); err != nil {
			t.Fatal(err)
		}
	}
	keys := []string{"missing"}
	for i := range 20 {
		keys = append(keys, fmt.Sprintf("m%d", i))
	}
	got, err := mc.GetMulti(keys)
	if err != nil || len(got) != 20 || string(got["m7"].Value) != "7" {
		t.Fatalf("GetMulti: %d items, %v", len(got), err)
	}

	// Counters.
	if err := mc.Set(&memcache.Item{Key: "n", Value: []byte("10")}); err != nil {
		t.Fatal(err)
	}
	if n, err := mc.Increment("n", 5); err != nil || n != 15 {
		t.Fatalf("Increment: %d, %v", n, err)
	}
	if n, err := mc.Decrement("n", 100); err != nil || n != 0 {
		t.Fatalf("Decrement below zero: %d, %v; want 0, as memcached", n, err)
	}
	if _, err := mc.Increment("absent", 1); !errors.Is(err, memcache.ErrCacheMiss) {
		t.Fatalf("Increment of a missing key: %v", err)
	}

	// Expiry: Touch and GetAndTouch with a time in the past remove it.
	if err := mc.Touch("m1", 3600); err != nil {
		t.Fatalf("Touch: %v", err)
	}
	if it, err := mc.GetAndTouch("m2", 3600); err != nil || string(it.Value) != "2" {
		t.Fatalf("GetAndTouch: %+v, %v", it, err)
	}
	if err := mc.Set(&memcache.Item{Key: "gone", Value: []byte("x"), Expiration: -1}); err != nil {
		t.Fatal(err)
	}
	if _, err := mc.Get("gone"); !errors.Is(err, memcache.ErrCacheMiss) {
		t.Fatalf("Get of a key set already expired: %v", err)
	}

	if err := mc.Delete("k"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if err := mc.Delete("k"); !errors.Is(err, memcache.ErrCacheMiss) {
		t.Fatalf("Delete of a deleted key: %v", err)
	}
	if err := mc.FlushAll(); err != nil {
		t.Fatalf("FlushAll: %v", err)
	}
	if _, err := mc.Get("m3"); !errors.Is(err, memcache.ErrCacheMiss) {
		t.Fatalf("Get after FlushAll: %v", err)
	}
}

// TestGomemcacheConcurrent runs many goroutines through one gomemcache
// client, which spreads them over pooled connections, and checks that
// every goroutine reads its own writes.
func TestGomemcacheConcurrent(t *testing.T) {
	mc := memcache.New(startKvcacheForTest(t))
	mc.Timeout = 10 * time.Second
	mc.MaxIdleConns = 8
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for g := range 16 {
		wg.Go(func() {
			for i := range 200 {
				k := fmt.Sprintf("g%d-%d", g, i)
				v := []byte(k + "-value")
				if err := mc.Set(&memcache.Item{Key: k, Value: v}); err != nil {
					errs <- err
					return
				}
				it, err := mc.Get(k)
				if err != nil || string(it.Value) != string(v) {
					errs <- fmt.Errorf("%s: %v, %v", k, it, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// TestLoadGeneratorSmoke runs the side-by-side command briefly, so that it
// never rots; the figures are not looked at.
func TestLoadGeneratorSmoke(t *testing.T) {
	if _, err := exec.LookPath("memcached"); err != nil && os.Getenv("CI") == "" {
		t.Skip("memcached not installed")
	}
	var out strings.Builder
	o := options{rounds: 1, warmup: 10 * time.Millisecond, measure: 50 * time.Millisecond, slice: 10 * time.Millisecond, conns: 2, depth: 2, keys: 10, sizes: "16", journal: true, goloop: true}
	if err := run(context.Background(), o, &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| get | 16 B |", "| set | 16 B |", "kvcache --journal", "Go loop, one read"} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("report lacks %q:\n%s", want, out.String())
		}
	}
}
