package protoserver

import (
	"context"
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/tcpez/tcpez/client"
)

// CompatibleClient is the typed client of a compatible-mode server (see
// Compatible) or of an original tcpez ProtoServer: each request frame is an
// encoded Req and each answer an encoded Resp. Errors are those of
// client.Client, or of encoding and decoding. A request the server fails
// is a *client.ServerError (client.ErrServer) on a multiplexed
// connection, the default with a tcpez server; a v1 server, such as the
// original ProtoServer or a Compatible server with V1Only, closes the
// connection instead, which the call sees as client.ErrConnLost.
type CompatibleClient[Req, Resp any] struct {
	c *client.Client
}

// NewCompatibleClient returns a CompatibleClient over c; name the message
// types, as in NewCompatibleClient[pb.Request, pb.Response](c).
func NewCompatibleClient[Req, Resp any, PReq interface {
	*Req
	proto.Message
}, PResp interface {
	*Resp
	proto.Message
}](c *client.Client) *CompatibleClient[Req, Resp] {
	return &CompatibleClient[Req, Resp]{c: c}
}

// The constructor's constraints guarantee these conversions.
func reqMessage[Req any](req *Req) proto.Message { return any(req).(proto.Message) }

func newResp[Resp any]() (*Resp, proto.Message) {
	r := new(Resp)
	return r, any(r).(proto.Message)
}

// Call sends req and returns the answer.
func (c *CompatibleClient[Req, Resp]) Call(ctx context.Context, req *Req) (*Resp, error) {
	bufs := getBuffers()
	defer putBuffers(bufs)
	m := reqMessage(req)
	b, tail, err := appendMaybeSplit(bufs.req[:0], m, true)
	bufs.req = b
	if err != nil {
		return nil, encodeError(m, err)
	}
	ans, err := c.c.CallAppendTail(ctx, bufs.ans[:0], b, tail)
	bufs.ans = ans
	if err != nil {
		return nil, err
	}
	resp, msg := newResp[Resp]()
	if err := decodeCompatible(ans, msg); err != nil {
		return nil, err
	}
	return resp, nil
}

// Go sends req and returns the call's future at once.
func (c *CompatibleClient[Req, Resp]) Go(ctx context.Context, req *Req) *Future[Resp] {
	f := &Future[Resp]{}
	f.resp, f.msg = newResp[Resp]()
	bufs := getBuffers()
	b, err := encodeCompatible(bufs.req[:0], req)
	f.send(ctx, c.c, bufs, b, err)
	return f
}

// Pipeline returns an empty pipeline.
func (c *CompatibleClient[Req, Resp]) Pipeline() *CompatiblePipeline[Req, Resp] {
	return &CompatiblePipeline[Req, Resp]{p: c.c.Pipeline()}
}

// CompatiblePipeline collects compatible-mode requests and sends them as one
// batch. Requests are encoded by Send, so they may be reused at once. It is
// not safe for concurrent use; it can be reused after Flush.
type CompatiblePipeline[Req, Resp any] struct {
	p       *client.Pipeline
	buf     []byte
	futures []*Future[Resp]
}

// Enqueue adds req to the batch and returns its future, which completes when
// Flush returns.
func (p *CompatiblePipeline[Req, Resp]) Enqueue(req *Req) *Future[Resp] {
	f := &Future[Resp]{}
	f.resp, f.msg = newResp[Resp]()
	f.start()
	b, err := encodeCompatible(p.buf[:0], req)
	p.buf = b
	if err != nil {
		f.resolve(err)
		return f
	}
	p.p.Enqueue(b)
	p.futures = append(p.futures, f)
	return f
}

// Len is the number of requests waiting for Flush.
func (p *CompatiblePipeline[Req, Resp]) Len() int { return p.p.Len() }

// Flush sends the requests as one batch and completes their futures. It
// returns the batch's error, which every future then has too.
func (p *CompatiblePipeline[Req, Resp]) Flush(ctx context.Context) error {
	futures := p.futures
	defer func() {
		clear(p.futures)
		p.futures = p.futures[:0]
		if cap(p.buf) > maxKeptBuffer {
			p.buf = nil
		}
	}()
	answers, err := p.p.Flush(ctx)
	for i, f := range futures {
		if err != nil {
			f.resolve(err)
		} else {
			f.resolve(decodeCompatible(answers[i], f.msg))
		}
	}
	return err
}

func encodeCompatible[Req any](b []byte, req *Req) ([]byte, error) {
	m := reqMessage(req)
	b, err := marshalAppend(b, m)
	if err != nil {
		return b, encodeError(m, err)
	}
	return b, nil
}

func encodeError(m proto.Message, err error) error {
	return fmt.Errorf("tcpez/protoserver: cannot encode the %s request: %w", m.ProtoReflect().Descriptor().FullName(), err)
}

// decodeCompatible decodes an answer into resp, a new message.
func decodeCompatible(ans []byte, resp proto.Message) error {
	if err := unmarshalNew(ans, resp); err != nil {
		return fmt.Errorf("tcpez/protoserver: undecodable %s answer: %w", resp.ProtoReflect().Descriptor().FullName(), err)
	}
	return nil
}
