package client

import "context"

type idempotentKey struct{}

// WithIdempotent marks the calls made with the returned context as safe to
// execute more than once. Such a call is retried (within MaxRetries and
// the context's deadline) even after its connection broke at a moment
// when the server may already have run it. Without the mark only calls
// whose request provably never left the process are retried, so a
// request is never duplicated behind the caller's back.
//
// Marking a long-lived parent context once costs nothing per call.
func WithIdempotent(ctx context.Context) context.Context {
	return context.WithValue(ctx, idempotentKey{}, true)
}

// IsIdempotent reports whether ctx was marked by WithIdempotent.
func IsIdempotent(ctx context.Context) bool {
	v, _ := ctx.Value(idempotentKey{}).(bool)
	return v
}
