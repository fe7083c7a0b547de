package server

// Metric names sent to Config.Stats. The README lists them; a test checks
// that list against these constants.
const (
	StatConnsAccepted         = "conns.accepted"          // count, connections accepted
	StatConnsRefused          = "conns.refused"           // count, closed at once over MaxConns
	StatConnsRefusedPeer      = "conns.refused_peer"      // count, closed at once: the peer had MaxConnsPerPeer open
	StatConnsHandshakeEvicted = "conns.handshake_evicted" // count, closed in the handshake by MaxHandshakes newer ones (and counted as nothing else)
	StatConnsOpen             = "conns.open"              // gauge, connections served now
	StatConnsIdleTimeout      = "conns.idle_timeout"      // count, closed by IdleTimeout
	StatRequests              = "requests"                // count, one per request answered
	StatRequestsInFlight      = "requests.inflight"       // gauge, read and not yet answered
	StatRequestTime           = "request"                 // timing, from the request read to its handler's return
	StatBytesIn               = "bytes.in"                // count, bytes read from peers
	StatBytesOut              = "bytes.out"               // count, bytes written to peers
	StatMemoryHeld            = "memory.held"             // gauge, bytes of the memory budget in use, every StatsInterval
	StatConnsMux              = "conns.mux"               // count, connections that negotiated the multiplexed mode
	StatRequestsCancelled     = "requests.cancelled"      // count, mux cancels that found their call

	// Why connections or requests failed.
	StatErrHandler = "errors.handler" // handler returned an error
	StatErrPanic   = "errors.panic"   // handler panicked
	// StatErrHandlerTimeout counts requests answered as timed out
	// (Config.HandlerTimeout, ErrHandlerTimeout).
	StatErrHandlerTimeout = "errors.handler_timeout"
	StatErrProtocol       = "errors.protocol"        // peer broke the protocol (frame.ErrProtocol)
	StatErrReadTimeout    = "errors.read_timeout"    // ErrReadTimeout
	StatErrWriteTimeout   = "errors.write_timeout"   // ErrWriteTimeout
	StatErrMemory         = "errors.memory"          // no room in the memory budget (ErrMemoryBudget)
	StatErrTLS            = "errors.tls"             // TLS handshake failed, whatever ended it (an alert, ReadTimeout, a reset); not errors.conn too
	StatErrForeign        = "errors.foreign"         // a TLS or HTTP client on a plain port, a plain one on a TLS port
	StatErrAuth           = "errors.auth"            // Auth refused the connection (ErrUnauthenticated)
	StatErrConn           = "errors.conn"            // any other I/O error
	StatErrRefused        = "errors.refused"         // mux request refused: MaxCalls reached
	StatErrFrameTooLarge  = "errors.frame_too_large" // mux request over the frame limit, answered and skipped
	StatErrPushDropped    = "errors.push_dropped"    // notification dropped (or call to a client refused): over Config.PushBacklog
)
