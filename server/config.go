package server

import (
	"context"
	"crypto/tls"
	"fmt"
	"os"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/tcpez/tcpez/frame"
	"github.com/tcpez/tcpez/internal/defaults"
	"github.com/tcpez/tcpez/span"
	"github.com/tcpez/tcpez/stats"
)

// Defaults for the zero values of Config.
const (
	DefaultMaxConns        = 16384
	DefaultMaxInFlight     = 128
	DefaultMaxCalls        = 65536
	DefaultReadTimeout     = 30 * time.Second
	DefaultIdleTimeout     = 5 * time.Minute // as in the original tcpez server
	DefaultWriteTimeout    = 30 * time.Second
	DefaultSlowRequest     = time.Second
	DefaultStatsInterval   = 10 * time.Second
	DefaultRequestLogLevel = logrus.DebugLevel
	DefaultMemoryWait      = 10 * time.Second
	DefaultMaxConnsPerPeer = 1024
	DefaultMaxHandshakes   = 1024

	// DefaultConnBufferSize sizes each connection's read and write
	// buffers: a quarter of frame.DefaultBufferSize, because a server
	// holds two per connection for up to DefaultMaxConns connections
	// (128 MiB at the limit rather than 512).
	DefaultConnBufferSize = 4 << 10
)

