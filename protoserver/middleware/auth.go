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
// anything else, which is answered Unauthenticated.
func Auth(check func(ctx context.Context, token string) (context.Context, error)) protoserver.Interceptor {
	return func(ctx context.Context, info *protoserver.MethodInfo, req proto.Message, sp *span.Span, next protoserver.Next) (proto.Message, error) {
		nctx, err := check(ctx, protoserver.IncomingMetadata(ctx)[TokenKey])
		if err != nil {
			if _, ok := errors.AsType[*protoserver.Status](err); !ok {
				err = protoserver.Errorf(protoserver.Unauthenticated, "%v", err)
			}
			return nil, err
		}
		if nctx == nil {
			nctx = ctx
		}
		return next(nctx, req, sp)
	}
}

// TokenAuth returns a server interceptor that admits only calls carrying
// one of tokens; others are answered Unauthenticated. Tokens are compared
// in constant time.
func TokenAuth(tokens ...string) protoserver.Interceptor {
	return Auth(func(ctx context.Context, token string) (context.Context, error) {
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
	})
}

// ClientToken returns a client interceptor that sends token with every
// call, under TokenKey.
func ClientToken(token string) protoserver.ClientInterceptor {
	return func(ctx context.Context, method string, req, resp proto.Message, next protoserver.Invoker) error {
		return next(protoserver.WithOutgoingMetadata(ctx, TokenKey, token), method, req, resp)
	}
}
