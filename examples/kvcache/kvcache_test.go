package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/tcpez/tcpez/client"
	"github.com/tcpez/tcpez/examples/kvcache/kvcachepb"
	"github.com/tcpez/tcpez/protoserver"
)

// fakeClock is a clock that moves only when told to.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Unix(1_700_000_000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func newTestStore(t *testing.T, clock *fakeClock, retain int) *Store {
	t.Helper()
	s := NewStore(StoreConfig{Retain: retain, Now: clock.Now})
	t.Cleanup(s.Close)
	return s
}

func mustGet(t *testing.T, s *Store, key, want string) {
	t.Helper()
	v, _, ok := s.Get(key)
	if !ok || string(v) != want {
		t.Fatalf("Get(%q) = %q, %t; want %q", key, v, ok, want)
	}
}

func mustMiss(t *testing.T, s *Store, key string) {
	t.Helper()
	if v, _, ok := s.Get(key); ok {
		t.Fatalf("Get(%q) = %q; want a miss", key, v)
	}
}

func TestTTLExpiry(t *testing.T) {
	clock := newFakeClock()
	s := newTestStore(t, clock, 0)
	s.Set("forever", []byte("f"), 0)
	if replaced := s.Set("k", []byte("v"), 10*time.Second); replaced {
		t.Fatal("Set of a new key: replaced true")
	}
	if _, ttl, _ := s.Get("k"); ttl != 10*time.Second {
		t.Fatalf("ttl = %v, want 10s", ttl)
	}
	clock.Advance(9 * time.Second)
	mustGet(t, s, "k", "v")
	if _, ttl, _ := s.Get("k"); ttl != time.Second {
		t.Fatalf("ttl = %v, want 1s", ttl)
	}
	clock.Advance(time.Second)
	mustMiss(t, s, "k")
	mustGet(t, s, "forever", "f")
	if n := s.Len(); n != 1 {
		t.Fatalf("Len = %d after the lazy expiry, want 1", n)
	}
	// An expired key counts as missing for every operation.
	s.Set("k", []byte("v"), time.Second)
	clock.Advance(time.Second)
	if s.Set("k", []byte("w"), 0) {
		t.Fatal("Set over an expired key: replaced true")
	}
	s.Set("gone", []byte("x"), time.Second)
	clock.Advance(time.Second)
	if s.Delete("gone") {
		t.Fatal("Delete of an expired key: existed true")
	}

	// Sweep removes expired keys nobody touches.
	for i := range 5 {
		s.Set(fmt.Sprint("tmp", i), []byte("x"), time.Duration(i+1)*time.Second)
	}
	clock.Advance(3 * time.Second)
	if n := s.Sweep(); n != 3 {
		t.Fatalf("Sweep removed %d, want 3", n)
	}
	if n := s.Len(); n != 4 { // forever, k, tmp3, tmp4
		t.Fatalf("Len = %d after Sweep, want 4", n)
	}
}

// The sweeping goroutine removes expired keys, and Close stops it.
func TestSweeperStopsOnClose(t *testing.T) {
	clock := newFakeClock()
	s := NewStore(StoreConfig{SweepEvery: time.Millisecond, Now: clock.Now})
	s.Set("k", []byte("v"), time.Second)
	clock.Advance(time.Second)
	for i := 0; i < 5000 && s.Len() != 0; i++ {
		time.Sleep(time.Millisecond)
	}
	if n := s.Len(); n != 0 {
		t.Fatalf("Len = %d: the sweeper did not remove the expired key", n)
	}
	s.Close() // waits for the goroutine: a leak would hang here
	s.Close()
}

