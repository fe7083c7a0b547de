package main

import (
	"bytes"
	"context"

	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/tcpez/tcpez/protoserver"
	"github.com/tcpez/tcpez/server"
	"github.com/tcpez/tcpez/span"
)

// echoMethod is the service-mode method that --mode service calls: an echo
// of a BytesValue, so that the bench needs no generated code and any
// service registering it can be loaded.
const echoMethod = "tcpez.bench/Echo"

// echoService is the embedded server's handler in service mode.
func echoService() server.Handler {
	return protoserver.NewService(protoserver.ServiceConfig{}).Handle(echoMethod, protoserver.Method(
		func(_ context.Context, req *wrapperspb.BytesValue, _ *span.Span) (*wrapperspb.BytesValue, error) {
			return req, nil
		}))
}

// singleService makes one service-mode call; bad is 1 when its answer is
// wrong.
func (w *worker) singleService(svc *protoserver.Client) (bad int, err error) {
	w.fill(w.req, w.seq)
	w.seq++
	ans, err := protoserver.Call[wrapperspb.BytesValue](w.ctx, svc, echoMethod, &wrapperspb.BytesValue{Value: w.req})
	if err != nil {
		return 0, err
	}
	if !bytes.Equal(ans.Value, w.req) {
		return 1, nil
	}
	return 0, nil
}

// pipelineService sends n service-mode calls as one batch.
func (w *worker) pipelineService(p *protoserver.Pipeline, n int) (bad int, err error) {
	first := w.seq
	futures := make([]*protoserver.Future[wrapperspb.BytesValue], n)
	for i := range n {
		req := bytes.Clone(w.req)
		w.fill(req, first+uint64(i))
		futures[i] = protoserver.Enqueue[wrapperspb.BytesValue](p, echoMethod, &wrapperspb.BytesValue{Value: req})
	}
	w.seq += uint64(n)
	if err := p.Flush(w.ctx); err != nil {
		return 0, err
	}
	for i, f := range futures {
		ans, err := f.Wait()
		if err != nil {
			return 0, err
		}
		w.fill(w.want, first+uint64(i))
		if !bytes.Equal(ans.Value, w.want) {
			bad++
		}
	}
	return bad, nil
}
