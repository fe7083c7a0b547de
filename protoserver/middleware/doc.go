// Package middleware has interceptors for protoserver services and clients:
// logging (Logging, ClientLogging), token authentication (Auth, TokenAuth,
// ClientToken) and metrics (Metrics, ClientMetrics).
//
// Install them with protoserver.WithInterceptors and
// protoserver.WithClientInterceptors; the first one given runs outermost:
//
//	svc := protoserver.NewService(protoserver.WithInterceptors(
//		middleware.Metrics(rec),
//		middleware.Logging(logger),
//		middleware.TokenAuth(token),
//	))
package middleware