func TestIncr(t *testing.T) {
	clock := newFakeClock()
	s := newTestStore(t, clock, 0)
	// A missing key starts at 0 and gets the TTL.
	for i, want := range []int64{5, 3} {
		n, err := s.Incr("c", []int64{5, -2}[i], 10*time.Second)
		if err != nil || n != want {
			t.Fatalf("Incr = %d, %v; want %d", n, err, want)
		}
	}
	mustGet(t, s, "c", "3")
	clock.Advance(10 * time.Second)
	mustMiss(t, s, "c")
	if n, err := s.Incr("c", 1, 0); err != nil || n != 1 {
		t.Fatalf("Incr of an expired counter = %d, %v; want 1", n, err)
	}

	// An existing key keeps its TTL.
	s.Set("d", []byte("40"), 5*time.Second)
	if n, err := s.Incr("d", 2, time.Hour); err != nil || n != 42 {
		t.Fatalf("Incr = %d, %v; want 42", n, err)
	}
	if _, ttl, _ := s.Get("d"); ttl != 5*time.Second {
		t.Fatalf("ttl after Incr = %v, want the Set's 5s", ttl)
	}

	s.Set("text", []byte("hello"), 0)
	if _, err := s.Incr("text", 1, 0); protoserver.CodeOf(err) != protoserver.FailedPrecondition {
		t.Fatalf("Incr of text: %v, want FailedPrecondition", err)
	}
	mustGet(t, s, "text", "hello")
	s.Set("max", []byte(fmt.Sprint(int64(math.MaxInt64))), 0)
	if _, err := s.Incr("max", 1, 0); protoserver.CodeOf(err) != protoserver.OutOfRange {
		t.Fatalf("Incr over MaxInt64: %v, want OutOfRange", err)
	}
	s.Set("min", []byte(fmt.Sprint(int64(math.MinInt64))), 0)
	if _, err := s.Incr("min", -1, 0); protoserver.CodeOf(err) != protoserver.OutOfRange {
		t.Fatalf("Incr under MinInt64: %v, want OutOfRange", err)
	}
	if n, err := s.Incr("min", math.MaxInt64, 0); err != nil || n != -1 {
		t.Fatalf("Incr = %d, %v; want -1", n, err)
	}
}

// Incr is atomic: concurrent increments all count.
func TestIncrConcurrent(t *testing.T) {
	s := newTestStore(t, newFakeClock(), 0)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				s.Incr("n", 1, 0)
			}
		})
	}
	wg.Wait()
	mustGet(t, s, "n", "800")
}

