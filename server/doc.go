// Package server is the tcpez byte server: it accepts connections, reads
// frames, hands each request to a Handler with its own span, and writes the
// answers back in request order.
//
// It is shaped like net/http: a Handler (or HandlerFunc) answers requests, and
// a Server runs it with Serve, ListenAndServe or ServeConn and stops with
// Shutdown or Close.
//
// A connection is read ahead of its handlers: requests that arrive pipelined
// run concurrently, up to Config.MaxInFlight per connection, and then the
// server stops reading until answers have gone out, so a client that sends
// faster than it reads is slowed, never buffered without bound. Answers leave
// strictly in request order, a batch as a batch, and answers that are ready
// together share one write. A request that is the only one at hand runs on
// the connection's own goroutine, so a plain request/response exchange pays
// for no goroutine hand-off.
//
// What all connections together may hold is bounded too: request and answer
// bytes share one memory budget (Config.MemoryBudget, sized from the
// machine), which a frame takes its share of before any memory is allocated
// for it, waiting unread while the budget is spent; connections per peer
// address and connections still in their handshake are limited. See
// docs/SECURITY.md.
//
// Rules a connection breaks — a malformed frame, a frame over the limits, a
// stalled frame, a peer that does not read its answers — close that
// connection, after the answers to the requests before the fault, with a
// logged reason and a counted stat. Other connections never notice.
package server
