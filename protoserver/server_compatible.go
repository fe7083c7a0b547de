package protoserver

import (
	"context"
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/tcpez/tcpez/server"
	"github.com/tcpez/tcpez/span"
)

// CompatibleConfig holds the settings of a Compatible handler. The zero
// value of every field means its default.
type CompatibleConfig struct {
	// SpanTimings makes the handler time each request's steps on its
	// span, as the original tcpez ProtoServer did: "pb.parse" (decoding
	// the request), "pb.response" (the handler) and "pb.encode" (encoding
	// the answer). They reach the server's stats and request logs. Off by
	// default: an untouched span costs nothing.
	SpanTimings bool
}

// Compatible returns a server.Handler for compatible mode, which is the
// original tcpez ProtoServer: every request frame is one encoded Req
// message and every answer frame one encoded Resp, with no envelope, so
// existing ProtoServer clients keep working.
//
// fn gets the decoded request. A request that does not decode is not given
// to fn; like an error from fn (or a panic), it is answered as the server
// answers handler errors: on a v1 connection, by default, by closing it
// after the answers before it, which is what the original clients expect;
// on a multiplexed one, by an error frame for that call. A nil answer is
// sent as an empty message.
func Compatible[Req, Resp any, PReq interface {
	*Req
	proto.Message
}, PResp interface {
	*Resp
	proto.Message
}](fn func(ctx context.Context, req PReq, sp *span.Span) (PResp, error), cfg CompatibleConfig) server.Handler {
	return &compatible[Req, Resp, PReq, PResp]{fn: fn, cfg: cfg}
}

type compatible[Req, Resp any, PReq interface {
	*Req
	proto.Message
}, PResp interface {
	*Resp
	proto.Message
}] struct {
	fn  func(context.Context, PReq, *span.Span) (PResp, error)
	cfg CompatibleConfig
}

func (h *compatible[Req, Resp, PReq, PResp]) Respond(ctx context.Context, b []byte, sp *span.Span) ([]byte, error) {
	return h.RespondAppend(ctx, nil, b, sp)
}

// RespondAppend encodes the answer straight into dst, a buffer the
// connection reuses (see server.AppendHandler).
func (h *compatible[Req, Resp, PReq, PResp]) RespondAppend(ctx context.Context, dst, b []byte, sp *span.Span) ([]byte, error) {
	out, _, err := h.respond(ctx, dst, b, sp, false)
	return out, err
}

// RespondTail is RespondAppend leaving the bytes of a large answer's
// biggest field out of it, as its tail, for the server to send from where
// they lie (see server.TailHandler).
func (h *compatible[Req, Resp, PReq, PResp]) RespondTail(ctx context.Context, dst, b []byte, sp *span.Span) (head, tail []byte, err error) {
	return h.respond(ctx, dst, b, sp, true)
}

// respond answers b; with split set, a large answer may end with a tail.
// The request is a new message, so nothing of it is reused before the
// tail is written.
func (h *compatible[Req, Resp, PReq, PResp]) respond(ctx context.Context, dst, b []byte, sp *span.Span, split bool) (head, tail []byte, err error) {
	timed := h.cfg.SpanTimings
	if timed {
		sp.Start("pb.parse")
	}
	req := PReq(new(Req))
	if err := unmarshalNew(b, req); err != nil {
		return nil, nil, fmt.Errorf("tcpez/protoserver: undecodable %s request: %w", req.ProtoReflect().Descriptor().FullName(), err)
	}
	if timed {
		sp.Finish("pb.parse")
		sp.Start("pb.response")
	}
	resp, err := h.fn(ctx, req, sp)
	if timed {
		sp.Finish("pb.response")
	}
	if err != nil {
		return nil, nil, err
	}
	if resp == nil {
		return dst, nil, nil
	}
	if timed {
		sp.Start("pb.encode")
		defer sp.Finish("pb.encode")
	}
	if head, tail, err = appendMaybeSplit(dst, resp, split); err != nil {
		return nil, nil, fmt.Errorf("tcpez/protoserver: cannot encode the %s answer: %w", resp.ProtoReflect().Descriptor().FullName(), err)
	}
	return head, tail, nil
}