func TestSnapshotRoundTrip(t *testing.T) {
	clock := newFakeClock()
	s := newTestStore(t, clock, 3)
	s.Set("plain", []byte("v"), 0)
	s.Set("binary", []byte{0, 1, 2, 255}, 0)
	s.Set("empty", nil, 0)
	s.Set("ttl", []byte("t"), 90*time.Second)
	s.Set("expired", []byte("x"), time.Second)
	s.Incr("counter", 7, 0)
	for i := 1; i <= 5; i++ {
		s.Publish("events", []byte(fmt.Sprint("e", i)))
	}
	s.Publish("one", []byte("only"))
	s.Listen(context.Background(), "quiet", 0, 10, 0) // listened to, never published on
	clock.Advance(30 * time.Second)

	path := filepath.Join(t.TempDir(), "cache.snap")
	if err := s.SaveFile(path); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 1 {
		t.Fatalf("the directory holds %d files, want only the snapshot", len(entries))
	}

	// The format is deterministic: a store with the same data written in
	// another order gives the same bytes.
	other := newTestStore(t, clock, 3)
	if _, err := other.LoadFile(path); err != nil {
		t.Fatal(err)
	}
	first, _ := os.ReadFile(path)
	var again bytes.Buffer
	if err := other.WriteSnapshot(&again); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(first, again.Bytes()) {
		t.Fatal("writing a loaded snapshot again gives other bytes")
	}

	clock.Advance(30 * time.Second)
	r := newTestStore(t, clock, 3)
	loaded, err := r.LoadFile(path)
	if err != nil || !loaded {
		t.Fatalf("LoadFile = %t, %v", loaded, err)
	}
	mustGet(t, r, "plain", "v")
	mustGet(t, r, "binary", "\x00\x01\x02\xff")
	mustGet(t, r, "empty", "")
	mustGet(t, r, "counter", "7")
	mustMiss(t, r, "expired")
	if _, ttl, _ := r.Get("ttl"); ttl != 30*time.Second {
		t.Fatalf("ttl after the round trip = %v, want 30s", ttl)
	}
	clock.Advance(30 * time.Second)
	mustMiss(t, r, "ttl")

	resp, err := r.Listen(context.Background(), "events", 0, 10, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := seqs(resp); resp.Missed != 2 || resp.FirstAvailable != 3 || resp.LastSeq != 5 || !slices.Equal(got, []uint64{3, 4, 5}) {
		t.Fatalf("Listen after load: missed %d first %d last %d seqs %v", resp.Missed, resp.FirstAvailable, resp.LastSeq, got)
	}
	if seq := r.Publish("events", []byte("e6")); seq != 6 {
		t.Fatalf("Publish after load: seq %d, want 6", seq)
	}
	if resp, _ := r.Listen(context.Background(), "one", 0, 10, 0); len(resp.Messages) != 1 || string(resp.Messages[0].Payload) != "only" {
		t.Fatalf("channel one after load: %v", resp)
	}
	if r.Len() != 4 { // plain, binary, empty, counter: ttl has expired by now
		t.Fatalf("Len = %d after load, want 4", r.Len())
	}

	// A missing file is an empty store; a file of something else an error.
	if loaded, err := r.LoadFile(filepath.Join(t.TempDir(), "none")); loaded || err != nil {
		t.Fatalf("LoadFile of a missing file = %t, %v", loaded, err)
	}
	bad := filepath.Join(t.TempDir(), "bad")
	os.WriteFile(bad, []byte("\x00\x00\x00\x03abc"), 0o600)
	if _, err := r.LoadFile(bad); err == nil {
		t.Fatal("LoadFile of a file that is no snapshot: no error")
	}
	os.WriteFile(bad, first[:len(first)-1], 0o600)
	if _, err := NewStore(StoreConfig{}).LoadFile(bad); err == nil {
		t.Fatal("LoadFile of a truncated snapshot: no error")
	}
}

func seqs(resp *kvcachepb.ListenResponse) []uint64 {
	var s []uint64
	for _, m := range resp.Messages {
		s = append(s, m.Seq)
	}
	return s
}

func TestListenRetained(t *testing.T) {
	s := newTestStore(t, newFakeClock(), 3)
	ctx := context.Background()
	for i := 1; i <= 5; i++ {
		if seq := s.Publish("ch", []byte(fmt.Sprint("m", i))); seq != uint64(i) {
			t.Fatalf("Publish: seq %d, want %d", seq, i)
		}
	}
	for _, tc := range []struct {
		cursor      uint64
		limit       int
		want        []uint64
		missed, cur uint64
	}{
		{cursor: 0, limit: 10, want: []uint64{3, 4, 5}, missed: 2, cur: 5},
		{cursor: 1, limit: 10, want: []uint64{3, 4, 5}, missed: 1, cur: 5},
		{cursor: 2, limit: 10, want: []uint64{3, 4, 5}, cur: 5},
		{cursor: 3, limit: 10, want: []uint64{4, 5}, cur: 5},
		{cursor: 0, limit: 2, want: []uint64{3, 4}, missed: 2, cur: 4},
		{cursor: 5, limit: 10, cur: 5}, // nothing new, no wait
	} {
		resp, err := s.Listen(ctx, "ch", tc.cursor, tc.limit, 0)
		if err != nil {
			t.Fatal(err)
		}
		if got := seqs(resp); !slices.Equal(got, tc.want) || resp.Missed != tc.missed || resp.Cursor != tc.cur || resp.FirstAvailable != 3 || resp.LastSeq != 5 {
			t.Errorf("Listen from %d, limit %d: seqs %v missed %d cursor %d first %d last %d; want %v missed %d cursor %d first 3 last 5",
				tc.cursor, tc.limit, got, resp.Missed, resp.Cursor, resp.FirstAvailable, resp.LastSeq, tc.want, tc.missed, tc.cur)
		}
		for _, m := range resp.Messages {
			if string(m.Payload) != fmt.Sprint("m", m.Seq) {
				t.Errorf("message %d: payload %q", m.Seq, m.Payload)
			}
		}
	}
	if _, err := s.Listen(ctx, "ch", 6, 10, 0); protoserver.CodeOf(err) != protoserver.OutOfRange {
		t.Fatalf("Listen past the last message: %v, want OutOfRange", err)
	}
	if _, err := s.Listen(ctx, "never", 1, 10, 0); protoserver.CodeOf(err) != protoserver.OutOfRange {
		t.Fatalf("Listen past an unknown channel's start: %v, want OutOfRange", err)
	}
	if resp, err := s.Listen(ctx, "never", 0, 10, 0); err != nil || len(resp.Messages) != 0 || resp.LastSeq != 0 || resp.FirstAvailable != 0 {
		t.Fatalf("Listen on an unknown channel: %v, %v", resp, err)
	}
}

// waitUntil polls cond, in a bounded loop.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for range 2000 {
		if cond() {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("timed out waiting until %s", what)
}

type listenResult struct {
	resp *kvcachepb.ListenResponse
	err  error
}

func TestListenWakesOnPublishAndClose(t *testing.T) {
	s := newTestStore(t, newFakeClock(), 0)
	res := make(chan listenResult, 1)
	listen := func(cursor uint64) {
		resp, err := s.Listen(context.Background(), "ch", cursor, 10, time.Hour)
		res <- listenResult{resp, err}
	}
	go listen(0)
	waitUntil(t, "the Listen waits", func() bool { return s.Waiting() == 1 })
	s.Publish("other", []byte("not for it"))
	s.Publish("ch", []byte("hello"))
	r := <-res
	if r.err != nil || len(r.resp.Messages) != 1 || string(r.resp.Messages[0].Payload) != "hello" || r.resp.Cursor != 1 {
		t.Fatalf("Listen woken by Publish: %v, %v", r.resp, r.err)
	}

	// Close ends a waiting Listen with no messages, for a quick shutdown.
	go listen(1)
	waitUntil(t, "the Listen waits", func() bool { return s.Waiting() == 1 })
	s.Close()
	r = <-res
	if r.err != nil || len(r.resp.Messages) != 0 || r.resp.Cursor != 1 {
		t.Fatalf("Listen ended by Close: %v, %v", r.resp, r.err)
	}

	// The caller's context ends a wait too.
	s2 := newTestStore(t, newFakeClock(), 0)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		resp, err := s2.Listen(ctx, "ch", 0, 10, time.Hour)
		res <- listenResult{resp, err}
	}()
	waitUntil(t, "the Listen waits", func() bool { return s2.Waiting() == 1 })
	cancel()
	if r := <-res; r.err != context.Canceled {
		t.Fatalf("Listen with a cancelled context: %v, %v", r.resp, r.err)
	}
}

