// Package textserver serves a text command protocol (docs/TEXTPROTOCOL.md)
// with commands registered by name, on the tcpez connection engine.
//
//	mux := textserver.NewMux(textserver.Config{})
//	mux.HandleFunc("ECHO", func(ctx context.Context, req *textserver.Request, resp *textserver.Response) error {
//		resp.Message("OK", nil, req.Data)
//		return nil
//	}, textserver.Command{CountArg: 1}) // ECHO <bytes>\r\n<data>\r\n
//	srv := textserver.NewServer(mux, server.Config{})
//	srv.ListenAndServe("127.0.0.1:11211")
//
// A Mux is a server.Handler, and its Codec a server.Codec: NewServer puts
// them on a server.Server, so listeners (TCP, TLS, Unix), MaxConns,
// MaxInFlight, timeouts, in-order pipelined answers, Shutdown, spans,
// stats and logs are the server package's, as for tcpez frames. A command
// may carry a data block whose byte count is any argument it declares
// (Command.CountArg); a handler answers with one message or several (a
// multi-part response), synchronously (HandleFunc) or from any goroutine
// later (HandleAsync), within the command's timeout. Errors become status
// lines: an *Error its own, others Config.ErrorStatus, an unknown command
// Config.UnknownStatus; the connection goes on. Only input that breaks
// the protocol, which leaves the stream out of sync, closes it.
package textserver
