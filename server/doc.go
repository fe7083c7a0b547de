// Package server is the tcpez byte server: it accepts connections, reads
// frames, hands each request to a Handler with its own span, and writes the
// answers back in request order.
//
//	srv := server.New(server.HandlerFunc(func(ctx context.Context, req []byte, sp *span.Span) ([]byte, error) {
//		return req, nil // echo
//	}), server.Config{})
//	go srv.ListenAndServe("127.0.0.1:7070") // or "unix:/run/echo.sock"
//	defer srv.Shutdown(ctx)
//
// It is shaped like net/http: a Handler (or HandlerFunc) answers requests, and
// a Server runs it with Serve, ListenAndServe or ServeConn and stops with
// Shutdown or Close. A Handler that also implements AppendHandler appends
// its answer to a buffer the connection keeps, rather than allocating one
// per request (protoserver's handlers do). The zero Config means every
// default; its fields set limits, timeouts, TLS, authentication (Auth),
// logging and metrics (the Stat constants).
//
// Requests that arrive pipelined on a connection run concurrently, up to
// Config.MaxInFlight per connection; answers leave strictly in request
// order, a batch as a batch. docs/DESIGN.md says how a connection reads
// ahead and coalesces its writes.
//
// What all connections together may hold is bounded too: request and answer
// bytes share one memory budget (Config.MemoryBudget, sized from the
// machine), which a frame takes its share of before any memory is allocated
// for it, waiting unread while the budget is spent; connections per peer
// address and connections still in their handshake are limited. See
// docs/SECURITY.md.
//
// A connection whose first frame is the multiplexed mode's preface
// (docs/PROTOCOL.md) is served in that mode instead: each request runs
// concurrently (on the connection's goroutine while handlers are fast, on
// workers once one is slow), answers leave as soon as they are ready, a
// cancel frame ends the handler's context, errors are answered with error
// frames and the connection goes on, and Shutdown sends a go-away and
// drains. Config.V1Only turns the mode off.
//
// Rules a connection breaks — a malformed frame, a frame over the limits, a
// stalled frame, a peer that does not read its answers — close that
// connection, after the answers to the requests before the fault, with a
// logged reason and a counted stat. Other connections never notice.
package server