func TestListenWait(t *testing.T) {
	bg := context.Background()
	for _, tc := range []struct {
		ms   int64
		want time.Duration
	}{{0, 0}, {-5, 0}, {50, 50 * time.Millisecond}, {math.MaxInt64, maxListenWait}} {
		if got := listenWait(bg, tc.ms); got != tc.want {
			t.Errorf("listenWait(%d) = %v, want %v", tc.ms, got, tc.want)
		}
	}
	// A deadline shortens the wait, ending it a little before.
	ctx, cancel := context.WithTimeout(bg, 10*time.Second)
	defer cancel()
	if got := listenWait(ctx, math.MaxInt64); got > 10*time.Second-maxListenWaitAhead || got < time.Second {
		t.Errorf("listenWait with 10s left = %v", got)
	}
	ctx, cancel = context.WithTimeout(bg, time.Second)
	defer cancel()
	if got := listenWait(ctx, math.MaxInt64); got > 900*time.Millisecond || got <= 0 {
		t.Errorf("listenWait with 1s left = %v", got)
	}
	ctx, cancel = context.WithTimeout(bg, -time.Second)
	defer cancel()
	if got := listenWait(ctx, 1000); got != 0 {
		t.Errorf("listenWait past the deadline = %v", got)
	}
}

// cluster starts n servers and returns them and a client over all of them
// that shards by key.
func cluster(t *testing.T, n int) ([]*node, kvcachepb.CacheClient, []string) {
	t.Helper()
	logger := logrus.New()
	logger.SetOutput(io.Discard)
	nodes := make([]*node, n)
	addrs := make([]string, n)
	for i := range nodes {
		nd, err := startNode(fmt.Sprintf("cache-%d", i+1), "127.0.0.1:0", nodeOptions{}, logger)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { nd.stop(context.Background()) })
		nodes[i], addrs[i] = nd, nd.addr
	}
	return nodes, newClient(t, addrs), addrs
}