// Config holds a server's limits, timeouts and hooks. The zero value of
// every field means its default; a negative duration or count switches that
// limit off where the field says so.
type Config struct {
	// Limits bound the frames and batches a peer may send; see frame.Limits.
	// A Codec has limits of its own.
	Limits frame.Limits
	// Codec, when set, is the wire format of the server's connections in
	// place of tcpez v1 frames; see Codec. Auth.Token cannot be used with
	// it. Default nil: tcpez v1.
	Codec Codec

	// MaxConns is the most connections served at once; connections over it
	// are accepted and reset at once (a TCP reset, not a clean close, so
	// that clients do not take it for a refused credential or protocol),
	// and counted as refused.
	// Default DefaultMaxConns; negative means no limit.
	MaxConns int
	// MaxInFlight is how many requests of one connection may be read but
	// not yet answered. When it is reached the server stops reading that
	// connection. Default DefaultMaxInFlight; 1 makes a connection strictly
	// one request at a time. A request that HandlerTimeout answered no
	// longer counts, though its handler may still run: with 1, the next
	// request can then run beside a handler that ignores its ctx.
	MaxInFlight int

	// MemoryBudget bounds the bytes of requests and answers the server
	// holds at once, over all connections: a frame that does not fit waits,
	// its connection unread, for up to MemoryWait. Waiting connections are
	// served those holding least first. Each connection may hold 16 KiB
	// even when the budget is spent, so that small requests always
	// progress. Default DefaultMemoryBudget(); negative: no budget. See
	// docs/SECURITY.md.
	MemoryBudget int64
	// MemoryWait is how long a frame may wait for room in MemoryBudget
	// before its connection is closed with ErrMemoryBudget. Default
	// DefaultMemoryWait; negative: no limit. A stream's open does not
	// wait: one whose window (StreamWindow) finds no room is refused at
	// once with code 4 ("overloaded"), and the connection goes on.
	MemoryWait time.Duration
	// MaxConnsPerPeer is the most connections served at once from one
	// remote IP address (one /64 for IPv6); more are accepted and reset
	// at once, as over MaxConns. Unix sockets are not limited. Default
	// DefaultMaxConnsPerPeer; negative: no limit.
	MaxConnsPerPeer int
	// MaxHandshakes is the most connections that may be in their TLS
	// handshake or authentication at once; a new connection over it evicts
	// the oldest of them, so that peers that start a handshake and stall
	// cannot lock out the rest. Default DefaultMaxHandshakes; negative: no
	// limit.
	MaxHandshakes int
	// MaxCalls bounds the mux calls the server runs at once, over all its
	// connections; a request over it is refused with the error code
	// "overloaded" (it does not run, and the client may send it again).
	// MaxInFlight bounds each connection. v1 requests do not count: a v1
	// connection stops being read instead. Default DefaultMaxCalls;
	// negative means no limit.
	MaxCalls int
	// V1Only makes the server speak only v1, as servers that predate the
	// multiplexed mode do: a client's preface is then an ordinary request
	// for the handler (see docs/PROTOCOL.md, "Negotiation").
	V1Only bool
	// PushBacklog bounds the bytes waiting to be written to one mux
	// connection past which the server drops a notification to it (and
	// refuses a call to it) rather than queue more: ErrPushDropped, counted
	// as StatErrPushDropped. Default DefaultPushBacklog.
	PushBacklog int
	// StreamWindow is the receive window of each stream (version 3): how
	// much a client may send on one stream before the handler reads it,
	// and so the most the server buffers unread for it; it is charged to
	// MemoryBudget while the stream lives. (A handler's Recv holds besides
	// the message it reassembles, up to the frame limit, uncharged.) Zero
	// means 256 KiB (frame.StreamWindow, the protocol's starting window,
	// below which it never goes); a larger window suits long round trips.
	StreamWindow int

	// ReadTimeout is how long a frame may take to arrive once its first
	// byte has (slowloris). Default DefaultReadTimeout; negative: none.
	ReadTimeout time.Duration
	// IdleTimeout closes a connection that sends nothing for this long
	// while it has no requests in flight. Default DefaultIdleTimeout;
	// negative: none.
	IdleTimeout time.Duration
	// WriteTimeout is how long a write of answers may block on a peer that
	// does not read (slow consumer). Default DefaultWriteTimeout; negative:
	// none.
	WriteTimeout time.Duration

	// ReadBufferSize and WriteBufferSize size each connection's buffers.
	// Default DefaultConnBufferSize each. A connection whose traffic outruns
	// them borrows 64 KiB buffers, shared among the server's connections,
	// for as long as the burst lasts: a connection waiting for data holds
	// only its own (see docs/SECURITY.md for the one exception).
	ReadBufferSize, WriteBufferSize int

	// HandlerTimeout, when positive, bounds each request's handler. When it
	// passes, the handler's ctx is cancelled (ctx.Err() is
	// context.DeadlineExceeded, context.Cause(ctx) is ErrHandlerTimeout)
	// and the request is answered at once, in its place in the order, as
	// failing with an error matching ErrHandlerTimeout and
	// context.DeadlineExceeded: EncodeError turns it into an answer, or,
	// as by default, the connection closes after the answers before it.
	// What the handler returns later is dropped; a handler that ignores
	// its ctx keeps its goroutine, its request and its span until it
	// returns, but no longer holds up the connection. The count
	// errors.handler_timeout rises. (A request run on the connection's
	// reading goroutine can be answered early only once the reading has
	// passed on, within a millisecond: a timeout shorter than that is
	// answered when the handler returns.) In the multiplexed mode the call
	// is answered when the timeout passes with an error frame (code 1,
	// "handler timeout") or EncodeError's answer, and the connection goes
	// on; context.Cause(ctx) is then context.DeadlineExceeded too. Zero
	// (the default): no timeout, and a handler that never returns holds up
	// every answer after its own (in v1) or keeps its call unanswered.
	// Streams (StreamHandler) are not bounded by it: a stream lives as
	// long as its two ends want, so bound one with the client's context
	// (a deadline reaches ServeStream's ctx) or in the handler.
	HandlerTimeout time.Duration

	// TLS, when set, makes Serve and ListenAndServe speak TLS. Client
	// certificates are verified as TLS.ClientAuth says.
	TLS *tls.Config
	// Auth, when set, admits each connection before its requests are
	// served: by a token in its first frame, or by its TLS identity.
	Auth *Auth
	// UnixSocketMode, when set, is applied to the socket file that
	// ListenAndServe creates for a "unix:/path" address.
	UnixSocketMode os.FileMode

	// Logger receives connection and request logs. Default: logrus's
	// standard logger.
	Logger logrus.FieldLogger
	// Stats receives the server's metrics (see the README for the names).
	// Default: stats.Nop.
	Stats stats.Recorder
	// StatsInterval is how often the gauges conns.open,
	// requests.inflight and memory.held are sent to Stats. Default
	// DefaultStatsInterval.
	StatsInterval time.Duration
	// RequestLog says which requests are logged with their spans.
	RequestLog RequestLog

	// EncodeError, when set, turns a handler's error (or recovered panic)
	// into an answer payload; returning ok false closes the connection
	// instead, as happens when EncodeError is nil.
	EncodeError func(ctx context.Context, err error, sp *span.Span) (payload []byte, ok bool)
	// DisablePanicRecovery lets a handler's panic crash the process, for
	// those who would rather fail loudly.
	DisablePanicRecovery bool
}

