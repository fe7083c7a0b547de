package textserver

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/tcpez/tcpez/server"
	"github.com/tcpez/tcpez/span"
	"github.com/tcpez/tcpez/textcmd"
)

// Defaults for the zero values of Config.
const (
	DefaultErrorStatus   = "SERVER_ERROR"
	DefaultUnknownStatus = "ERROR"
	DefaultTimeoutText   = "timeout"
	// DefaultProtocolErrorStatus is memcached's word for a request it
	// cannot read.
	DefaultProtocolErrorStatus = "CLIENT_ERROR"
)

// Config configures a Mux. The zero value means the defaults, which are
// memcached's words.
type Config struct {
	// Limits bound what a client may send; see textcmd.Limits.
	Limits textcmd.Limits
	// ErrorStatus starts the line that answers a handler's error that is
	// not an *Error, followed by the error's text. Default
	// DefaultErrorStatus.
	ErrorStatus string
	// ProtocolErrorStatus starts the line that answers a request that
	// breaks the protocol (a data block not ending where its byte count
	// says, a line over the limits), followed by what is wrong; the
	// connection, out of step, then closes. Default
	// DefaultProtocolErrorStatus.
	ProtocolErrorStatus string
	// UnknownStatus answers a command nobody registered, and a command
	// with fewer or more arguments than it takes. Default
	// DefaultUnknownStatus.
	UnknownStatus string
	// NotFound, when set, answers a command nobody registered, in place
	// of the UnknownStatus line: memcached, for one, closes the
	// connection on an HTTP request line (server.ErrCloseConnection). It
	// runs as a synchronous handler without a timeout.
	NotFound HandlerFunc
	// Replies describe the response lines that carry a data block or
	// continue a multi-part response, by status, for clients (Grammar).
	// memcached's: {"VALUE": {CountArg: 3, Continues: true}, "STAT":
	// {Continues: true}}. They play no part in reading requests, nor the
	// commands in reading responses: a status may share a command's name.
	Replies map[string]Reply
	// Timeout bounds every command whose Command.Timeout is zero.
	// Default: none.
	Timeout time.Duration
}

// Reply says how a client reads a response line of some status.
type Reply struct {
	// CountArg is which argument, counting from 1 after the status, is
	// the byte count of the data block that follows; 0: none.
	CountArg int
	// Continues says that more lines follow, up to a line whose status
	// does not continue: the line is one part of a multi-part response.
	Continues bool
}

// Command says how a command is read and run.
type Command struct {
	// CountArg is which argument, counting from 1 after the name, is the
	// byte count of the data block that follows the line; 0: the command
	// has none. (memcached's "set <key> <flags> <exptime> <bytes>" has 4.)
	CountArg int
	// MinArgs is the fewest arguments the command takes; fewer is
	// answered with Config.UnknownStatus, as memcached does. When
	// CountArg is set MinArgs is at least CountArg.
	MinArgs int
	// MaxArgs is the most arguments the command takes; more is answered
	// with Config.UnknownStatus, as memcached answers "ERROR" to a
	// "touch <key> <exptime> noreply extra". Zero: no limit.
	MaxArgs int
	// Timeout bounds the handler: its context ends then, and the command
	// is answered with an error line ("SERVER_ERROR timeout") — an async
	// handler's at once, whether or not it has called done; a sync
	// handler's when it returns, even with an answer, since it returned
	// late. Zero: Config.Timeout; negative: none.
	Timeout time.Duration
}

// Request is one command as its handler sees it. Name, Args and Data alias
// the connection's buffer: a synchronous handler must not keep them after
// it returns. (An asynchronous handler gets a copy of its own.)
type Request struct {
	textcmd.Message
	// Span is the request's span, which the server logs and records.
	Span *span.Span
}

// HandlerFunc answers a command by appending to resp. An error answers
// the command instead, with a status line (see Error); whatever was
// appended to resp is then dropped.
type HandlerFunc func(ctx context.Context, req *Request, resp *Response) error

// AsyncHandlerFunc starts a command and returns; the answer comes later
// from any goroutine, by calling done once with the response (which may
// be resp) or an error. After the command's timeout, done may still be
// called and its answer is dropped.
type AsyncHandlerFunc func(ctx context.Context, req *Request, resp *Response, done func(*Response, error))

// Error is a handler error answered with a status line of its own:
// "Status Text", or "Status" alone when Text is empty.
type Error struct {
	Status string
	Text   string
}

func (e *Error) Error() string {
	if e.Text == "" {
		return e.Status
	}
	return e.Status + " " + e.Text
}

