package main

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/tcpez/tcpez/client"
	"github.com/tcpez/tcpez/pubsub"
	"github.com/tcpez/tcpez/server"

	"github.com/tcpez/tcpez/examples/kvcache/kvcachepb"
	"github.com/tcpez/tcpez/protoserver"
	"github.com/tcpez/tcpez/span"
)

const (
	maxKeyLen          = 250 // as memcached
	defaultListenMax   = 100
	maxListenMax       = 1000
	maxListenWait      = time.Minute
	maxListenWaitAhead = 250 * time.Millisecond
)

// cache implements kvcachepb.CacheServer over a Store. id names the server
// in every response.
type cache struct {
	id    string
	store *Store
	// subs holds the connections subscribed to each channel. pubMu makes
	// a message's seq and its push one step, so that every subscriber
	// gets a channel's messages in seq order.
	subs  *pubsub.Hub
	pubMu sync.Mutex
}

func checkKey(key string) error {
	switch {
	case key == "":
		return protoserver.Errorf(protoserver.InvalidArgument, "empty key")
	case len(key) > maxKeyLen:
		return protoserver.Errorf(protoserver.InvalidArgument, "key of %d bytes, over %d", len(key), maxKeyLen)
	}
	return nil
}

func ttlOf(ms int64) (time.Duration, error) {
	if ms < 0 || ms > int64(100*365*24*time.Hour/time.Millisecond) {
		return 0, protoserver.Errorf(protoserver.InvalidArgument, "ttl_ms %d out of range", ms)
	}
	return time.Duration(ms) * time.Millisecond, nil
}

func (c *cache) Get(_ context.Context, req *kvcachepb.GetRequest, _ *span.Span) (*kvcachepb.GetResponse, error) {
	if err := checkKey(req.Key); err != nil {
		return nil, err
	}
	v, ttl, ok := c.store.Get(req.Key)
	if !ok {
		return nil, protoserver.Errorf(protoserver.NotFound, "no key %q on %s", req.Key, c.id)
	}
	return &kvcachepb.GetResponse{Value: v, TtlMs: ttl.Milliseconds(), Server: c.id}, nil
}

func (c *cache) Set(_ context.Context, req *kvcachepb.SetRequest, _ *span.Span) (*kvcachepb.SetResponse, error) {
	if err := checkKey(req.Key); err != nil {
		return nil, err
	}
	ttl, err := ttlOf(req.TtlMs)
	if err != nil {
		return nil, err
	}
	return &kvcachepb.SetResponse{Replaced: c.store.Set(req.Key, req.Value, ttl), Server: c.id}, nil
}

func (c *cache) Delete(_ context.Context, req *kvcachepb.DeleteRequest, _ *span.Span) (*kvcachepb.DeleteResponse, error) {
	if err := checkKey(req.Key); err != nil {
		return nil, err
	}
	return &kvcachepb.DeleteResponse{Existed: c.store.Delete(req.Key), Server: c.id}, nil
}

func (c *cache) Incr(_ context.Context, req *kvcachepb.IncrRequest, _ *span.Span) (*kvcachepb.IncrResponse, error) {
	if err := checkKey(req.Key); err != nil {
		return nil, err
	}
	ttl, err := ttlOf(req.TtlMs)
	if err != nil {
		return nil, err
	}
	n, err := c.store.Incr(req.Key, req.Delta, ttl)
	if err != nil {
		return nil, err
	}
	return &kvcachepb.IncrResponse{Value: n, Server: c.id}, nil
}

func (c *cache) Publish(_ context.Context, req *kvcachepb.PublishRequest, _ *span.Span) (*kvcachepb.PublishResponse, error) {
	if req.Channel == "" {
		return nil, protoserver.Errorf(protoserver.InvalidArgument, "empty channel name")
	}
	c.pubMu.Lock()
	defer c.pubMu.Unlock()
	seq := c.store.Publish(req.Channel, req.Payload)
	if c.subs.Listeners(req.Channel) > 0 {
		m, err := proto.Marshal(&kvcachepb.Message{Seq: seq, Payload: req.Payload, Channel: req.Channel})
		if err != nil {
			return nil, err
		}
		c.subs.Publish(req.Channel, m)
	}
	return &kvcachepb.PublishResponse{Seq: seq, Server: c.id}, nil
}

// Subscribe subscribes the caller's connection to the channel, then
// answers with what it missed after its cursor; see kvcache.proto.
func (c *cache) Subscribe(ctx context.Context, req *kvcachepb.ListenRequest, sp *span.Span) (*kvcachepb.ListenResponse, error) {
	if req.Channel == "" || strings.ContainsRune(req.Channel, ' ') {
		return nil, protoserver.Errorf(protoserver.InvalidArgument, "channel name %q: empty or with a space", req.Channel)
	}
	r, ok := server.RemoteFromContext(ctx)
	if !ok {
		return nil, protoserver.Errorf(protoserver.FailedPrecondition, "Subscribe needs the multiplexed mode, version 2; use Listen")
	}
	c.subs.Listen(r, req.Channel)
	return c.Listen(ctx, &kvcachepb.ListenRequest{Channel: req.Channel, Cursor: req.Cursor, MaxMessages: req.MaxMessages}, sp)
}

// Pushed decodes a message Subscribe pushed.
func Pushed(n client.Notification) (*kvcachepb.Message, error) {
	_, b, _ := bytes.Cut(n.Payload, []byte(" "))
	m := new(kvcachepb.Message)
	return m, proto.Unmarshal(b, m)
}

func (c *cache) Listen(ctx context.Context, req *kvcachepb.ListenRequest, sp *span.Span) (*kvcachepb.ListenResponse, error) {
	if req.Channel == "" {
		return nil, protoserver.Errorf(protoserver.InvalidArgument, "empty channel name")
	}
	limit := int(req.MaxMessages)
	switch {
	case limit == 0:
		limit = defaultListenMax
	case limit > maxListenMax:
		limit = maxListenMax
	}
	resp, err := c.store.Listen(ctx, req.Channel, req.Cursor, limit, listenWait(ctx, req.MaxWaitMs))
	if err != nil {
		return nil, err
	}
	sp.Add("messages", int64(len(resp.Messages)))
	resp.Server = c.id
	return resp, nil
}

// listenWait is how long a Listen may wait: max_wait_ms, at most
// maxListenWait, and ending a little before the caller's deadline — a tenth
// of the time left, at most maxListenWaitAhead — so that the empty answer
// reaches the caller in time rather than a DeadlineExceeded.
func listenWait(ctx context.Context, ms int64) time.Duration {
	if ms <= 0 {
		return 0
	}
	wait := maxListenWait
	if ms < maxListenWait.Milliseconds() {
		wait = time.Duration(ms) * time.Millisecond
	}
	if dl, ok := ctx.Deadline(); ok {
		left := time.Until(dl)
		wait = min(wait, left-min(left/10, maxListenWaitAhead))
	}
	return max(wait, 0)
}
