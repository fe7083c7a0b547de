package main

import (
	"context"
	"time"

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
	return &kvcachepb.PublishResponse{Seq: c.store.Publish(req.Channel, req.Payload), Server: c.id}, nil
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
