// Kvcache is a tcpez example: an in-memory cache service in the manner of
// memcached — Get, Set with TTLs, Delete, Incr — that also carries messages
// between processes: Publish appends to a channel, which retains its last
// messages, and Subscribe catches up from a cursor and then has the server
// push every new message (Listen long-polls, for v1 clients), so that a
// listener that comes back with its last cursor misses nothing the channel
// still retains. The service is kvcachepb/kvcache.proto.
//
// A client shards keys and channels over several servers by consistent
// hashing: client.Rendezvous, with client.WithKey on every call. A server
// can keep its store in a snapshot file across restarts, and its keys in
// a journal that survives a crash (--journal, --sync), and can speak
// memcached's text protocol on a second listener over the same store
// (--memcache), for memcached's clients and tools. See README.md.
//
//	go run ./examples/kvcache        # the demo: three servers and a client in one process
//	go run ./examples/kvcache --serve 127.0.0.1:7100 --snapshot cache.snap
//	go run ./examples/kvcache --serve 127.0.0.1:7100 --memcache 127.0.0.1:11211 --journal cache.journal
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/tcpez/tcpez/client"
	"github.com/tcpez/tcpez/examples/kvcache/kvcachepb"
	"github.com/tcpez/tcpez/protoserver"
	"github.com/tcpez/tcpez/pubsub"
	"github.com/tcpez/tcpez/server"
	"github.com/tcpez/tcpez/textcmd/textserver"
)

func main() {
	serve := flag.String("serve", "", "run one cache server on `addr` (host:port or unix:/path) until SIGINT or SIGTERM, instead of the demo")
	id := flag.String("id", "", "the server's name in its responses (default: the --serve address)")
	snapshot := flag.String("snapshot", "", "with --serve: load the store from `file` at start if it exists, and write it there on shutdown")
	retain := flag.Int("retain", DefaultRetain, "how many messages each channel keeps")
	memcache := flag.String("memcache", "", "with --serve: also speak memcached's text protocol on `addr`, over the same store")
	journal := flag.String("journal", "", "with --serve: keep every write of a key in the append-only `file`, replayed at start, so that a crash loses at most the --sync window")
	syncFlag := flag.String("sync", DefaultSyncEvery.String(), "with --journal: how often the journal is fsynced (a `duration`), or \"always\": before each write is acknowledged")
	flag.Parse()
	if *serve == "" {
		if err := demo(os.Stdout); err != nil {
			log.Fatal(err)
		}
		return
	}
	if *id == "" {
		*id = *serve
	}
	opts := nodeOptions{snapshot: *snapshot, retain: *retain, memcache: *memcache, journal: JournalConfig{Path: *journal}}
	if *syncFlag == "always" {
		opts.journal.SyncEvery = -1
	} else {
		d, err := time.ParseDuration(*syncFlag)
		if err != nil || d <= 0 {
			log.Fatalf("--sync %q: want a positive duration or \"always\"", *syncFlag)
		}
		opts.journal.SyncEvery = d
	}
	if err := serveOne(*serve, *id, opts); err != nil {
		log.Fatal(err)
	}
}

// nodeOptions are the settings of one cache server beyond its address.
type nodeOptions struct {
	snapshot string
	retain   int
	memcache string        // the memcached listener's address; "": none
	journal  JournalConfig // Path "": no journal
}

// node is one cache server.
type node struct {
	id, addr, snapshot string
	memcacheAddr       string // "" without a memcached listener
	store              *Store
	journal            *Journal
	subs               *pubsub.Hub // who is subscribed to which channel
	svc                *protoserver.Service
	srv                *server.Server
	msrv               *server.Server // the memcached listener's server
	served             chan error     // Serve's result, of either server
}

// startNode starts a cache server on addr, with the store of the snapshot
// file and the journal if there are, and a memcached listener if asked.
func startNode(id, addr string, opts nodeOptions, logger logrus.FieldLogger) (_ *node, err error) {
	store := NewStore(StoreConfig{Retain: opts.retain, SweepEvery: time.Second})
	n := &node{id: id, snapshot: opts.snapshot, store: store, served: make(chan error, 2)}
	defer func() {
		if err != nil {
			n.close()
		}
	}()
	if opts.snapshot != "" {
		if _, err := store.LoadFile(opts.snapshot); err != nil {
			return nil, err
		}
	}
	if opts.journal.Path != "" {
		if n.journal, err = OpenJournal(opts.journal, store); err != nil {
			return nil, err
		}
	}
	n.svc = protoserver.NewService(protoserver.ServiceConfig{Logger: logger})
	n.subs = pubsub.NewHub()
	kvcachepb.RegisterCache(n.svc, &cache{id: id, store: store, subs: n.subs})
	n.srv = server.New(n.svc, server.Config{Logger: logger})
	l, err := n.srv.Listen(addr)
	if err != nil {
		return nil, err
	}
	n.addr = l.Addr().String()
	go func() { n.served <- n.srv.Serve(l) }()
	if opts.memcache != "" {
		// One command of a connection at a time, as memcached runs them: a
		// pipelined get must see the set written before it. And no idle
		// timeout, as memcached has none by default: memcached clients keep
		// pooled connections open and idle for as long as they like, and
		// some fail a request on one the server closed meanwhile.
		n.msrv = textserver.NewServer(newMemcacheMux(store, n.journal), server.Config{Logger: logger, MaxInFlight: 1, IdleTimeout: -1})
		ml, err := n.msrv.Listen(opts.memcache)
		if err != nil {
			return nil, err
		}
		n.memcacheAddr = ml.Addr().String()
		go func() { n.served <- n.msrv.Serve(ml) }()
	}
	return n, nil
}

