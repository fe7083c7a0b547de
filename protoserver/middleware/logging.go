package middleware

import (
	"context"
	"time"

	"github.com/sirupsen/logrus"
	"google.golang.org/protobuf/proto"

	"github.com/tcpez/tcpez/protoserver"
	"github.com/tcpez/tcpez/span"
)

// Logging returns a server interceptor that logs every call when it ends,
// with its method, code, duration and span: successful calls at debug
// level, calls that failed because of the server (Unknown, Internal,
// DataLoss) at error level, and other failures at warn level.
// LoggingStream logs streams.
func Logging(logger logrus.FieldLogger) protoserver.Interceptor {
	return func(ctx context.Context, info *protoserver.MethodInfo, req proto.Message, sp *span.Span, next protoserver.Next) (proto.Message, error) {
		start := time.Now()
		resp, err := next(ctx, req, sp)
		logEnd(logger, "tcpez: call", start, err, func() logrus.Fields {
			return sp.Fields(logrus.Fields{"method": info.Name})
		})
		return resp, err
	}
}

// LoggingStream returns a stream interceptor that logs every streaming
// method when it returns, as Logging logs calls, with its kind under
// "stream" (client, server or bidi).
func LoggingStream(logger logrus.FieldLogger) protoserver.StreamInterceptor {
	return func(ctx context.Context, info *protoserver.MethodInfo, ms protoserver.MessageStream, next protoserver.StreamNext) error {
		start := time.Now()
		err := next(ctx, ms)
		logEnd(logger, "tcpez: stream", start, err, func() logrus.Fields {
			return span.FromContext(ctx).Fields(logrus.Fields{"method": info.Name, "stream": streamKind(info)})
		})
		return err
	}
}

// ClientLogging returns a client interceptor that logs every call when it
// ends, with the levels of Logging. ClientLoggingStream logs streams.
func ClientLogging(logger logrus.FieldLogger) protoserver.ClientInterceptor {
	return func(ctx context.Context, method string, req, resp proto.Message, next protoserver.Invoker) error {
		start := time.Now()
		err := next(ctx, method, req, resp)
		logEnd(logger, "tcpez: call", start, err, func() logrus.Fields { return clientFields(ctx, method) })
		return err
	}
}

// ClientLoggingStream returns a client stream interceptor that logs every
// stream when it ends (see protoserver.OnClientStreamEnd), with the
// levels of Logging.
func ClientLoggingStream(logger logrus.FieldLogger) protoserver.ClientStreamInterceptor {
	return func(ctx context.Context, method string, req proto.Message, next protoserver.Streamer) (protoserver.ClientMessageStream, error) {
		start := time.Now()
		done := func(err error) {
			logEnd(logger, "tcpez: stream", start, err, func() logrus.Fields { return clientFields(ctx, method) })
		}
		ms, err := next(ctx, method, req)
		if err != nil {
			done(err)
			return nil, err
		}
		return protoserver.OnClientStreamEnd(ctx, ms, done), nil
	}
}

// logEnd logs the end of a call or stream that began at start, with the
// fields of fields and the level of its err, if that level is on.
func logEnd(logger logrus.FieldLogger, msg string, start time.Time, err error, fields func() logrus.Fields) {
	level := levelOf(err)
	if !enabled(logger, level) {
		return
	}
	d := time.Since(start)
	f := fields()
	f["code"] = protoserver.CodeOf(err).String()
	f["duration_ms"] = float64(d) / float64(time.Millisecond)
	entry := logger.WithFields(f)
	if err != nil {
		entry = entry.WithError(err)
	}
	entry.Log(level, msg)
}

// clientFields are the fields of a client's log entry.
func clientFields(ctx context.Context, method string) logrus.Fields {
	f := logrus.Fields{"method": method}
	if id := protoserver.OutgoingSpanID(ctx); id != 0 {
		f["span_id"] = id.String()
	}
	return f
}

// streamKind names a streaming method's kind.
func streamKind(info *protoserver.MethodInfo) string {
	switch {
	case info.IsClientStream && info.IsServerStream:
		return "bidi"
	case info.IsClientStream:
		return "client"
	}
	return "server"
}

func levelOf(err error) logrus.Level {
	switch protoserver.CodeOf(err) {
	case protoserver.OK:
		return logrus.DebugLevel
	case protoserver.Unknown, protoserver.Internal, protoserver.DataLoss:
		return logrus.ErrorLevel
	}
	return logrus.WarnLevel
}

// enabled tells whether logging at lvl would print, so that entries nobody
// will see are not built. Loggers that cannot say are assumed on.
func enabled(l logrus.FieldLogger, lvl logrus.Level) bool {
	switch l := l.(type) {
	case *logrus.Logger:
		return l.IsLevelEnabled(lvl)
	case *logrus.Entry:
		return l.Logger == nil || l.Logger.IsLevelEnabled(lvl)
	}
	return true
}
