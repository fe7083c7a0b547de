package protoserver_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/tcpez/tcpez/client"
	"github.com/tcpez/tcpez/examples/service/kvpb"
	"github.com/tcpez/tcpez/internal/testserver"
	"github.com/tcpez/tcpez/protoserver"
	"github.com/tcpez/tcpez/server"
	"github.com/tcpez/tcpez/span"
)

// clientKV is the KV service a client serves to its server.
type clientKV struct {
	kvpb.UnimplementedKVServer
}

func (clientKV) Get(ctx context.Context, req *kvpb.GetRequest, _ *span.Span) (*kvpb.GetResponse, error) {
	if _, ok := ctx.Deadline(); !ok {
		return nil, protoserver.Errorf(protoserver.FailedPrecondition, "no deadline came with the call")
	}
	if req.Key == "missing" {
		return nil, protoserver.Errorf(protoserver.NotFound, "no %s here", req.Key)
	}
	return &kvpb.GetResponse{Value: []byte("client has " + req.Key)}, nil
}

// askBack is a server handler that asks its client, through the generated
// KV client over the connection's Remote, for the key it was sent, and
// answers with the value, or the status's code and message.
func askBack(ctx context.Context, req []byte, _ *span.Span) ([]byte, error) {
	r, ok := server.RemoteFromContext(ctx)
	if !ok {
		return nil, errors.New("no remote")
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	kv := kvpb.NewKVClient(protoserver.NewRemoteClient(r, protoserver.ClientConfig{}))
	resp, err := kv.Get(ctx, &kvpb.GetRequest{Key: string(req)})
	if st, ok := errors.AsType[*protoserver.Status](err); ok {
		return []byte(st.Code.String() + ": " + st.Message), nil
	}
	if err != nil {
		return nil, err
	}
	return resp.Value, nil
}

// TestRemoteGeneratedClient: a server calls a typed service its client
// serves, with the generated client, inside a request's handler; statuses
// and deadlines flow as they do to a server.
func TestRemoteGeneratedClient(t *testing.T) {
	_, addr := testserver.Start(t, server.HandlerFunc(askBack), server.Config{})
	svc := protoserver.NewService(protoserver.ServiceConfig{})
	kvpb.RegisterKV(svc, clientKV{})
	c, err := client.New([]string{addr}, client.Config{Handler: svc})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	bare, err := client.New([]string{addr}, client.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer bare.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, tc := range []struct {
		c        *client.Client
		req, ans string
	}{
		{c, "apples", "client has apples"},
		{c, "missing", "NotFound: no missing here"},
		{bare, "apples", "Unimplemented: " + "tcpez: remote: no handler: no handler"},
	} {
		got, err := tc.c.Call(ctx, []byte(tc.req))
		if err != nil || string(got) != tc.ans {
			t.Errorf("%s: got %q, %v; want %q", tc.req, got, err, tc.ans)
		}
	}
}
