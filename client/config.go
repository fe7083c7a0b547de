package client

import (
	"context"
	"crypto/tls"
	"fmt"
	"time"

	"github.com/tcpez/tcpez/frame"
	"github.com/tcpez/tcpez/internal/defaults"
	"github.com/tcpez/tcpez/stats"
)

// Defaults for the zero values of Config.
const (
	// One connection per address: pipelining lets one connection carry
	// many concurrent calls, so more connections mostly add server load.
	DefaultConnsPerAddr = 1
	DefaultMaxInFlight  = 1024
	DefaultDialTimeout  = 5 * time.Second
	DefaultMaxRetries   = 2
	DefaultDrainTimeout = 30 * time.Second

	DefaultRetryBackoffBase     = 5 * time.Millisecond
	DefaultRetryBackoffMax      = 100 * time.Millisecond
	DefaultReconnectBackoffBase = 50 * time.Millisecond
	DefaultReconnectBackoffMax  = 5 * time.Second

	// An answer awaited this long is overdue: far beyond a round trip on
	// a LAN and a fast handler, short enough that calls routed around a
	// stuck answer wait little (see Config.OverdueAfter).
	DefaultOverdueAfter     = 10 * time.Millisecond
	DefaultMaxExtraConns    = 4
	DefaultExtraIdleTimeout = 10 * time.Second
	DefaultBulkThreshold    = 32 << 10
)

// Balancer chooses which connection carries a call.
type Balancer int

const (
	// PowerOfTwo picks two connections at random and uses the one with
	// fewer calls outstanding: nearly as good as scanning all of them for
	// the least loaded, at the cost of two. It is the default.
	PowerOfTwo Balancer = iota
	// RoundRobin uses the connections in turn.
	RoundRobin
	// Random picks a connection uniformly at random.
	Random
	// Rendezvous sends the calls whose context carries a key (WithKey) to
	// the address that key hashes to, by rendezvous hashing, so that a
	// cache behind each address sees its keys and no other's. While the
	// address set is stable a key always goes to the same address; when
	// it changes only the keys of the addresses that came or went move.
	// A key whose address has no usable connection goes to the address
	// with the next-highest score. Calls without a key use PowerOfTwo.
	Rendezvous
)

func (b Balancer) String() string {
	switch b {
	case PowerOfTwo:
		return "power-of-two"
	case RoundRobin:
		return "round-robin"
	case Random:
		return "random"
	case Rendezvous:
		return "rendezvous"
	}
	return fmt.Sprintf("Balancer(%d)", int(b))
}

// Backoff is an exponential backoff with jitter: the n-th wait is drawn
// uniformly from [d/2, d] where d = Base·2^(n-1), capped at Max. The jitter
// keeps many clients that lost the same server from probing it in step.
type Backoff struct {
	Base time.Duration
	Max  time.Duration
}