// close stops what a failed start had started.
func (n *node) close() {
	if n.srv != nil {
		n.srv.Close()
	}
	if n.msrv != nil {
		n.msrv.Close()
	}
	if n.journal != nil {
		n.journal.Close()
	}
	n.store.Close()
}

// stop shuts the server down gracefully: new calls are answered
// Unavailable, waiting Listens answer at once, the calls in hand finish,
// the journal is synced, and then the store is written to the snapshot
// file, if there is one.
func (n *node) stop(ctx context.Context) error {
	n.svc.Drain()
	n.store.Close()
	err := n.srv.Shutdown(ctx)
	if n.msrv != nil {
		err = errors.Join(err, n.msrv.Shutdown(ctx))
	}
	if n.journal != nil {
		err = errors.Join(err, n.journal.Close())
	}
	if n.snapshot != "" {
		err = errors.Join(err, n.store.SaveFile(n.snapshot))
	}
	return err
}

// serveOne runs one server until a signal stops it.
func serveOne(addr, id string, opts nodeOptions) error {
	logger := logrus.StandardLogger()
	n, err := startNode(id, addr, opts, logger)
	if err != nil {
		return err
	}
	logger.WithFields(logrus.Fields{"addr": n.addr, "memcache_addr": n.memcacheAddr, "id": id, "keys": n.store.Len(),
		"snapshot": opts.snapshot, "journal": opts.journal.Path}).Info("kvcache: serving")
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	select {
	case s := <-sig:
		logger.WithField("signal", s.String()).Info("kvcache: shutting down")
	case err := <-n.served:
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return n.stop(ctx)
}

// demo runs three servers and a client in this process and prints what
// they do; the output is the same on every run.
func demo(out io.Writer) error {
	logger := logrus.New()
	logger.SetOutput(os.Stderr)
	logger.SetLevel(logrus.WarnLevel)

	dir, err := os.MkdirTemp("", "kvcache")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	nodes := make([]*node, 3)
	for i := range nodes {
		snap := ""
		if i == 2 {
			snap = filepath.Join(dir, "cache-3.snap")
		}
		if nodes[i], err = startNode(fmt.Sprintf("cache-%d", i+1), "127.0.0.1:0", nodeOptions{snapshot: snap, retain: DefaultRetain}, logger); err != nil {
			return err
		}
	}
	defer func() {
		for _, n := range nodes {
			if n != nil {
				n.stop(context.Background())
			}
		}
	}()
	addrs := []string{nodes[0].addr, nodes[1].addr, nodes[2].addr}
	fmt.Fprintln(out, "3 servers: cache-1 cache-2 cache-3 (cache-3 keeps a snapshot file)")

	// The client hashes every call's key to a server. Its state changes
	// tell the demo when cache-3 goes and comes back.
	events := make(chan client.StateEvent, 100)
	c, err := client.New(addrs, client.Config{
		Balancer:         client.Rendezvous,
		ReconnectBackoff: client.Backoff{Base: 10 * time.Millisecond, Max: 100 * time.Millisecond},
		OnStateChange: func(ev client.StateEvent) {
			select {
			case events <- ev:
			default:
			}
		},
	})
	if err != nil {
		return err
	}
	defer c.Close()
	kv := kvcachepb.NewCacheClient(protoserver.NewClient(c, protoserver.ClientConfig{}))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// on gives a call its sharding key: the cache key or the channel name.
	on := func(key string) context.Context { return client.WithKey(ctx, key) }

	// Set, Get and TTLs.
	set, err := kv.Set(on("greeting"), &kvcachepb.SetRequest{Key: "greeting", Value: []byte("hello")})
	if err != nil {
		return err
	}
	fmt.Fprintln(out, "set greeting: replaced", set.Replaced)
	got, err := kv.Get(on("greeting"), &kvcachepb.GetRequest{Key: "greeting"})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "get greeting: %s (ttl_ms %d: no expiry), from the server it was set on: %t\n", got.Value, got.TtlMs, got.Server == set.Server)

	const ttl = 500 * time.Millisecond
	if _, err := kv.Set(on("session:42"), &kvcachepb.SetRequest{Key: "session:42", Value: []byte("alice"), TtlMs: ttl.Milliseconds()}); err != nil {
		return err
	}
	got, err = kv.Get(on("session:42"), &kvcachepb.GetRequest{Key: "session:42"})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "set session:42 with a %v ttl; get at once: %s, expiring within %v: %t\n", ttl, got.Value, ttl, got.TtlMs > 0 && got.TtlMs <= ttl.Milliseconds())
	time.Sleep(ttl + 100*time.Millisecond)
	_, err = kv.Get(on("session:42"), &kvcachepb.GetRequest{Key: "session:42"})
	fmt.Fprintf(out, "get session:42 %v later: %v\n", ttl+100*time.Millisecond, protoserver.CodeOf(err))

	// Counters.
	for _, delta := range []int64{1, 41} {
		n, err := kv.Incr(on("hits"), &kvcachepb.IncrRequest{Key: "hits", Delta: delta})
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "incr hits by %d: %d\n", delta, n.Value)
	}
	if got, err = kv.Get(on("hits"), &kvcachepb.GetRequest{Key: "hits"}); err != nil {
		return err
	}
	fmt.Fprintf(out, "get hits: %q\n", got.Value)
	n, err := kv.Incr(on("stock"), &kvcachepb.IncrRequest{Key: "stock", Delta: -3})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "incr stock (missing, starts at 0) by -3: %d\n", n.Value)
	_, err = kv.Incr(on("greeting"), &kvcachepb.IncrRequest{Key: "greeting", Delta: 1})
	fmt.Fprintln(out, "incr greeting (not a number):", protoserver.CodeOf(err))

	// Delete.
	for range 2 {
		del, err := kv.Delete(on("greeting"), &kvcachepb.DeleteRequest{Key: "greeting"})
		if err != nil {
			return err
		}
		fmt.Fprintln(out, "delete greeting: existed", del.Existed)
	}
	_, err = kv.Get(on("greeting"), &kvcachepb.GetRequest{Key: "greeting"})
	fmt.Fprintln(out, "get greeting:", protoserver.CodeOf(err))

	// Sharding: every response names its server. Which server a key hashes
	// to depends on the addresses, which change from run to run, so the
	// demo prints what holds on every run.
	const nkeys = 60
	placed := make(map[string]string) // key → server
	perServer := make(map[string]int)
	stable := true
	for i := 1; i <= nkeys; i++ {
		key := fmt.Sprintf("user:%d", i)
		set, err := kv.Set(on(key), &kvcachepb.SetRequest{Key: key, Value: []byte(fmt.Sprintf("profile %d", i))})
		if err != nil {
			return err
		}
		placed[key] = set.Server
		perServer[set.Server]++
		for range 3 {
			got, err := kv.Get(on(key), &kvcachepb.GetRequest{Key: key})
			if err != nil {
				return err
			}
			stable = stable && got.Server == set.Server
		}
	}
	fmt.Fprintf(out, "%d keys user:1..user:%d over 3 servers: every server holds some: %t\n", nkeys, nkeys, len(perServer) == 3)
	fmt.Fprintln(out, "each key read 3 times, always from the server it was set on:", stable)

	if err := demoChannels(ctx, out, kv, addrs, nodes); err != nil {
		return err
	}

	// A graceful restart of cache-3, which keeps a snapshot.
	n3 := nodes[2]
	var on3 []string
	for key, srv := range placed {
		if srv == "cache-3" {
			on3 = append(on3, key)
		}
	}
	if err := n3.stop(ctx); err != nil {
		return err
	}
	_, err = os.Stat(n3.snapshot)
	fmt.Fprintln(out, "cache-3 shut down gracefully; snapshot written:", err == nil)
	if err := waitFor(ctx, events, n3.addr, client.Disconnected); err != nil {
		return err
	}
	_, err = kv.Get(on(on3[0]), &kvcachepb.GetRequest{Key: on3[0]})
	fmt.Fprintln(out, "while cache-3 is down its keys hash to another server: get:", protoserver.CodeOf(err))
	if nodes[2], err = startNode("cache-3", n3.addr, nodeOptions{snapshot: n3.snapshot, retain: DefaultRetain}, logger); err != nil {
		return err
	}
	if err := waitFor(ctx, events, n3.addr, client.Reconnected); err != nil {
		return err
	}
	back := true
	for _, key := range on3 {
		got, err := kv.Get(on(key), &kvcachepb.GetRequest{Key: key})
		back = back && err == nil && got.Server == "cache-3" && strings.HasPrefix(string(got.Value), "profile ")
	}
	fmt.Fprintln(out, "cache-3 restarted on its address from the snapshot; every key it held is back:", back)
	return nil
}

