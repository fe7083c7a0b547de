package textserver_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/tcpez/tcpez/server"
	"github.com/tcpez/tcpez/textcmd"
	"github.com/tcpez/tcpez/textcmd/textserver"
)

var fuzzLimits = textcmd.Limits{MaxLineLength: 128, MaxArgs: 8, MaxDataSize: 256}

// fuzzMux answers ECHO <bytes> with DATA <bytes> and the data; anything
// else is an unknown command.
func fuzzMux() *textserver.Mux {
	mux := textserver.NewMux(textserver.Config{Limits: fuzzLimits})
	mux.HandleFunc("ECHO", func(_ context.Context, req *textserver.Request, resp *textserver.Response) error {
		resp.Message("DATA", [][]byte{req.Arg(0)}, req.Data)
		return nil
	}, textserver.Command{CountArg: 1})
	return mux
}

// expectedAnswers is what the server must answer: one answer per whole
// message before the first fault or the end, computed with the pure
// parser.
func expectedAnswers(data []byte, g textcmd.Grammar) []byte {
	var out []byte
	var m textcmd.Message
	for len(data) > 0 {
		rest, ok, err := textcmd.ParseMessage(data, g, fuzzLimits, &m)
		if err != nil {
			// What is wrong, before the close (server.CloseAfter).
			text := strings.TrimPrefix(err.Error(), "tcpez/textcmd: ")
			if errors.Is(err, textcmd.ErrBadDataEnd) {
				text = "bad data chunk"
			}
			return append(out, "CLIENT_ERROR "+text+"\r\n"...)
		}
		if !ok {
			return out // the stream ended inside a message: nobody to tell
		}
		if string(m.Name) == "ECHO" && len(m.Args) >= 1 {
			out = textcmd.AppendMessage(out, []byte("DATA"), m.Args[:1], m.Data)
		} else {
			out = append(out, "ERROR\r\n"...)
		}
		data = rest
	}
	return out
}

// FuzzConn drives a text server's connections with arbitrary bytes,
// written in two pieces: it answers exactly the whole requests before the
// first fault and, for a fault that is not the end of the stream, a
// CLIENT_ERROR line, then closes, and never hangs or crashes.
func FuzzConn(f *testing.F) {
	f.Add([]byte("ECHO 5\r\nhello\r\nECHO 0\r\n\r\nNOPE\r\n"), uint16(3))
	f.Add([]byte("ECHO 2\r\nhello\r\n"), uint16(9))
	f.Add([]byte("ECHO x\r\n\nECHO\n"), uint16(1))
	f.Add([]byte("GET / HTTP/1.1\r\n\r\n"), uint16(4))
	f.Add([]byte("\x00\x00\x00\x04PING"), uint16(2))
	mux := fuzzMux()
	_, addr := serve(f, mux, server.Config{ReadTimeout: 2 * time.Second})
	f.Fuzz(func(t *testing.T, data []byte, split uint16) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(safety))
		cut := int(split) % (len(data) + 1)
		go func() {
			_, _ = c.Write(data[:cut])
			_, _ = c.Write(data[cut:])
			_ = c.(*net.TCPConn).CloseWrite()
		}()
		got, err := io.ReadAll(c)
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatalf("the server neither answered nor closed within %v", safety)
		}
		if want := expectedAnswers(data, mux.RequestGrammar()); !bytes.Equal(got, want) {
			t.Fatalf("answers %q\nwant    %q", got, want)
		}
	})
}
