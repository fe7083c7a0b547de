package middleware

import (
	"context"
	"crypto/subtle"
	"errors"

	"google.golang.org/protobuf/proto"

	"github.com/tcpez/tcpez/protoserver"
	"github.com/tcpez/tcpez/span"
)

// TokenKey is the metadata key that carries a call's token.
const TokenKey = "authorization"

// Auth returns a server interceptor that admits a call only if check
// accepts the token the caller sent under TokenKey ("" when none).
// check returns the context the method runs with, for example one that
// carries the caller's identity (nil keeps ctx), or an error: a *protoserver.Status, or
// anything else, which is answered Unauthenticated. It does not guard
// streaming methods: give AuthStream(check) too.
func Auth(check func(ctx context.Context, token string) (context.Context, error)) protoserver.Interceptor {
	return func(ctx context.Context, info *protoserver.MethodInfo, req proto.Message, sp *span.Span, next protoserver.Next) (proto.Message, error) {
		ctx, err := authorize(ctx, check)
		if err != nil {
			return nil, err
		}
		return next(ctx, req, sp)
	}
}

// AuthStream is Auth for streaming methods
// (protoserver.ServiceConfig.StreamInterceptors): a stream opens only if
// check accepts the token of its opening, and the method's
// stream.Context() is the context check returns.
func AuthStream(check func(ctx context.Context, token string) (context.Context, error)) protoserver.StreamInterceptor {
	return func(ctx context.Context, info *protoserver.MethodInfo, ms protoserver.MessageStream, next protoserver.StreamNext) error {
		ctx, err := authorize(ctx, check)
		if err != nil {
			return err
		}
		return next(ctx, ms)
	}
}

// authorize runs check on the caller's token and returns the context the
// method runs with.
func authorize(ctx context.Context, check func(ctx context.Context, token string) (context.Context, error)) (context.Context, error) {
	nctx, err := check(ctx, protoserver.IncomingMetadata(ctx)[TokenKey])
	if err != nil {
		if _, ok := errors.AsType[*protoserver.Status](err); !ok {
			err = protoserver.Errorf(protoserver.Unauthenticated, "%v", err)
		}
		return nil, err
	}
	if nctx == nil {
		return ctx, nil
	}
	return nctx, nil
}

// TokenAuth returns a server interceptor that admits only calls carrying
// one of tokens; others are answered Unauthenticated. Tokens are compared
// in constant time. It does not guard streaming methods: give
// TokenAuthStream(tokens...) too.
func TokenAuth(tokens ...string) protoserver.Interceptor { return Auth(tokenCheck(tokens)) }

// TokenAuthStream is TokenAuth for streaming methods
// (protoserver.ServiceConfig.StreamInterceptors).
func TokenAuthStream(tokens ...string) protoserver.StreamInterceptor {
	return AuthStream(tokenCheck(tokens))
}

// tokenCheck is the check of TokenAuth.
func tokenCheck(tokens []string) func(ctx context.Context, token string) (context.Context, error) {
	return func(ctx context.Context, token string) (context.Context, error) {
		if token == "" {
			return nil, protoserver.Errorf(protoserver.Unauthenticated, "no token")
		}
		ok := 0
		for _, t := range tokens {
			ok |= subtle.ConstantTimeCompare([]byte(token), []byte(t))
		}
		if ok == 0 {
			return nil, protoserver.Errorf(protoserver.Unauthenticated, "invalid token")
		}
		return ctx, nil
	}
}

// ClientToken returns a client interceptor that sends token with every
// call, under TokenKey; ClientTokenStream sends it with streams.
func ClientToken(token string) protoserver.ClientInterceptor {
	return func(ctx context.Context, method string, req, resp proto.Message, next protoserver.Invoker) error {
		return next(protoserver.WithOutgoingMetadata(ctx, TokenKey, token), method, req, resp)
	}
}

// ClientTokenStream is ClientToken for streams
// (protoserver.ClientConfig.StreamInterceptors): the token travels in
// every stream's opening.
func ClientTokenStream(token string) protoserver.ClientStreamInterceptor {
	return func(ctx context.Context, method string, req proto.Message, next protoserver.Streamer) (protoserver.ClientMessageStream, error) {
		return next(protoserver.WithOutgoingMetadata(ctx, TokenKey, token), method, req)
	}
}