// Config holds a client's settings, given to New. The zero value of every
// field means its default, so Config{} is a client with every default.
type Config struct {
	// ConnsPerAddr is the number of connections kept to each address.
	// Default DefaultConnsPerAddr.
	ConnsPerAddr int
	// LazyDial defers dialling until the first call needs a connection.
	// By default New starts dialling every address in the background.
	LazyDial bool
	// TLS, when set, makes every connection speak TLS with this config.
	// An empty ServerName is taken from the address.
	TLS *tls.Config
	// AuthToken, when set, gives the credential sent on every new
	// connection (first dials, added connections, reconnects), for a
	// server whose server.Auth has Token set: as its first frame in v1, or
	// right after the mux negotiation, as docs/PROTOCOL.md says. A v1
	// server that authenticates takes the mux preface for the credential
	// and refuses it; ProtocolAuto then dials again in v1. The connection is
	// used once the server has answered it with its empty frame; a refusal
	// fails the dial with ErrAuthFailed, and the address backs off like
	// one that refuses connections. It is called for each connection, so
	// it may return a fresh token each time; StaticToken sends one token.
	// The dial's context (DialTimeout) bounds it.
	AuthToken func(ctx context.Context, addr string) ([]byte, error)
	// DialTimeout bounds each dial, TLS handshake and AuthToken included,
	// and the time an address has from its first dial to make its first
	// connection, during which calls wait for it (see New).
	// Default DefaultDialTimeout.
	DialTimeout time.Duration
	// Resolver supplies the address set and its changes. New's addrs and
	// Resolver are exclusive: addrs is shorthand for a StaticResolver.
	Resolver Resolver
	// Balancer chooses among the usable connections. Default PowerOfTwo.
	Balancer Balancer

	// Protocol chooses between the multiplexed mode, with a fall back to
	// v1 against servers that do not speak it (the default), v1 only, and
	// the multiplexed mode only.
	Protocol Protocol
	// OverdueAfter is how long a connection may go without delivering the
	// answer it owes before it counts as overdue. The wire answers in
	// request order, so one slow or stuck handler holds up every call
	// queued behind it on that connection: a call is not queued on an
	// overdue connection while another connection to the same address is
	// not overdue, or one to another address (unless the call is keyed,
	// see Rendezvous) is not overdue and carries fewer calls; failing
	// that, the address gets an extra connection, which the call waits
	// for, up to MaxExtraConns. Only when none can be had
	// is the call queued behind the overdue answer. Default
	// DefaultOverdueAfter: set it above the time your slowest routine
	// answer takes, or calls meet fresh connections where they could
	// share one. Negative: never route around an answer.
	OverdueAfter time.Duration
	// MaxExtraConns is how many connections an address may get beyond
	// ConnsPerAddr while its connections are overdue. Default
	// DefaultMaxExtraConns; negative: none, so that ConnsPerAddr is
	// exactly the number of connections (ConnsPerAddr 1 and
	// MaxExtraConns -1 make one connection per address).
	MaxExtraConns int
	// ExtraIdleTimeout closes connections beyond ConnsPerAddr that have
	// had no call for between half of it and all of it. Default
	// DefaultExtraIdleTimeout.
	ExtraIdleTimeout time.Duration

	// BulkThreshold is the size from which a request (a call's payload,
	// or a Pipeline's batch of frames) is bulk: a connection carries one
	// bulk call at a time. A bulk call takes a connection to any address
	// that carries none, or an extra connection to the address the
	// balancer chose (counted in MaxExtraConns, closed after
	// ExtraIdleTimeout like those for overdue answers), or else waits in
	// line for one, as long as its context allows; small calls go where
	// the balancer sends them, bulk or not. The line waits only while
	// bulk calls end: once none has for OverdueAfter (their handlers may
	// be waiting for calls in line), the calls in line are sent anyway,
	// behind others. Bulk calls queued on one
	// connection are moved one after another, by one reader a side: over
	// loopback, 16 callers of 256 KiB batches made 0.3 of the throughput
	// of a connection each (docs/DESIGN.md, "Bulk calls"). Keyed calls
	// (Rendezvous) and a Codec's are never bulk. Default
	// DefaultBulkThreshold; negative: no call is bulk.
	BulkThreshold int

	// MaxInFlight is the number of requests a connection may have sent but
	// not had answered. A call that finds every connection full waits for
	// a free slot, as long as its context allows. A batch counts as one.
	// Default DefaultMaxInFlight; 1 gives one request at a time.
	MaxInFlight int
	// StreamWindow is the receive window of each stream (see Stream): how
	// much a server may send on one stream before the caller reads it, and
	// so the most the client buffers for it. Zero means 256 KiB
	// (frame.StreamWindow, the protocol's starting window, below which it
	// never goes); a larger window suits long round trips.
	StreamWindow int
	// Limits bound frames both ways; MaxFrameSize bounds a request's or
	// an answer's payload, in both protocols. A request over it is
	// refused before it is written, with a *frame.SizeError (matching
	// frame.ErrFrameTooLarge), and the connection goes on; an answer over
	// the limits breaks the connection with one. Raise it here and on the
	// server to send larger frames, or use a Stream. A Codec has limits of
	// its own.
	Limits frame.Limits
	// Codec, when set, is the wire format of the client's connections in
	// place of tcpez v1 frames; see Codec. Default nil: tcpez v1.
	Codec Codec

	// MaxRetries is how many times a failed call is tried again. Only calls
	// that provably never reached a server, or that the caller marked with
	// WithIdempotent, are retried. Default DefaultMaxRetries; negative
	// means never retry.
	MaxRetries int
	// RetryBackoff spaces retries. Default DefaultRetryBackoffBase and
	// DefaultRetryBackoffMax.
	RetryBackoff Backoff
	// ReconnectBackoff spaces the dials to an address that failed.
	// Default DefaultReconnectBackoffBase and DefaultReconnectBackoffMax.
	ReconnectBackoff Backoff
	// WaitForConnection makes a call that finds no usable connection wait
	// for one until its context ends, instead of failing with
	// ErrNoConnection once its retries are spent.
	WaitForConnection bool
	// DrainTimeout bounds how long a connection to an address the
	// Resolver dropped stays open for the answers still due on it.
	// Default DefaultDrainTimeout.
	DrainTimeout time.Duration

	// OnStateChange, when set, is told when an address connects, loses
	// its last connection, connects again, is ejected from balancing or
	// is restored to it. It is called from the address's own goroutine,
	// one event at a time per address, and should return quickly.
	OnStateChange func(StateEvent)

	// Handler, when set, answers the calls servers make to this client on
	// its connections in the multiplexed mode (version 2; see
	// docs/PROTOCOL.md, "Calls from the server"). Each call runs on a
	// goroutine of its own; its context ends when the server gives the
	// call up or the connection fails. An error or a panic reaches the
	// server's caller as an error with code CodeHandler ("handler panic"),
	// and so does an answer over the server's frame limit, which is not
	// sent (it would end the connection). Without a Handler such calls are
	// refused with CodeNoHandler; past MaxInFlight of them running on one
	// connection, with CodeTooMany.
	Handler Handler
	// OnNotify, when set, receives the notifications servers push to this
	// client, those of a connection one at a time and in order, on the
	// goroutine that reads it: it should return quickly, and must not
	// wait for a call on this client, whose answer may come on that very
	// connection (start the call on a goroutine of its own). Without it they
	// are dropped. A connection that fails loses what its server had not
	// yet sent; OnStateChange's Reconnected says when to ask again (for
	// example to LISTEN again). With Handler or OnNotify set, every
	// connection is read at all times.
	OnNotify func(Notification)
	// Stats receives the client's metrics; see the Stat constants.
	// Default stats.Nop.
	Stats stats.Recorder
	// Observer, when set, is called once per completed call with its
	// outcome, for end-to-end timing or tracing.
	Observer func(CallInfo)

	// HealthCheck, when its Interval is set, probes every address over
	// one of its connections and takes an address whose probe fails out
	// of balancing until a later probe succeeds.
	HealthCheck HealthCheck
	// OutlierFailures is how many calls in a row may fail on an address
	// (its connection broke under them, or their deadline passed while it
	// held them) before the address is ejected: taken out of balancing
	// for a wait drawn from OutlierBackoff that grows with each ejection
	// in a row. Call, CallAppend and Pipeline.Flush count; a Go
	// call counts only its retries, and Notify, which does not wait for
	// answers, not at all. Default DefaultOutlierFailures; negative: never
	// eject.
	OutlierFailures int
	// OutlierBackoff spaces an ejected address's returns to service.
	// Default DefaultOutlierBackoffBase and DefaultOutlierBackoffMax.
	OutlierBackoff Backoff
}

