package protoserver

import (
	"context"
	"maps"

	"github.com/tcpez/tcpez/span"
)

// Metadata is a call's key-value metadata, such as credentials. It travels
// in the envelope's metadata map. Keys are case-sensitive.
type Metadata map[string]string

type (
	incomingKey struct{}
	outgoingKey struct{}
)

// outgoing is what a caller's context adds to the calls made with it.
type outgoing struct {
	spanID span.ID
	md     Metadata
}

func outgoingFrom(ctx context.Context) *outgoing {
	o, _ := ctx.Value(outgoingKey{}).(*outgoing)
	return o
}

// WithSpanID returns a context whose calls carry id as the caller's span
// id; the server's span for each call gets it as its parent id. Handlers
// need not call it: their context carries their span, whose id and trace
// id calls send by themselves. It overrides the parent id a span in ctx
// would give.
func WithSpanID(ctx context.Context, id span.ID) context.Context {
	var o outgoing
	if old := outgoingFrom(ctx); old != nil {
		o = *old
	}
	o.spanID = id
	return context.WithValue(ctx, outgoingKey{}, &o)
}

// WithOutgoingMetadata returns a context whose calls carry the metadata of
// ctx plus kv, which alternates keys and values; a key given again replaces
// the earlier value. It panics if kv has an odd length.
func WithOutgoingMetadata(ctx context.Context, kv ...string) context.Context {
	if len(kv)%2 != 0 {
		panic("tcpez/protoserver: WithOutgoingMetadata: odd number of arguments")
	}
	var o outgoing
	if old := outgoingFrom(ctx); old != nil {
		o = *old
	}
	md := make(Metadata, len(o.md)+len(kv)/2)
	maps.Copy(md, o.md)
	for i := 0; i < len(kv); i += 2 {
		md[kv[i]] = kv[i+1]
	}
	o.md = md
	return context.WithValue(ctx, outgoingKey{}, &o)
}

// OutgoingMetadata returns the metadata that calls made with ctx carry, nil
// if none. It must not be modified.
func OutgoingMetadata(ctx context.Context) Metadata {
	if o := outgoingFrom(ctx); o != nil {
		return o.md
	}
	return nil
}

// OutgoingSpanID returns the span id that calls made with ctx carry, 0 if
// none.
func OutgoingSpanID(ctx context.Context) span.ID {
	if o := outgoingFrom(ctx); o != nil {
		return o.spanID
	}
	return 0
}

// IncomingMetadata returns the metadata the caller sent, in a handler's or
// a server interceptor's context; nil if none. It must not be modified.
func IncomingMetadata(ctx context.Context) Metadata {
	md, _ := ctx.Value(incomingKey{}).(Metadata)
	return md
}
