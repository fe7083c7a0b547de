// Package client is the tcpez client: pooled, load-balanced, automatically
// pipelined request/response calls over the tcpez wire protocol
// (docs/PROTOCOL.md), on TCP, TLS or Unix sockets.
//
// # Calls
//
// Call sends one request frame and waits for its answer frame;
// CallAppend does the same into the caller's buffer and, in the steady
// state, allocates nothing. Go starts a call and returns a *Future;
// Notify sends a request whose answer is read and dropped. A Pipeline sends
// many requests as one protocol batch and returns their answers in order.
//
// # Pipelining
//
// Concurrent calls share connections. A caller appends its frame to the
// connection's write buffer and queues itself, under one mutex, so queue
// order is wire order. If no write is in progress the caller writes the
// buffer itself, again and again until it is empty; callers that arrive
// meanwhile only append. A lone caller therefore writes its own request
// with no goroutine hand-off, while many callers have their frames
// coalesced into a few writes. A request of 64 KiB or more is written
// from the caller's slice (writev), not copied: its caller waits for its
// turn to write instead of appending.
//
// Answers complete the queued calls in FIFO order. While several calls are
// in flight one reader goroutine per connection reads them. A Call or
// CallAppend that finds nothing in flight reads its own answer on its
// own goroutine, as a hand-written loop would, sparing the wake-up of a
// second goroutine (at one call in flight, 40% off the round trip on 2
// cores); it gives the reading back to the reader goroutine when others
// queue behind it, when the answer is over 32 KiB, or after 10ms of
// waiting. Before such a call writes to a connection nobody was reading,
// it peeks at the socket, so that a connection the server closed while
// idle fails the call before anything is sent, and the call is retried.
//
// A caller whose context ends returns at once (within 10ms when it was
// reading its own answer and the context had no deadline). Its call stays
// queued and the reader consumes its answer and drops it, so the
// connection stays in sync; the call's memory goes back to the pool only
// then. A caller that
// is writing for others hands the rest of the write to a background
// goroutine when the write blocks past its deadline or, on a plain socket,
// past a 10ms grace, so that the stream is never cut mid-frame and a
// cancelled caller never waits on a server that does not read. (A TLS
// connection cannot resume a write that timed out: only the caller's
// deadline interrupts it, and the connection then breaks.)
//
// # Failures
//
// A connection that breaks — an I/O error, an end of stream, or a server
// that breaks the protocol — fails every call on it with a *ConnError
// (matching ErrConnLost; protocol violations also match frame.ErrProtocol)
// and is replaced in the background. An address whose dial fails is taken
// out of use and dialled again with exponential backoff and jitter;
// Config.OnStateChange hears of it. With no usable connection, a call
// waits while an address is being dialled (or is about to be, its
// connection having just broken) and otherwise fails with ErrNoConnection
// once its retries are spent, unless Config.WaitForConnection asks it to
// wait as long as its context allows.
//
// A failed call is retried on another connection, within Config.MaxRetries
// and its context, only when its request provably never left the process
// (no connection, or the connection broke before its bytes were written),
// or when the context is marked WithIdempotent. Nothing is ever sent twice
// behind the caller's back.
//
// # Addresses
//
// New takes a fixed address list; a Resolver lets the set change while the
// client runs. Removed addresses are drained: calls already on them get
// their answers, then the connections close.
//
// # Scaling out
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
package client