// RequestLog chooses which requests are logged. At hundreds of thousands of
// requests a second, logging each one must be a choice, so by default
// routine requests are logged only at debug level and slow ones at warn.
type RequestLog struct {
	// Level of the entry for a routine request. Zero means
	// DefaultRequestLogLevel (PanicLevel cannot be chosen).
	Level logrus.Level
	// SampleEvery logs one routine request in this many. Zero or one: all.
	SampleEvery int
	// Slow is the duration over which a request is logged at warn level,
	// whatever the sampling. Default DefaultSlowRequest; negative: never.
	Slow time.Duration
}

// Validate reports settings out of range, wrapping ErrInvalidConfig.
func (c *Config) Validate() error {
	if err := c.Limits.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	switch {
	case c.MaxInFlight < 0:
		return fmt.Errorf("%w: MaxInFlight %d is negative", ErrInvalidConfig, c.MaxInFlight)
	case c.StreamWindow < 0 || c.StreamWindow > 1<<30:
		return fmt.Errorf("%w: StreamWindow %d is out of range", ErrInvalidConfig, c.StreamWindow)
	case c.Auth != nil && c.Auth.Check == nil:
		return fmt.Errorf("%w: Auth without a Check function", ErrInvalidConfig)
	case c.Auth != nil && c.Auth.Token && c.Codec != nil:
		return fmt.Errorf("%w: Auth.Token reads a tcpez frame, which a Codec does not speak", ErrInvalidConfig)
	case c.StatsInterval < 0:
		return fmt.Errorf("%w: StatsInterval %v is negative", ErrInvalidConfig, c.StatsInterval)
	case c.ReadBufferSize < 0 || c.WriteBufferSize < 0:
		return fmt.Errorf("%w: negative buffer size", ErrInvalidConfig)
	case c.RequestLog.SampleEvery < 0:
		return fmt.Errorf("%w: RequestLog.SampleEvery %d is negative", ErrInvalidConfig, c.RequestLog.SampleEvery)
	case c.RequestLog.Level > logrus.TraceLevel:
		return fmt.Errorf("%w: RequestLog.Level %d is not a logrus level", ErrInvalidConfig, c.RequestLog.Level)
	}
	return nil
}

// withDefaults returns c with every zero value replaced by its default and
// every negative limit by "none".
func (c Config) withDefaults() Config {
	c.MaxConns = defaults.Or(c.MaxConns, DefaultMaxConns)
	c.MaxInFlight = defaults.Or(c.MaxInFlight, DefaultMaxInFlight)
	c.MaxCalls = defaults.Or(c.MaxCalls, DefaultMaxCalls)
	c.PushBacklog = defaults.Or(c.PushBacklog, DefaultPushBacklog)
	if c.MemoryBudget == 0 {
		c.MemoryBudget = DefaultMemoryBudget()
	}
	c.MemoryWait = defaults.Or(c.MemoryWait, DefaultMemoryWait)
	c.MaxConnsPerPeer = defaults.Or(c.MaxConnsPerPeer, DefaultMaxConnsPerPeer)
	c.MaxHandshakes = defaults.Or(c.MaxHandshakes, DefaultMaxHandshakes)
	c.ReadTimeout = defaults.Or(c.ReadTimeout, DefaultReadTimeout)
	c.IdleTimeout = defaults.Or(c.IdleTimeout, DefaultIdleTimeout)
	c.WriteTimeout = defaults.Or(c.WriteTimeout, DefaultWriteTimeout)
	c.ReadBufferSize = defaults.Or(c.ReadBufferSize, DefaultConnBufferSize)
	c.WriteBufferSize = defaults.Or(c.WriteBufferSize, DefaultConnBufferSize)
	c.StatsInterval = defaults.Or(c.StatsInterval, DefaultStatsInterval)
	c.RequestLog.Level = defaults.Or(c.RequestLog.Level, DefaultRequestLogLevel)
	c.RequestLog.SampleEvery = max(c.RequestLog.SampleEvery, 1)
	c.RequestLog.Slow = defaults.Or(c.RequestLog.Slow, DefaultSlowRequest)
	if c.Logger == nil {
		c.Logger = logrus.StandardLogger()
	}
	if c.Stats == nil {
		c.Stats = stats.Nop{}
	}
	return c
}