func newClient(t *testing.T, addrs []string) kvcachepb.CacheClient {
	t.Helper()
	c, err := client.New(addrs, client.Config{Balancer: client.Rendezvous})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return kvcachepb.NewCacheClient(protoserver.NewClient(c, protoserver.ClientConfig{}))
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// Over the network, with long polls on a client of their own: a Listen
// waits, wakes on a Publish, and ends empty before the caller's deadline
// or at max_wait.
func TestListenLongPoll(t *testing.T) {
	nodes, kv, addrs := cluster(t, 1)
	listener := newClient(t, addrs)
	ctx := testCtx(t)

	res := make(chan listenResult, 1)
	go func() {
		resp, err := listener.Listen(ctx, &kvcachepb.ListenRequest{Channel: "ch", MaxWaitMs: 60_000})
		res <- listenResult{resp, err}
	}()
	waitUntil(t, "the Listen waits", func() bool { return nodes[0].store.Waiting() == 1 })
	if _, err := kv.Publish(ctx, &kvcachepb.PublishRequest{Channel: "ch", Payload: []byte("hi")}); err != nil {
		t.Fatal(err)
	}
	r := <-res
	if r.err != nil || len(r.resp.Messages) != 1 || r.resp.Cursor != 1 || r.resp.Server != "cache-1" {
		t.Fatalf("Listen: %v, %v", r.resp, r.err)
	}

	// max_wait bounds the wait.
	resp, err := listener.Listen(ctx, &kvcachepb.ListenRequest{Channel: "ch", Cursor: 1, MaxWaitMs: 20})
	if err != nil || len(resp.Messages) != 0 || resp.Cursor != 1 || resp.LastSeq != 1 {
		t.Fatalf("Listen with max_wait: %v, %v", resp, err)
	}
	// So does the caller's deadline: the server answers, empty, before it.
	short, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	resp, err = listener.Listen(short, &kvcachepb.ListenRequest{Channel: "ch", Cursor: 1, MaxWaitMs: 60_000})
	if err != nil || len(resp.Messages) != 0 || resp.Cursor != 1 {
		t.Fatalf("Listen with a 2s deadline and a 60s max_wait: %v, %v", resp, err)
	}
	// A shutdown ends a long poll at once.
	go func() {
		resp, err := listener.Listen(ctx, &kvcachepb.ListenRequest{Channel: "ch", Cursor: 1, MaxWaitMs: 60_000})
		res <- listenResult{resp, err}
	}()
	waitUntil(t, "the Listen waits", func() bool { return nodes[0].store.Waiting() == 1 })
	if err := nodes[0].stop(ctx); err != nil {
		t.Fatal(err)
	}
	if r := <-res; r.err != nil || len(r.resp.Messages) != 0 {
		t.Fatalf("Listen during shutdown: %v, %v", r.resp, r.err)
	}
}

func TestServiceErrors(t *testing.T) {
	_, kv, _ := cluster(t, 1)
	ctx := testCtx(t)
	for name, call := range map[string]func() error{
		"get missing": func() error { _, err := kv.Get(ctx, &kvcachepb.GetRequest{Key: "nope"}); return err },
		"empty key":   func() error { _, err := kv.Set(ctx, &kvcachepb.SetRequest{}); return err },
		"long key": func() error {
			_, err := kv.Get(ctx, &kvcachepb.GetRequest{Key: string(make([]byte, maxKeyLen+1))})
			return err
		},
		"negative ttl": func() error { _, err := kv.Set(ctx, &kvcachepb.SetRequest{Key: "k", TtlMs: -1}); return err },
		"no channel":   func() error { _, err := kv.Publish(ctx, &kvcachepb.PublishRequest{}); return err },
		"cursor ahead": func() error {
			_, err := kv.Listen(ctx, &kvcachepb.ListenRequest{Channel: "c", Cursor: 9})
			return err
		},
	} {
		want := map[string]protoserver.Code{"get missing": protoserver.NotFound, "cursor ahead": protoserver.OutOfRange}[name]
		if want == protoserver.OK {
			want = protoserver.InvalidArgument
		}
		if got := protoserver.CodeOf(call()); got != want {
			t.Errorf("%s: %v, want %v", name, got, want)
		}
	}
}

// With client.Rendezvous and client.WithKey, a key always goes to the same
// server, every client agrees which, and only that server holds it.
func TestShardingStable(t *testing.T) {
	nodes, kv, addrs := cluster(t, 3)
	other := newClient(t, addrs) // another process, say
	ctx := testCtx(t)
	perServer := make(map[string]int)
	for i := range 60 {
		key := fmt.Sprint("key:", i)
		kctx := client.WithKey(ctx, key)
		set, err := kv.Set(kctx, &kvcachepb.SetRequest{Key: key, Value: []byte(key)})
		if err != nil {
			t.Fatal(err)
		}
		perServer[set.Server]++
		for j := range 5 {
			c := kv
			if j%2 == 1 {
				c = other
			}
			got, err := c.Get(kctx, &kvcachepb.GetRequest{Key: key})
			if err != nil || got.Server != set.Server {
				t.Fatalf("Get %s: %v from %v, set on %s", key, err, got, set.Server)
			}
		}
		for _, nd := range nodes {
			if _, _, ok := nd.store.Get(key); ok != (nd.id == set.Server) {
				t.Fatalf("%s held by %s: %t; set on %s", key, nd.id, ok, set.Server)
			}
		}
	}
	if len(perServer) != 3 {
		t.Fatalf("60 keys went to %d servers: %v", len(perServer), perServer)
	}
}

// TestListenThenPublishOnOneClient: a Listen and then, while it waits, a
// Publish on the same client and channel, so on the same address. The
// server runs the Publish while the Listen waits, whether the client sends
// it on the Listen's connection (exactly one connection asked for) or
// routes it to another, and the Listen returns the message, not the empty
// answer it would give near its deadline.
func TestListenThenPublishOnOneClient(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  client.Config
	}{
		{"default", client.Config{Balancer: client.Rendezvous}},
		{"v1, one connection", client.Config{Balancer: client.Rendezvous, Protocol: client.ProtocolV1, MaxExtraConns: -1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nodes, _, addrs := cluster(t, 1)
			c, err := client.New(addrs, tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })
			kv := kvcachepb.NewCacheClient(protoserver.NewClient(c, protoserver.ClientConfig{}))
			ctx, cancel := context.WithTimeout(client.WithKey(context.Background(), "ch"), 5*time.Second)
			defer cancel()
			res := make(chan listenResult, 1)
			go func() {
				resp, err := kv.Listen(ctx, &kvcachepb.ListenRequest{Channel: "ch", MaxWaitMs: 60_000})
				res <- listenResult{resp, err}
			}()
			waitUntil(t, "the Listen waits", func() bool { return nodes[0].store.Waiting() == 1 })
			if _, err := kv.Publish(ctx, &kvcachepb.PublishRequest{Channel: "ch", Payload: []byte("hi")}); err != nil {
				t.Fatal(err)
			}
			r := <-res
			if r.err != nil || len(r.resp.Messages) != 1 || string(r.resp.Messages[0].Payload) != "hi" {
				t.Fatalf("Listen: %v, %v; want the message published after it", r.resp, r.err)
			}
		})
	}
}
