package protoserver

import (
	"context"
	"time"

	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/tcpez/tcpez/client"
	"github.com/tcpez/tcpez/span"
)

// HealthMethod is the standard health method every Service answers: OK
// with an empty message while it serves, Unavailable once it drains, so
// that load balancers stop sending it calls before it goes away.
const HealthMethod = "/tcpez.v1.Health/Check"

// healthHandler answers HealthMethod. Draining is answered before any
// method runs, so serving is all this handler has to say.
var healthHandler = Method(func(context.Context, *emptypb.Empty, *span.Span) (*emptypb.Empty, error) {
	return &emptypb.Empty{}, nil
})

// HealthProbe returns a client.Probe that calls HealthMethod, for
// client.HealthCheck: an address is healthy while its service answers OK,
// and ejected when it answers anything else (draining, overloaded) or not
// at all.
func HealthProbe() client.Probe {
	return func(ctx context.Context, _ string, call func(context.Context, []byte) ([]byte, error)) error {
		// The probe's deadline travels with it, like any call's.
		var timeout int64
		if d, ok := ctx.Deadline(); ok {
			timeout = max(int64(time.Until(d)), 1)
		}
		req, err := appendRequest(nil, HealthMethod, &emptypb.Empty{}, 0, timeout, nil)
		if err != nil {
			return err
		}
		ans, err := call(ctx, req)
		if err != nil {
			return err
		}
		_, st, err := decodeResponse(ans)
		if err != nil {
			return err
		}
		if st != nil {
			return st
		}
		return nil
	}
}
