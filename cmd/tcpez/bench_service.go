package main

import (
	"bytes"
	"context"

	"github.com/sirupsen/logrus"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/dynamicpb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/tcpez/tcpez/protoserver"
	"github.com/tcpez/tcpez/server"
	"github.com/tcpez/tcpez/span"
)

// echoMethod is the service-mode method that --mode service calls: an echo
// of a BytesValue, so that the bench needs no generated code and any
// service registering it can be loaded.
const echoMethod = "tcpez.bench/Echo"

// demoMethod is the demo service's JSON-friendly method: it answers any
// google.protobuf.Struct (any JSON object) with itself.
const demoMethod = "/tcpez.demo.Demo/Echo"

// demoService is the service of "tcpez serve --mode service" and of the
// embedded server of "tcpez bench --mode service": echoMethod, demoMethod,
// the health method every service has, and reflection, so that "tcpez
// call" can find its methods.
func demoService(logger logrus.FieldLogger) server.Handler {
	svc := protoserver.NewService(protoserver.ServiceConfig{Logger: logger})
	svc.Handle(echoMethod, protoserver.Method(
		func(_ context.Context, req *wrapperspb.BytesValue, _ *span.Span) (*wrapperspb.BytesValue, error) {
			return req, nil
		}))
	svc.Handle(demoMethod, protoserver.Method(
		func(_ context.Context, req *structpb.Struct, _ *span.Span) (*structpb.Struct, error) {
			return req, nil
		}))
	return svc.Handle(protoserver.ReflectionMethod, protoserver.ReflectionHandler(svc))
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

// anyCall is the call of "tcpez bench --method": one request, sent by
// every worker (a message is safe to encode concurrently).
type anyCall struct {
	m   method
	req proto.Message
}

// loadedCall resolves o.method and decodes its --data request.
func loadedCall(ctx context.Context, svc *protoserver.Client, o benchOptions) (*anyCall, error) {
	ms, err := serviceCall{protoset: o.protoset}.methods(ctx, svc)
	if err != nil {
		return nil, err
	}
	m, err := ms.lookup(o.method)
	if err != nil {
		return nil, err
	}
	req, err := jsonRequest(m, []byte(o.data))
	if err != nil {
		return nil, err
	}
	return &anyCall{m: m, req: req}, nil
}

// singleAny makes one call of --method. Its answer is decoded, so that
// the cost of a real client is measured, and dropped.
func (w *worker) singleAny(svc *protoserver.Client, c *anyCall) error {
	if w.anyResp == nil {
		w.anyResp = dynamicpb.NewMessage(c.m.resp)
	}
	return svc.Call(w.ctx, c.m.name, c.req, w.anyResp)
}
