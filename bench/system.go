package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"path"
	"strings"

	"github.com/tcpez/tcpez/client"
	"github.com/tcpez/tcpez/internal/loopback"
)

// batchSize is the number of requests in one batch of the batching systems.
const batchSize = 64

// A system is one RPC stack under test: a server and one client of it, both
// in this process, on loopback. Start brings both up; NewCaller gives each
// load goroutine what it calls through (sharing the one client, or, for the
// raw loops, a connection of its own); Close tears everything down.
type system interface {
	Start() error
	NewCaller() (caller, error)
	Close()
}

// A caller makes calls for one goroutine.
type caller interface {
	// Call sends req — once, or batchSize times as one batch — checks that
	// every answer equals it, and returns the number of requests made.
	// req is the caller's own and may be reused when Call returns.
	Call(ctx context.Context, req []byte) (int, error)
	Close()
}

// An entry describes a system for the registry, the table and the chart.
type entry struct {
	name  string // as --only selects it
	title string // as the table shows it
	batch int    // requests per Call
	// perGoroutineConn: each goroutine has its own connection instead of
	// sharing one client.
	perGoroutineConn bool
	// yardstick: hand-written, no library; drawn dashed.
	yardstick bool
	// base names the system the "× base" column divides this one's req/s
	// by: the one its issue #15 target is set against. Empty: none.
	base string
	note string
	new  func() system
}

// Names of the systems the ratio columns divide by.
const (
	rawName  = "raw"
	grpcName = "grpc-unary"
)

// registry lists every system, in the order of the table.
var registry = []entry{
	{name: "tcpez", title: "tcpez Call", batch: 1, base: rawName,
		note: "byte layer, auto-pipelined `CallAppend` over v1, one client with 1 connection",
		new:  func() system { return &tcpezSystem{protocol: client.ProtocolV1} }},
	{name: "tcpez-mux", title: "tcpez Call mux", batch: 1, base: rawName,
		note: "byte layer, `CallAppend` over the multiplexed mode (call ids, answers in any order), one client with 1 connection",
		new:  func() system { return &tcpezSystem{protocol: client.ProtocolMux} }},
	{name: "tcpez-pipeline64", title: "tcpez Pipeline×64", batch: batchSize, base: "raw-batch64",
		note: "byte layer, explicit `Pipeline` of 64 requests per `FlushAppend` into the last batch's buffers, with the default `Protocol` (the multiplexed mode: a request frame per member), one client with 1 connection",
		new:  func() system { return &tcpezSystem{pipeline: true} }},
	{name: "tcpez-pipeline64-v1", title: "tcpez Pipeline×64 v1", batch: batchSize, base: "raw-batch64",
		note: "the same over v1 (`ProtocolV1`): one protocol batch of 64 frames",
		new:  func() system { return &tcpezSystem{pipeline: true, protocol: client.ProtocolV1} }},
	{name: "tcpez-conns4", title: "tcpez Call, 4 connections", batch: 1, base: rawName,
		note: "tcpez Call over v1 and a client with 4 connections (`ConnsPerAddr: 4`), which it balances calls over",
		new:  func() system { return &tcpezSystem{conns: 4, protocol: client.ProtocolV1} }},
	{name: "tcpez-service", title: "tcpez service", batch: 1, base: "tcpez-mux",
		note: "protobuf service mode (`protoserver`, code from protoc-gen-go-tcpez), one client with 1 connection; `RequestReuse` and `AliasRequestBytes` on the server, whose method fills the response the service reuses (a server's `UnaryInto`), each caller reusing its messages (the client's `UnaryInto`)",
		new:  func() system { return &tcpezServiceSystem{} }},
	{name: "tcpez-service-vt", title: "tcpez service (vtproto)", batch: 1, base: "tcpez-mux",
		note: "tcpez service with messages that carry planetscale/vtprotobuf's marshalling code, which protoserver uses instead of protobuf-go's reflection",
		new:  func() system { return &tcpezServiceSystem{vt: true} }},
	{name: grpcName, title: "gRPC unary", batch: 1,
		note: "grpc-go unary call, one `ClientConn`",
		new:  func() system { return &grpcSystem{} }},
	{name: "grpc-stream", title: "gRPC bidi stream", batch: 1,
		note: "grpc-go bidirectional stream, one per goroutine on one `ClientConn`, ping-pong",
		new:  func() system { return &grpcSystem{stream: true} }},
	{name: "netrpc", title: "net/rpc (gob)", batch: 1,
		note: "standard library net/rpc with gob, one `rpc.Client` (1 connection)",
		new:  func() system { return &netrpcSystem{} }},
	{name: "drpc", title: "DRPC unary", batch: 1,
		note: "storj.io/drpc unary call, one `drpcconn.Conn` (which runs one RPC at a time)",
		new:  func() system { return &drpcSystem{} }},
	{name: rawName, title: "raw loop", batch: 1, perGoroutineConn: true, yardstick: true,
		note: "hand-written length-prefix loop, one request in flight per connection, a connection per goroutine",
		new:  func() system { return &rawSystem{} }},
	{name: "raw-batch64", title: "raw loop batch×64", batch: batchSize, perGoroutineConn: true, yardstick: true,
		note: "the raw loop sending batches of 64 frames with one write (and answered with one write)",
		new:  func() system { return &rawSystem{batch: true} }},
	{name: "raw-pipelined", title: "raw pipelined loop", batch: 1, yardstick: true,
		note: "hand-written auto-pipelining over one shared connection: whoever finds no write under way writes every queued frame, one reader goroutine hands answers back in order; no timeouts, limits or recovery. The floor of the design `tcpez Call` uses",
		new:  func() system { return &rawPipelinedSystem{} }},
}

