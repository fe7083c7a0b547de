// Package middleware has interceptors for protoserver services and clients:
// logging (Logging, ClientLogging), token authentication (Auth, TokenAuth,
// ClientToken) and metrics (Metrics, ClientMetrics).
//
// Install them in protoserver.ServiceConfig.Interceptors and
// protoserver.ClientConfig.Interceptors; the first one given runs
// outermost:
//
//	svc := protoserver.NewService(protoserver.ServiceConfig{
//		Interceptors: []protoserver.Interceptor{
//			middleware.Metrics(rec),
//			middleware.Logging(logger),
//			middleware.TokenAuth(token),
//		},
//	})
package middleware
