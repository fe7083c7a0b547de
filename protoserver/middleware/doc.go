// Package middleware has interceptors for protoserver services and clients:
// logging (Logging, ClientLogging), token authentication (Auth, TokenAuth,
// ClientToken) and metrics (Metrics, ClientMetrics), each with a stream
// form for streaming methods (LoggingStream, AuthStream, TokenAuthStream,
// ClientTokenStream, MetricsStream, ClientLoggingStream,
// ClientMetricsStream).
//
// Interceptors do not run around streaming methods, nor stream
// interceptors around calls: a service that guards its methods with
// TokenAuth must guard its streams with TokenAuthStream, or anyone may
// call them. protoserver refuses to add a streaming method to a service
// with Interceptors but no StreamInterceptors, so that forgetting shows
// at startup. Install both forms, in the same order; the first one given
// runs outermost:
//
//	svc := protoserver.NewService(protoserver.ServiceConfig{
//		Interceptors: []protoserver.Interceptor{
//			middleware.Metrics(rec),
//			middleware.Logging(logger),
//			middleware.TokenAuth(token),
//		},
//		StreamInterceptors: []protoserver.StreamInterceptor{
//			middleware.MetricsStream(rec),
//			middleware.LoggingStream(logger),
//			middleware.TokenAuthStream(token),
//		},
//	})
//
// and on the client, for its calls and its streams to carry the token:
//
//	pc := protoserver.NewClient(c, protoserver.ClientConfig{
//		Interceptors:       []protoserver.ClientInterceptor{middleware.ClientToken(token)},
//		StreamInterceptors: []protoserver.ClientStreamInterceptor{middleware.ClientTokenStream(token)},
//	})
//
// Each form is a function of its own, as gRPC's middleware has unary and
// stream constructors: the stream forms take the same arguments, and the
// service's refusal above is what makes leaving one out hard.
package middleware