// Validate reports settings out of range, wrapping ErrInvalidConfig.
func (c *Config) Validate() error {
	if err := c.Limits.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	switch {
	case c.ConnsPerAddr < 0:
		return fmt.Errorf("%w: ConnsPerAddr %d is negative", ErrInvalidConfig, c.ConnsPerAddr)
	case c.MaxInFlight < 0:
		return fmt.Errorf("%w: MaxInFlight %d is negative", ErrInvalidConfig, c.MaxInFlight)
	case c.StreamWindow < 0 || c.StreamWindow > 1<<30:
		return fmt.Errorf("%w: StreamWindow %d is out of range", ErrInvalidConfig, c.StreamWindow)
	case c.DialTimeout < 0:
		return fmt.Errorf("%w: DialTimeout %v is negative", ErrInvalidConfig, c.DialTimeout)
	case c.ExtraIdleTimeout < 0:
		return fmt.Errorf("%w: ExtraIdleTimeout %v is negative", ErrInvalidConfig, c.ExtraIdleTimeout)
	case c.DrainTimeout < 0:
		return fmt.Errorf("%w: DrainTimeout %v is negative", ErrInvalidConfig, c.DrainTimeout)
	case c.Protocol < ProtocolAuto || c.Protocol > ProtocolMux:
		return fmt.Errorf("%w: unknown %v", ErrInvalidConfig, c.Protocol)
	case c.Codec != nil && c.Protocol == ProtocolMux:
		return fmt.Errorf("%w: a Codec has no multiplexed mode", ErrInvalidConfig)
	case c.Balancer < PowerOfTwo || c.Balancer > Rendezvous:
		return fmt.Errorf("%w: unknown %v", ErrInvalidConfig, c.Balancer)
	}
	if err := c.HealthCheck.validate(); err != nil {
		return err
	}
	if err := c.RetryBackoff.validate("RetryBackoff"); err != nil {
		return err
	}
	if err := c.OutlierBackoff.validate("OutlierBackoff"); err != nil {
		return err
	}
	return c.ReconnectBackoff.validate("ReconnectBackoff")
}

