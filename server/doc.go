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
// per request (protoserver's handlers do); a TailHandler may also leave the
// large end of its answer where it lies, for the connection to write from
// there. The zero Config means every
// default; its fields set limits, timeouts, TLS, authentication (Auth),
// logging and metrics (the Stat constants).
//
// A connection is read ahead of its handlers: no request waits for an
// earlier one's handler to finish before it is read and started. Pipelined
// requests and the members of a batch run concurrently, from a connection's
// first request on and whatever their size, up to Config.MaxInFlight per
// connection; then the server stops reading until answers have gone out, so
// a client that sends faster than it reads is slowed, never buffered
// without bound. A handler may therefore wait for a later request on its
// own connection (a long poll woken by a publish) as long as fewer than
// MaxInFlight requests are unanswered.
//
// How: one goroutine at a time reads a connection, and runs each request it
// reads on itself, so a plain request/response exchange, or a burst of fast
// requests, pays for no goroutine hand-off. A watcher goroutine, which
// runs only while some handler runs that way, looks every 500 µs: a
// handler it finds running at two looks in a row has the reading pass to a
// fresh goroutine, which reads and starts the requests behind it while that
// handler runs on. Once handlers are slow (over 50 µs), requests already
// buffered start on goroutines of their own at once.
//
// Answers leave strictly in request order, a batch as a batch, as the wire
// requires, and as soon as the wire allows: answers that are ready together
// share one write, but none waits for the bytes of a later request, which
// the reader may hold back only while the next request has arrived whole.
// An answer ready behind an unanswered one waits for it: a slow handler
// delays the answers after its own, never the handlers.
//
// A handler that never returns would hold every later answer of its
// connection for good. Config.HandlerTimeout bounds that: when it passes,
// the handler's context is cancelled and its request is answered at once,
// in its place, as failing with ErrHandlerTimeout (an answer if
// Config.EncodeError makes one; else the connection closes after the
// answers before it, and the client reconnects). Without it, the way out is
// the client's: its calls end at their deadlines, and the tcpez client
// sends new calls around a connection whose answer is overdue (see
// client.Config.OverdueAfter).
//
// docs/DESIGN.md says how a connection reads ahead and coalesces its
// writes.
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