// Errorf returns an *Error with the status and the formatted text.
func Errorf(status, format string, args ...any) error {
	return &Error{Status: status, Text: fmt.Sprintf(format, args...)}
}

type command struct {
	name string
	Command
	sync    HandlerFunc
	async   AsyncHandlerFunc
	timeout time.Duration
}

// Mux routes commands by name to their handlers. It is a server.Handler
// for a server whose Codec is the Mux's (see NewServer). Register every
// command before serving.
type Mux struct {
	cfg      Config
	byFirst  [256][]*command // the commands by their name's first byte (lookup)
	notFound *command        // nil without Config.NotFound
	calls    sync.Pool       // *exchange, reused from request to request
}

// NewMux returns a Mux with no commands.
func NewMux(cfg Config) *Mux {
	if cfg.ErrorStatus == "" {
		cfg.ErrorStatus = DefaultErrorStatus
	}
	if cfg.UnknownStatus == "" {
		cfg.UnknownStatus = DefaultUnknownStatus
	}
	if cfg.ProtocolErrorStatus == "" {
		cfg.ProtocolErrorStatus = DefaultProtocolErrorStatus
	}
	m := &Mux{cfg: cfg}
	if cfg.NotFound != nil {
		m.notFound = &command{sync: cfg.NotFound}
	}
	m.calls.New = func() any { return new(exchange) }
	return m
}

// HandleFunc registers h for the command name, replacing any handler it
// had. It panics on a name that cannot open a line (textcmd.ValidName) or
// a negative CountArg.
func (m *Mux) HandleFunc(name string, h HandlerFunc, c Command) {
	m.register(name, &command{Command: c, sync: h})
}

// HandleAsync registers an asynchronous handler for the command name.
func (m *Mux) HandleAsync(name string, h AsyncHandlerFunc, c Command) {
	m.register(name, &command{Command: c, async: h})
}

func (m *Mux) register(name string, c *command) {
	if !textcmd.ValidName([]byte(name)) || c.CountArg < 0 || c.MinArgs < 0 || c.MaxArgs < 0 {
		panic(fmt.Sprintf("tcpez/textserver: bad command %q", name))
	}
	c.name = name
	c.MinArgs = max(c.MinArgs, c.CountArg)
	c.timeout = c.Timeout
	if c.timeout == 0 {
		c.timeout = m.cfg.Timeout
	}
	b := m.byFirst[name[0]]
	if i := slices.IndexFunc(b, func(o *command) bool { return o.name == name }); i >= 0 {
		b[i] = c // replaced
		return
	}
	m.byFirst[name[0]] = append(b, c)
}

// lookup finds the command name, or nil. Twice a request, once to frame
// it and once to run it, so it neither hashes nor converts the name: a
// protocol has a few commands, found by first byte, then length and
// bytes.
func (m *Mux) lookup(name []byte) *command {
	if len(name) == 0 {
		return nil
	}
	for _, c := range m.byFirst[name[0]] {
		if c.name == string(name) {
			return c
		}
	}
	return nil
}

// Grammar is the grammar of the Mux's responses, which a client reads
// them with (textclient.Config.Grammar): the byte count positions of
// Config.Replies, and which replies continue a response. The commands play
// no part in it: a status may share a command's name without carrying
// its data block.
func (m *Mux) Grammar() textcmd.Grammar {
	return textcmd.Grammar{CountArg: m.replyCountArg, Continues: m.continues}
}

// RequestGrammar is the grammar of the Mux's requests, by which its Codec
// frames them: the byte count positions of its commands. Config.Replies
// play no part in it: a request named like a status is an unknown
// command, its line alone.
func (m *Mux) RequestGrammar() textcmd.Grammar {
	return textcmd.Grammar{CountArg: m.commandCountArg}
}

func (m *Mux) commandCountArg(name []byte) int {
	if c := m.lookup(name); c != nil {
		return c.CountArg - 1
	}
	return -1
}

func (m *Mux) replyCountArg(status []byte) int {
	return m.cfg.Replies[string(status)].CountArg - 1
}

func (m *Mux) continues(status []byte) bool { return m.cfg.Replies[string(status)].Continues }

// exchange is what one request needs, pooled: two allocations fewer per
// request, and the argument slice reused.
type exchange struct {
	req  Request
	resp Response
}

// Respond parses one request, as the Mux's Codec delimited it, and runs
// its command.
func (m *Mux) Respond(ctx context.Context, raw []byte, sp *span.Span) ([]byte, error) {
	return m.RespondAppend(ctx, nil, raw, sp)
}