func (b Backoff) validate(name string) error {
	switch {
	case b.Base < 0 || b.Max < 0:
		return fmt.Errorf("%w: %s %+v is negative", ErrInvalidConfig, name, b)
	case b.Max != 0 && b.Base > b.Max:
		return fmt.Errorf("%w: %s.Base %v exceeds Max %v", ErrInvalidConfig, name, b.Base, b.Max)
	}
	return nil
}

// withDefaults returns c with every zero value replaced by its default.
func (c Config) withDefaults() Config {
	c.ConnsPerAddr = defaults.Or(c.ConnsPerAddr, DefaultConnsPerAddr)
	c.MaxInFlight = defaults.Or(c.MaxInFlight, DefaultMaxInFlight)
	c.DialTimeout = defaults.Or(c.DialTimeout, DefaultDialTimeout)
	c.DrainTimeout = defaults.Or(c.DrainTimeout, DefaultDrainTimeout)
	c.OverdueAfter = defaults.Or(c.OverdueAfter, DefaultOverdueAfter)
	c.MaxExtraConns = defaults.Or(c.MaxExtraConns, DefaultMaxExtraConns)
	c.ExtraIdleTimeout = defaults.Or(c.ExtraIdleTimeout, DefaultExtraIdleTimeout)
	c.BulkThreshold = defaults.Or(c.BulkThreshold, DefaultBulkThreshold)
	c.MaxRetries = defaults.Or(c.MaxRetries, DefaultMaxRetries)
	if c.MaxRetries < 0 {
		c.MaxRetries = 0
	}
	c.RetryBackoff = c.RetryBackoff.withDefaults(DefaultRetryBackoffBase, DefaultRetryBackoffMax)
	c.ReconnectBackoff = c.ReconnectBackoff.withDefaults(DefaultReconnectBackoffBase, DefaultReconnectBackoffMax)
	c.OutlierFailures = defaults.Or(c.OutlierFailures, DefaultOutlierFailures)
	c.OutlierBackoff = c.OutlierBackoff.withDefaults(DefaultOutlierBackoffBase, DefaultOutlierBackoffMax)
	c.HealthCheck = c.HealthCheck.withDefaults()
	if c.Stats == nil {
		c.Stats = stats.Nop{}
	}
	return c
}

func (b Backoff) withDefaults(base, maxWait time.Duration) Backoff {
	b.Base = defaults.Or(b.Base, base)
	b.Max = defaults.Or(b.Max, max(maxWait, b.Base))
	return b
}
