package textclient

import (
	"context"
	"fmt"

	"github.com/tcpez/tcpez/client"
	"github.com/tcpez/tcpez/frame"
	"github.com/tcpez/tcpez/textcmd"
)

// Config configures a Client. The zero value speaks a protocol of single
// lines with memcached's error statuses.
type Config struct {
	// Client configures the pooled, pipelining client underneath; its
	// Codec is set by New.
	Client client.Config
	// Grammar says which response lines carry data blocks and which
	// continue a response: textcmd.Memcached, or a textserver.Mux's
	// Grammar (its responses', not its RequestGrammar).
	Grammar textcmd.Grammar
	// Limits bound what a server may send. Limits.MaxLineLength may be at
	// most MaxLineLength.
	Limits textcmd.Limits
	// ErrorStatuses are the statuses that Call returns as a *StatusError.
	// Default DefaultErrorStatuses; empty after New only if set to a
	// non-nil empty slice.
	ErrorStatuses []string
}

// MaxLineLength is the longest response line a Client reads, its line
// ending included: a line is read whole into a connection's read buffer,
// which package client makes 128 KiB. New refuses a Limits.MaxLineLength
// over it, which the Client could not honour.
const MaxLineLength = 128 << 10

// DefaultErrorStatuses are memcached's error statuses.
var DefaultErrorStatuses = []string{"ERROR", "CLIENT_ERROR", "SERVER_ERROR"}

// StatusError is a response whose status says the command failed.
type StatusError struct {
	Status string
	Text   string // the rest of the line
}

func (e *StatusError) Error() string {
	if e.Text == "" {
		return "tcpez/textclient: " + e.Status
	}
	return "tcpez/textclient: " + e.Status + " " + e.Text
}

// Client sends requests and reads their responses. It is safe for
// concurrent use; concurrent calls are pipelined.
type Client struct {
	c      *client.Client
	g      textcmd.Grammar
	lim    textcmd.Limits
	errors map[string]bool
}

// New returns a Client of the servers at addrs; see client.New. Limits
// that textcmd.Limits.Validate refuses, or a MaxLineLength over
// MaxLineLength, are an error wrapping textcmd.ErrInvalidLimits.
func New(addrs []string, cfg Config) (*Client, error) {
	if err := cfg.Limits.Validate(); err != nil {
		return nil, err
	}
	if n := cfg.Limits.MaxLineLength; n > MaxLineLength {
		return nil, fmt.Errorf("%w: MaxLineLength %d over the %d a client's read buffer holds (textclient.MaxLineLength)",
			textcmd.ErrInvalidLimits, n, MaxLineLength)
	}
	cc := cfg.Client
	cc.Codec = codec{g: cfg.Grammar, lim: cfg.Limits}
	c, err := client.New(addrs, cc)
	if err != nil {
		return nil, err
	}
	statuses := cfg.ErrorStatuses
	if statuses == nil {
		statuses = DefaultErrorStatuses
	}
	tc := &Client{c: c, g: cfg.Grammar, lim: cfg.Limits, errors: make(map[string]bool)}
	for _, s := range statuses {
		tc.errors[s] = true
	}
	return tc, nil
}

// Close closes the connections; calls in flight fail.
func (c *Client) Close() error { return c.c.Close() }

// Raw returns the client underneath, for its stats and state.
func (c *Client) Raw() *client.Client { return c.c }

// Call sends req and returns its response. A response with an error
// status comes with a *StatusError; errors of the connection are those
// of package client.
func (c *Client) Call(ctx context.Context, req *Request) (*Response, error) {
	b, err := req.Build()
	if err != nil {
		return nil, err
	}
	raw, err := c.c.Call(ctx, b)
	if err != nil {
		return nil, err
	}
	return c.parse(raw)
}

// Future is a request in flight, started by Go.
type Future struct {
	c   *Client
	fut *client.Future
	err error
}

// Go sends req and returns at once; Wait returns its response.
func (c *Client) Go(ctx context.Context, req *Request) *Future {
	b, err := req.Build()
	if err != nil {
		return &Future{c: c, err: err}
	}
	return &Future{c: c, fut: c.c.Go(ctx, b)}
}

// Wait waits for the response, as Call returns it.
func (f *Future) Wait() (*Response, error) {
	if f.err != nil {
		return nil, f.err
	}
	raw, err := f.fut.Wait()
	if err != nil {
		return nil, err
	}
	return f.c.parse(raw)
}

func (c *Client) parse(raw []byte) (*Response, error) {
	_, parts, ok, err := textcmd.ParseResponse(raw, c.g, c.lim, nil)
	if err == nil && !ok {
		err = textcmd.ErrTruncated // cannot happen: the codec read it whole
	}
	if err != nil {
		return nil, err
	}
	resp := &Response{Parts: parts, raw: raw}
	last := parts[len(parts)-1]
	if c.errors[string(last.Name)] {
		return resp, &StatusError{Status: string(last.Name), Text: string(joinArgs(last.Args))}
	}
	return resp, nil
}

func joinArgs(args [][]byte) []byte {
	var b []byte
	for i, a := range args {
		if i > 0 {
			b = append(b, ' ')
		}
		b = append(b, a...)
	}
	return b
}

// Response is a whole response: its messages in order, the last one the
// closing line.
type Response struct {
	Parts []textcmd.Message
	raw   []byte
}

// Status is the name of the closing line: STORED, END, ….
func (r *Response) Status() string { return string(r.Parts[len(r.Parts)-1].Name) }

// Items are the parts before the closing line: the VALUE or STAT lines of
// a memcached response.
func (r *Response) Items() []textcmd.Message { return r.Parts[:len(r.Parts)-1] }

// Raw is the response's bytes as they came.
func (r *Response) Raw() []byte { return r.raw }

// codec is the client.Codec of a text protocol: requests go as built,
// responses are read whole by the grammar.
type codec struct {
	g   textcmd.Grammar
	lim textcmd.Limits
}

func (codec) AppendRequest(buf, req []byte) []byte { return append(buf, req...) }

func (c codec) ReadAnswer(r *frame.Reader, dst []byte) ([]byte, error) {
	return textcmd.Over(r, c.g, c.lim).ReadResponseRaw(dst)
}
