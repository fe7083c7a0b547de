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
func Logging(logger logrus.FieldLogger) protoserver.Interceptor {
	return func(ctx context.Context, info *protoserver.MethodInfo, req proto.Message, sp *span.Span, next protoserver.Next) (proto.Message, error) {
		start := time.Now()
		resp, err := next(ctx, req, sp)
		level := levelOf(err)
		if !enabled(logger, level) {
			return resp, err
		}
		f := sp.Fields(logrus.Fields{
			"method":      info.Name,
			"code":        protoserver.CodeOf(err).String(),
			"duration_ms": float64(time.Since(start)) / float64(time.Millisecond),
		})
		entry := logger.WithFields(f)
		if err != nil {
			entry = entry.WithError(err)
		}
		entry.Log(level, "tcpez: call")
		return resp, err
	}
}

// ClientLogging returns a client interceptor that logs every call when it
// ends, with the levels of Logging.
func ClientLogging(logger logrus.FieldLogger) protoserver.ClientInterceptor {
	return func(ctx context.Context, method string, req, resp proto.Message, next protoserver.Invoker) error {
		start := time.Now()
		err := next(ctx, method, req, resp)
		level := levelOf(err)
		if !enabled(logger, level) {
			return err
		}
		f := logrus.Fields{
			"method":      method,
			"code":        protoserver.CodeOf(err).String(),
			"duration_ms": float64(time.Since(start)) / float64(time.Millisecond),
		}
		if id := protoserver.OutgoingSpanID(ctx); id != 0 {
			f["span_id"] = id.String()
		}
		entry := logger.WithFields(f)
		if err != nil {
			entry = entry.WithError(err)
		}
		entry.Log(level, "tcpez: call")
		return err
	}
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
