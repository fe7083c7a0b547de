package middleware

import (
	"context"
	"strings"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/tcpez/tcpez/protoserver"
	"github.com/tcpez/tcpez/span"
	"github.com/tcpez/tcpez/stats"
)

// Metrics returns a server interceptor that records every call to rec:
//
//	rpc.server.calls                 count, every call
//	rpc.server.call                  timing, every call
//	rpc.server.errors                count, failed calls
//	rpc.server.errors.<Code>         count, failed calls by code
//	rpc.server.<method>.calls        count, per method
//	rpc.server.<method>              timing, per method
//	rpc.server.<method>.errors       count, per method
//
// <method> is the method name made fit for statsd: "/pkg.v1.Svc/Get"
// becomes "pkg_v1_Svc.Get". Calls refused before reaching a method (an
// unknown method, an undecodable request, overload, draining) are not
// counted here; the server's own request metrics count them.
// MetricsStream records streams.
func Metrics(rec stats.Recorder) protoserver.Interceptor {
	m := newMeter(rec, "rpc.server")
	return func(ctx context.Context, info *protoserver.MethodInfo, req proto.Message, sp *span.Span, next protoserver.Next) (proto.Message, error) {
		start := time.Now()
		resp, err := next(ctx, req, sp)
		m.record(info.Name, time.Since(start), err)
		return resp, err
	}
}

// MetricsStream returns a stream interceptor that records every
// streaming method to rec under the names of Metrics: a stream counts as
// one call, timed from its opening until the method returns. Give it
// the same rec as Metrics.
func MetricsStream(rec stats.Recorder) protoserver.StreamInterceptor {
	m := newMeter(rec, "rpc.server")
	return func(ctx context.Context, info *protoserver.MethodInfo, ms protoserver.MessageStream, next protoserver.StreamNext) error {
		start := time.Now()
		err := next(ctx, ms)
		m.record(info.Name, time.Since(start), err)
		return err
	}
}

// ClientMetrics returns a client interceptor that records every call to
// rec, under the names of Metrics with "rpc.client" for "rpc.server".
// Calls that got no answer count with the client-made code, such as
// Unavailable or DeadlineExceeded. ClientMetricsStream records streams.
func ClientMetrics(rec stats.Recorder) protoserver.ClientInterceptor {
	m := newMeter(rec, "rpc.client")
	return func(ctx context.Context, method string, req, resp proto.Message, next protoserver.Invoker) error {
		start := time.Now()
		err := next(ctx, method, req, resp)
		m.record(method, time.Since(start), err)
		return err
	}
}

// ClientMetricsStream returns a client stream interceptor that records
// every stream to rec under the names of ClientMetrics: a stream counts
// as one call, timed from its opening until it ends for the caller (see
// protoserver.OnClientStreamEnd).
func ClientMetricsStream(rec stats.Recorder) protoserver.ClientStreamInterceptor {
	m := newMeter(rec, "rpc.client")
	return func(ctx context.Context, method string, req proto.Message, next protoserver.Streamer) (protoserver.ClientMessageStream, error) {
		start := time.Now()
		ms, err := next(ctx, method, req)
		if err != nil {
			m.record(method, time.Since(start), err)
			return nil, err
		}
		return protoserver.OnClientStreamEnd(ctx, ms, func(err error) { m.record(method, time.Since(start), err) }), nil
	}
}

// meter records calls under names made once per method and code, so that
// a call builds no strings.
type meter struct {
	rec                 stats.Recorder
	prefix              string
	calls, call, errors string
	methods             sync.Map // method name -> *methodNames
	codes               [protoserver.Unauthenticated + 1]string
}

type methodNames struct{ calls, timing, errors string }

func newMeter(rec stats.Recorder, prefix string) *meter {
	if rec == nil {
		rec = stats.Nop{}
	}
	m := &meter{rec: rec, prefix: prefix, calls: prefix + ".calls", call: prefix + ".call", errors: prefix + ".errors"}
	for c := range m.codes {
		m.codes[c] = m.errors + "." + protoserver.Code(c).String()
	}
	return m
}

func (m *meter) record(method string, d time.Duration, err error) {
	n := m.names(method)
	m.rec.Count(m.calls, 1)
	m.rec.Timing(m.call, d)
	m.rec.Count(n.calls, 1)
	m.rec.Timing(n.timing, d)
	if err == nil {
		return
	}
	m.rec.Count(m.errors, 1)
	m.rec.Count(n.errors, 1)
	m.rec.Count(m.codeName(protoserver.CodeOf(err)), 1)
}

func (m *meter) names(method string) *methodNames {
	if n, ok := m.methods.Load(method); ok {
		return n.(*methodNames)
	}
	base := m.prefix + "." + MetricName(method)
	n, _ := m.methods.LoadOrStore(method, &methodNames{calls: base + ".calls", timing: base, errors: base + ".errors"})
	return n.(*methodNames)
}

func (m *meter) codeName(c protoserver.Code) string {
	if c >= 0 && int(c) < len(m.codes) {
		return m.codes[c]
	}
	return m.errors + "." + c.String()
}

// MetricName turns a method name into a statsd name: the leading slash
// goes, the package's dots become underscores and the slash before the
// method a dot, and any other character that statsd would misread becomes
// an underscore. "/pkg.v1.Svc/Get" becomes "pkg_v1_Svc.Get".
func MetricName(method string) string {
	method = strings.TrimPrefix(method, "/")
	return strings.Map(func(r rune) rune {
		switch {
		case r == '/':
			return '.'
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-':
			return r
		}
		return '_'
	}, method)
}