// RespondAppend is Respond appending the answer to dst: the Mux is a
// server.AppendHandler, so that the server's connections keep the answer
// buffers from request to request and a request allocates none.
func (m *Mux) RespondAppend(ctx context.Context, dst, raw []byte, sp *span.Span) ([]byte, error) {
	x := m.calls.Get().(*exchange)
	defer func() {
		// The answer's bytes now belong to the server; the rest is reused.
		x.resp.buf, x.req.Name, x.req.Data, x.req.Span = nil, nil, nil, nil
		clear(x.req.Args)
		m.calls.Put(x)
	}()
	req, resp := &x.req, &x.resp
	resp.buf = dst
	if err := m.parse(raw, &req.Message); err != nil {
		return nil, server.CloseAfter(err) // answered, then the stream ends
	}
	c := m.lookup(req.Name)
	switch {
	case c == nil && m.notFound != nil:
		c = m.notFound
	case c == nil || len(req.Args) < c.MinArgs || (c.MaxArgs > 0 && len(req.Args) > c.MaxArgs):
		resp.Line(m.cfg.UnknownStatus)
		return resp.buf, nil
	default:
		sp.Attr("command", c.name)
	}
	req.Span = sp
	err := m.run(ctx, c, req, resp)
	if errors.Is(err, server.ErrCloseConnection) {
		return nil, err
	}
	if err != nil {
		resp.buf = m.appendError(resp.buf[:0], err)
	}
	return resp.buf, nil
}

// parse splits raw, one whole message as the Mux's Codec measured it,
// into msg: the name and arguments of its line and, after the line, the
// data block whose byte count the Codec read from the line already, so
// that the line is tokenized once more here rather than twice.
func (m *Mux) parse(raw []byte, msg *textcmd.Message) error {
	rest, line, ok, err := textcmd.ParseLine(raw, m.cfg.Limits)
	if !ok || err != nil {
		// The codec checked the line; only a data block that does not end
		// where its count says is left, and the stream is out of sync.
		return errors.Join(textcmd.ErrBadDataEnd, err)
	}
	if msg.Name, msg.Args, err = textcmd.SplitLine(line, msg.Args[:0], m.cfg.Limits); err != nil {
		return errors.Join(textcmd.ErrBadDataEnd, err)
	}
	msg.Data = nil
	if len(rest) == 0 {
		return nil
	}
	n := len(rest) - 2
	if n < 0 || rest[n] != '\r' || rest[n+1] != '\n' {
		return textcmd.ErrBadDataEnd
	}
	msg.Data = rest[:n:n]
	return nil
}

func (m *Mux) run(ctx context.Context, c *command, req *Request, resp *Response) error {
	if c.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	if c.sync != nil {
		if err := c.sync(ctx, req, resp); err != nil {
			return err
		}
		if c.timeout > 0 && ctx.Err() != nil {
			return ctx.Err() // answered too late: the client was promised the timeout
		}
		return nil
	}
	return m.runAsync(ctx, c, copyRequest(req), resp)
}

type result struct {
	resp *Response
	err  error
}

func (m *Mux) runAsync(ctx context.Context, c *command, req *Request, resp *Response) error {
	answered := make(chan result, 1)
	var once sync.Once
	c.async(ctx, req, &Response{}, func(r *Response, err error) {
		once.Do(func() { answered <- result{r, err} })
	})
	select {
	case res := <-answered:
		if res.err == nil && res.resp != nil {
			resp.buf = res.resp.buf
		}
		return res.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// copyRequest copies a request's bytes for a handler that may outlive the
// connection's buffer.
func copyRequest(req *Request) *Request {
	cp := &Request{Span: req.Span}
	cp.Name = append([]byte(nil), req.Name...)
	for _, a := range req.Args {
		cp.Args = append(cp.Args, append([]byte(nil), a...))
	}
	if req.Data != nil {
		cp.Data = append([]byte{}, req.Data...)
	}
	return cp
}

// appendError appends the status line that answers err.
func (m *Mux) appendError(buf []byte, err error) []byte {
	if e, ok := errors.AsType[*Error](err); ok {
		return appendLine(buf, e.Status, e.Text)
	}
	text := err.Error()
	if errors.Is(err, context.DeadlineExceeded) {
		text = DefaultTimeoutText
	}
	return appendLine(buf, m.cfg.ErrorStatus, text)
}

// appendLine appends "status text\r\n", the text on one line.
func appendLine(buf []byte, status, text string) []byte {
	buf = append(buf, status...)
	if text != "" {
		buf = append(buf, ' ')
		buf = append(buf, strings.Map(oneLine, text)...)
	}
	return append(buf, '\r', '\n')
}

func oneLine(r rune) rune {
	if r == '\r' || r == '\n' {
		return ' '
	}
	return r
}
