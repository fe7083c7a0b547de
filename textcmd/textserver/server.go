package textserver

import (
	"context"
	"errors"
	"strings"

	"github.com/tcpez/tcpez/frame"
	"github.com/tcpez/tcpez/server"
	"github.com/tcpez/tcpez/span"
	"github.com/tcpez/tcpez/textcmd"
)

// DefaultReadBufferSize is a text server's read buffer when
// cfg.ReadBufferSize is zero: a request with a 4 KiB value and its line
// arrives with one read, where the 4 KiB of server.DefaultConnBufferSize took
// two.
const DefaultReadBufferSize = 16 << 10

// NewServer returns a server.Server that serves the commands of mux with
// cfg, as any tcpez server is configured, except that cfg.Codec becomes
// mux's Codec, the read buffer is DefaultReadBufferSize unless set and
// holds at least a line, and a handler panic
// is answered with an error line ("SERVER_ERROR internal error") unless
// cfg.EncodeError says otherwise.
func NewServer(mux *Mux, cfg server.Config) *server.Server {
	cfg.Codec = mux.Codec()
	if cfg.ReadBufferSize == 0 {
		cfg.ReadBufferSize = DefaultReadBufferSize
	}
	cfg.ReadBufferSize = max(cfg.ReadBufferSize, mux.cfg.Limits.LineLimit())
	if cfg.EncodeError == nil {
		cfg.EncodeError = mux.encodeError
	}
	return server.New(mux, cfg)
}

// encodeError answers what reaches the engine as an error: a panic gets an
// error line and the connection goes on; a protocol error closes it.
func (m *Mux) encodeError(_ context.Context, err error, _ *span.Span) ([]byte, bool) {
	if errors.Is(err, textcmd.ErrProtocol) {
		// Answered only when the engine closes the connection after
		// (server.CloseAfter): the stream is out of step.
		if !errors.Is(err, server.ErrCloseConnection) {
			return nil, false
		}
		return appendLine(nil, m.cfg.ProtocolErrorStatus, protocolText(err)), true
	}
	if errors.Is(err, server.ErrHandlerPanic) {
		return appendLine(nil, m.cfg.ErrorStatus, "internal error"), true
	}
	return m.appendError(nil, err), true
}

// Codec returns the server.Codec of the Mux's protocol, which frames
// requests by RequestGrammar.
func (m *Mux) Codec() server.Codec { return codec{g: m.RequestGrammar(), lim: m.cfg.Limits} }

type codec struct {
	g   textcmd.Grammar
	lim textcmd.Limits
}

func (c codec) RequestLen(r *frame.Reader) (int, error) {
	return textcmd.Over(r, c.g, c.lim).NextLen()
}

func (c codec) Whole(r *frame.Reader) (int, bool) {
	if r.Buffered() == 0 {
		// The engine asks after each answer too, mostly of an empty buffer.
		return 0, false
	}
	b, _ := r.Peek(r.Buffered())
	n, ok, err := textcmd.NextLen(b, c.g, c.lim)
	return n, ok && err == nil && n <= len(b)
}

func (c codec) WriteAnswer(w *frame.Writer, answer []byte) error {
	if len(answer) == 0 {
		return nil
	}
	_, err := w.Write(answer)
	return err
}

// protocolText says what is wrong with a request that breaks the
// protocol, in memcached's words where it has some.
func protocolText(err error) string {
	if errors.Is(err, textcmd.ErrBadDataEnd) {
		return "bad data chunk"
	}
	return strings.TrimPrefix(err.Error(), "tcpez/textcmd: ")
}
