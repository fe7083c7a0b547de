package client

import (
	"context"
	"errors"
	"time"

	"github.com/tcpez/tcpez/frame"
	"github.com/tcpez/tcpez/span"
)

// Metric names sent to Config.Stats.
const (
	StatCalls        = "client.calls"       // count, one per call of any kind
	StatErrors       = "client.errors"      // count, one per failed call
	StatCallTime     = "client.call"        // timing, per call, retries included
	StatRetries      = "client.retries"     // count, one per retry
	StatConns        = "client.conns"       // gauge, usable connections
	StatDialErrors   = "client.dial_errors" // count
	StatConnected    = "client.connected"   // count of Connected events
	StatDisconnected = "client.disconnected"
	StatReconnected  = "client.reconnected"

	// A failed call also counts under StatErrors + "." + its kind.
	StatErrTimeout  = "client.errors.timeout"  // context deadline
	StatErrCanceled = "client.errors.canceled" // context canceled
	StatErrClosed   = "client.errors.closed"   // ErrClosed
	StatErrNoConn   = "client.errors.no_conn"  // ErrNoConnection
	StatErrProtocol = "client.errors.protocol" // frame.ErrProtocol
	StatErrConnLost = "client.errors.conn_lost"
	StatErrOther    = "client.errors.other"
)

// Op is the kind of call a CallInfo describes.
type Op uint8

const (
	OpCall     Op = iota + 1 // Call and CallAppend
	OpGo                     // a future from Go
	OpNotify                 // Notify: done once sent
	OpPipeline               // one Pipeline.Flush
)

func (o Op) String() string {
	switch o {
	case OpCall:
		return "call"
	case OpGo:
		return "go"
	case OpNotify:
		return "notify"
	case OpPipeline:
		return "pipeline"
	}
	return "unknown"
}

// CallInfo describes one completed call, for Config.Observer.
type CallInfo struct {
	// ID tells calls apart in logs and traces, as the server's span IDs
	// do for requests. The wire has no room for it: it stays client-side.
	ID   span.ID
	Op   Op
	Addr string // where the last attempt went; empty if none got that far
	// Duration runs from the call to its result, waits and retries
	// included.
	Duration time.Duration
	ReqBytes int // payload bytes sent, headers excluded
	AnsBytes int // payload bytes received
	Attempts int
	Err      error
}

func (c *Client) record(op Op, start time.Time, o *outcome, reqBytes, ansBytes int, err error) {
	d := time.Since(start)
	rec := c.cfg.Stats
	rec.Count(StatCalls, 1)
	rec.Timing(StatCallTime, d)
	if err != nil {
		rec.Count(StatErrors, 1)
		rec.Count(errorStat(err), 1)
	}
	if f := c.cfg.Observer; f != nil {
		f(CallInfo{ID: span.NewID(), Op: op, Addr: o.addr, Duration: d, ReqBytes: reqBytes,
			AnsBytes: max(ansBytes, 0), Attempts: o.attempts, Err: err})
	}
}

// errorStat names the kind of a call's error.
func errorStat(err error) string {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return StatErrTimeout
	case errors.Is(err, context.Canceled):
		return StatErrCanceled
	case errors.Is(err, ErrClosed):
		return StatErrClosed
	case errors.Is(err, ErrNoConnection):
		return StatErrNoConn
	case errors.Is(err, frame.ErrProtocol):
		return StatErrProtocol
	case errors.Is(err, ErrConnLost):
		return StatErrConnLost
	}
	return StatErrOther
}
