// Package client is the tcpez client: pooled, load-balanced, automatically
// pipelined request/response calls over the tcpez wire protocol
// (docs/PROTOCOL.md), on TCP, TLS or Unix sockets.
//
//	c, err := client.New([]string{"127.0.0.1:7070"}, client.Config{})
//	if err != nil {
//		return err
//	}
//	defer c.Close()
//	answer, err := c.Call(ctx, []byte("PING"))
//
// The zero Config means every default; set its fields for TLS, more
// connections, a Resolver, retries, health checks and the rest (see
// Config).
//
// # Protocols
//
// Every new connection asks the server for the multiplexed mode
// (docs/PROTOCOL.md): calls then carry ids, answers arrive in any order, so
// a slow call holds up no other on the connection, a caller whose context
// ends sends a cancel that ends the handler's context, and a server's error
// reaches the caller as a *ServerError. Against a server that does not
// speak it the connection falls back to v1 by itself; Config.Protocol can
// require either. Every call works the same in both.
//
// # Calls
//
// Call sends one request frame and waits for its answer frame; CallAppend
// does the same into the caller's buffer and, in the steady state,
// allocates nothing; CallAppendTail sends a request given in two parts,
// its large tail (an image after its header, say) written from the
// caller's slice rather than copied. Go starts a call and returns a *Future; Notify sends
// a request whose answer is read and dropped. A Pipeline collects requests
// (Enqueue) and sends them as one protocol batch (Flush), returning their
// answers in order.
//
// Concurrent calls share connections: their frames are coalesced into few
// writes and their answers come back in order, so one connection carries
// many calls at once. A caller whose context ends returns at once with an
// error matching ctx.Err(); its answer is read and dropped when it comes,
// and the connection stays usable.
//
// On a v1 connection (ProtocolV1, or a server without the multiplexed
// mode) answers come in request order, so a call queued behind a slow or
// stuck answer waits for it. A connection whose next answer has been due
// for Config.OverdueAfter (default 10ms) therefore takes no new call while
// another connection to its address is not overdue, or one to another
// address (unless the call is keyed) is not overdue and carries fewer
// calls; failing that, the address gets an extra connection, which the
// call waits for, up to Config.MaxExtraConns (default 4) beyond
// ConnsPerAddr. The balancers choose among the first
// ConnsPerAddr connections of each address, so extras carry only calls
// routed around an overdue answer; an extra idle for
// Config.ExtraIdleTimeout (default 10s) closes. Calls already queued behind
// the overdue answer stay there, bounded by their contexts. MaxExtraConns
// -1 keeps exactly ConnsPerAddr connections.
//
// # Connecting
//
// New dials nothing before it returns: every address is dialled in the
// background, and calls wait for a connection as their context allows.
// An address that has never connected gets DialTimeout from its first
// dial to connect, refused dials being retried meanwhile, so a client
// made just before its server listens works at once; after that a call
// with no connection fails with ErrNoConnection. WaitConnected waits for
// the first connection, for programs that should fail at startup.
//
// # Failures
//
// A connection that breaks — an I/O error, an end of stream, or a server
// that breaks the protocol — fails every call on it with a *ConnError
// (matching ErrConnLost; protocol violations also match frame.ErrProtocol)
// and is replaced in the background, at once when it had delivered an
// answer (a tcpez server closes a connection after a handler error). An
// address whose dial fails, or whose connections break before answering
// anything, is taken out of use and dialled again with exponential backoff
// and jitter;
// Config.OnStateChange hears of it. With no usable connection, a call
// waits while an address is being dialled and otherwise fails with
// ErrNoConnection once its retries are spent, unless
// Config.WaitForConnection asks it to wait as long as its context allows.
//
// A failed call is retried on another connection, within Config.MaxRetries
// and its context, only when its request provably never left the process
// (no connection, or the connection broke before its bytes were written),
// or when the context is marked WithIdempotent. Nothing is ever sent twice
// behind the caller's back.
//
// # Authentication and closing
//
// Config.AuthToken sends a credential on every new connection (after the
// mux negotiation, if any), before any call may use it, for servers whose
// server.Auth wants a token. Shutdown closes gracefully: new calls fail with ErrClosed
// and Shutdown waits, up to its context, for the calls already made; Close
// fails them at once.
//
// # Addresses
//
// New takes a fixed address list; a Resolver lets the set change while the
// client runs, and reports its failures through an Updater. Removed
// addresses are drained: calls already on them get their answers, then the
// connections close.
//
// DNSResolver follows a service in DNS, by its A and AAAA records or its
// SRV records, as servers come and go. An address can also be ejected:
// taken out of balancing while it is up. Config.HealthCheck probes each
// address in band and ejects it while its probes fail; passive outlier
// ejection (Config.OutlierFailures) ejects an address on which several
// calls in a row failed, for a backoff. Ejected addresses are used only
// when no other is usable, and Config.OnStateChange hears Ejected and
// Restored. For caches, the Rendezvous balancer sends every call with a
// given key (WithKey) to the same address, and moves as few keys as
// possible when the set changes. docs/SCALING.md shows deployments.
//
// How a connection shares its writes and reads among callers, and the
// timings and measurements behind it, are in docs/DESIGN.md.
package client