// selectSystems returns the entries whose names match one of the
// comma-separated glob patterns of only (all of them when only is empty).
func selectSystems(only string) ([]entry, error) {
	if strings.TrimSpace(only) == "" {
		return registry, nil
	}
	var pats []string
	for _, p := range strings.Split(only, ",") {
		if p = strings.TrimSpace(p); p != "" {
			if _, err := path.Match(p, ""); err != nil {
				return nil, fmt.Errorf("--only: bad pattern %q: %w", p, err)
			}
			pats = append(pats, p)
		}
	}
	var out []entry
	used := make(map[string]bool)
	for _, e := range registry {
		for _, p := range pats {
			if ok, _ := path.Match(p, e.name); ok {
				out = append(out, e)
				used[p] = true
				break
			}
		}
	}
	for _, p := range pats {
		if !used[p] {
			return nil, fmt.Errorf("--only: %q matches no system (have %s)", p, strings.Join(systemNames(), ", "))
		}
	}
	return out, nil
}

func systemNames() []string {
	names := make([]string, len(registry))
	for i, e := range registry {
		names[i] = e.name
	}
	return names
}

// errMismatch reports an answer that is not the request echoed.
var errMismatch = errors.New("answer differs from request")

func checkEcho(req, ans []byte) error {
	if !bytes.Equal(req, ans) {
		return fmt.Errorf("%w: sent %d bytes, got %d", errMismatch, len(req), len(ans))
	}
	return nil
}

// listen opens a loopback listener on a free port: every load of the
// benchmark stays on 127.0.0.1. Every system's sockets get the congestion
// control tcpez gives loopback connections (internal/loopback: Reno, not
// the host's default, which may pace them), so that no system is measured
// against another for a kernel setting.
func listen() (net.Listener, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err == nil {
		loopback.Listen(l)
	}
	return l, err
}

// dial connects to a benchmark's listener, as tcpez's client would.
func dial(addr string) (net.Conn, error) {
	return dialContext(context.Background(), addr)
}

// dialContext is dial within ctx, in the shape of grpc.WithContextDialer.
func dialContext(ctx context.Context, addr string) (net.Conn, error) {
	d := net.Dialer{Control: loopback.Control}
	return d.DialContext(ctx, "tcp", addr)
}

// maxPayload bounds the frames the hand-written servers accept.
const maxPayload = 16 << 20