// demoChannels shows Publish and Subscribe: a listener the server pushes
// messages to, its reconnection from its cursor, and a cursor older than
// the retained window.
func demoChannels(ctx context.Context, out io.Writer, kv kvcachepb.CacheClient, addrs []string, nodes []*node) error {
	on := func(key string) context.Context { return client.WithKey(ctx, key) }
	// The listener subscribes, catches up from its cursor with the
	// answer, and is then pushed every new message on that connection:
	// nothing polls. It has a client of its own, to disconnect it.
	listener := func(cursor uint64, until uint64, got chan<- string) (uint64, error) {
		pushed := make(chan *kvcachepb.Message, 16)
		lc, err := client.New(addrs, client.Config{
			Balancer: client.Rendezvous,
			OnNotify: func(n client.Notification) {
				if m, err := Pushed(n); err == nil {
					pushed <- m
				}
			},
		})
		if err != nil {
			return cursor, err
		}
		defer lc.Close()
		l := kvcachepb.NewCacheClient(protoserver.NewClient(lc, protoserver.ClientConfig{}))
		resp, err := l.Subscribe(on("deploys"), &kvcachepb.ListenRequest{Channel: "deploys", Cursor: cursor})
		if err != nil {
			return cursor, err
		}
		deliver := func(m *kvcachepb.Message) {
			if m.Seq > cursor { // a message both in the answer and pushed comes once
				got <- fmt.Sprintf("#%d %s", m.Seq, m.Payload)
				cursor = m.Seq
			}
		}
		for _, m := range resp.Messages {
			deliver(m)
		}
		for cursor < until {
			select {
			case m := <-pushed:
				deliver(m)
			case <-time.After(5 * time.Second):
				return cursor, errors.New("nothing pushed")
			}
		}
		return cursor, nil
	}
	publish := func(payloads ...string) error {
		for _, p := range payloads {
			if _, err := kv.Publish(on("deploys"), &kvcachepb.PublishRequest{Channel: "deploys", Payload: []byte(p)}); err != nil {
				return err
			}
		}
		return nil
	}
	subscribed := func() int {
		w := 0
		for _, n := range nodes {
			w += n.subs.Listeners("deploys")
		}
		return w
	}

	got := make(chan string, 10)
	done := make(chan error, 1)
	var cursor uint64
	go func() {
		var err error
		cursor, err = listener(0, 3, got)
		done <- err
	}()
	// Publish once the listener has subscribed, to show the push.
	for i := 0; i < 500 && subscribed() == 0; i++ {
		time.Sleep(10 * time.Millisecond)
	}
	fmt.Fprintln(out, `listener subscribes to channel "deploys" from cursor 0, to be pushed its messages; subscribed:`, subscribed() == 1)
	if err := publish("build started", "tests passed", "deployed"); err != nil {
		return err
	}
	for range 3 {
		fmt.Fprintln(out, "listener got", <-got)
	}
	if err := <-done; err != nil {
		return err
	}
	fmt.Fprintln(out, "listener disconnects at cursor", cursor)
	if err := publish("rollback started", "rollback done"); err != nil {
		return err
	}
	fmt.Fprintln(out, "published #4 and #5 while it was away")
	go func() {
		var err error
		cursor, err = listener(cursor, 5, got)
		done <- err
	}()
	for range 2 {
		fmt.Fprintln(out, "listener, reconnected from cursor 3, got", <-got)
	}
	if err := <-done; err != nil {
		return err
	}

	// A cursor that fell out of the retained window.
	for i := 1; i <= DefaultRetain+5; i++ {
		if _, err := kv.Publish(on("metrics"), &kvcachepb.PublishRequest{Channel: "metrics", Payload: fmt.Appendf(nil, "sample %d", i)}); err != nil {
			return err
		}
	}
	resp, err := kv.Listen(on("metrics"), &kvcachepb.ListenRequest{Channel: "metrics", Cursor: 0})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "published %d messages on \"metrics\", which keeps %d; listen from cursor 0: missed %d, first_available %d, got %d (#%d..#%d), next cursor %d\n",
		DefaultRetain+5, DefaultRetain, resp.Missed, resp.FirstAvailable, len(resp.Messages), resp.Messages[0].Seq, resp.Messages[len(resp.Messages)-1].Seq, resp.Cursor)
	return nil
}

// waitFor waits for the client to report state for addr.
func waitFor(ctx context.Context, events <-chan client.StateEvent, addr string, state client.State) error {
	for {
		select {
		case ev := <-events:
			if ev.Addr == addr && ev.State == state {
				return nil
			}
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s to be %v: %w", addr, state, ctx.Err())
		}
	}
}
