package textserver_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/sirupsen/logrus/hooks/test"
	"go.uber.org/goleak"

	"github.com/tcpez/tcpez/internal/testcert"
	"github.com/tcpez/tcpez/server"
	"github.com/tcpez/tcpez/span"
	"github.com/tcpez/tcpez/stats"
	"github.com/tcpez/tcpez/textcmd/textserver"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// safety bounds every blocking step, so that a bug fails a test instead of
// hanging it. It is never the thing asserted.
const safety = 10 * time.Second

// testMux has the commands the tests use. held is where HOLD waits:
// started is sent on when it starts, release lets it answer.
type holds struct {
	started chan string
	release chan struct{}
}

func testMux(h *holds) *textserver.Mux {
	mux := textserver.NewMux(textserver.Config{Replies: map[string]textserver.Reply{
		"DATA": {CountArg: 1}, "ITEM": {Continues: true},
	}})
	// ECHO <bytes>: answers DATA <bytes> and the data.
	mux.HandleFunc("ECHO", func(_ context.Context, req *textserver.Request, resp *textserver.Response) error {
		resp.Message("DATA", [][]byte{req.Arg(0)}, req.Data)
		return nil
	}, textserver.Command{CountArg: 1})
	// PUT <key> <bytes> <tag>: the byte count in the middle.
	mux.HandleFunc("PUT", func(_ context.Context, req *textserver.Request, resp *textserver.Response) error {
		resp.Line("PUT", string(req.Arg(0)), string(req.Data), string(req.Arg(2)))
		return nil
	}, textserver.Command{CountArg: 2, MinArgs: 3, MaxArgs: 3})
	mux.HandleFunc("FAST", func(_ context.Context, req *textserver.Request, resp *textserver.Response) error {
		h.started <- "FAST " + string(req.Arg(0))
		resp.Line("FAST", string(req.Arg(0)))
		return nil
	}, textserver.Command{MinArgs: 1})
	mux.HandleAsync("HOLD", func(_ context.Context, _ *textserver.Request, resp *textserver.Response, done func(*textserver.Response, error)) {
		h.started <- "HOLD"
		go func() {
			<-h.release
			resp.Line("HELD")
			done(resp, nil)
		}()
	}, textserver.Command{})
	mux.HandleAsync("NEVER", func(context.Context, *textserver.Request, *textserver.Response, func(*textserver.Response, error)) {
	}, textserver.Command{Timeout: 20 * time.Millisecond})
	mux.HandleFunc("STUCK", func(ctx context.Context, _ *textserver.Request, _ *textserver.Response) error {
		<-ctx.Done()
		return ctx.Err()
	}, textserver.Command{Timeout: 20 * time.Millisecond})
	mux.HandleFunc("SLEEP", func(_ context.Context, _ *textserver.Request, resp *textserver.Response) error {
		time.Sleep(2 * time.Millisecond) // slower than the engine's inline budget
		resp.Line("SLEPT")
		return nil
	}, textserver.Command{})
	mux.HandleFunc("FAIL", func(context.Context, *textserver.Request, *textserver.Response) error {
		return errors.New("disk on fire\r\nsecond line")
	}, textserver.Command{})
	mux.HandleFunc("REFUSE", func(context.Context, *textserver.Request, *textserver.Response) error {
		return textserver.Errorf("CLIENT_ERROR", "no %s", "thanks")
	}, textserver.Command{})
	mux.HandleFunc("PANIC", func(context.Context, *textserver.Request, *textserver.Response) error {
		panic("boom")
	}, textserver.Command{})
	mux.HandleFunc("LIST", func(_ context.Context, _ *textserver.Request, resp *textserver.Response) error {
		resp.Line("ITEM", "a")
		resp.Line("ITEM", "b")
		resp.Line("END")
		return nil
	}, textserver.Command{})
	mux.HandleFunc("QUIT", func(context.Context, *textserver.Request, *textserver.Response) error {
		return server.ErrCloseConnection
	}, textserver.Command{})
	return mux
}

func newHolds() *holds {
	return &holds{started: make(chan string, 100), release: make(chan struct{})}
}

func quiet() *logrus.Logger {
	l := logrus.New()
	l.SetOutput(io.Discard)
	return l
}

// serve starts a text server for mux on a loopback port.
func serve(t testing.TB, mux *textserver.Mux, cfg server.Config) (*server.Server, string) {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = quiet()
	}
	srv := textserver.NewServer(mux, cfg)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-served; !errors.Is(err, server.ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
	})
	return srv, l.Addr().String()
}

// shutdown stops srv gracefully, which returns once every connection has
// ended and been logged.
func shutdown(t *testing.T, srv *server.Server) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), safety)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
}

type conn struct {
	net.Conn
	r *bufio.Reader
}

func dial(t *testing.T, network, addr string) *conn {
	t.Helper()
	c, err := net.DialTimeout(network, addr, safety)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(safety))
	return &conn{c, bufio.NewReader(c)}
}

func (c *conn) send(t *testing.T, s string) {
	t.Helper()
	if _, err := io.WriteString(c, s); err != nil {
		t.Fatal(err)
	}
}

// expect reads exactly len(want) bytes and compares.
func (c *conn) expect(t *testing.T, want string) {
	t.Helper()
	got := make([]byte, len(want))
	if _, err := io.ReadFull(c.r, got); err != nil || string(got) != want {
		t.Fatalf("read %q, %v; want %q", got, err, want)
	}
}

func (c *conn) expectClosed(t *testing.T) {
	t.Helper()
	rest, err := io.ReadAll(c.r)
	if err != nil || len(rest) != 0 {
		t.Fatalf("after the end: %q, %v; want the connection closed", rest, err)
	}
}

// TestCommands: the first request on a new connection, the byte count at
// the first and at a middle argument, a data block holding CRLF, a
// multi-part answer, an unknown command and one short of arguments.
func TestCommands(t *testing.T) {
	_, addr := serve(t, testMux(newHolds()), server.Config{})
	c := dial(t, "tcp", addr)
	// Too many arguments is ERROR too; the data block is skipped.
	c.send(t, "ECHO 7\r\nab\r\ncde\r\nPUT k 3 tag\r\nxyz\r\nLIST\r\nNOPE 1\r\nPUT k\r\nPUT k 1 tag more\r\nz\r\nFAST 1\r\n")
	c.expect(t, "DATA 7\r\nab\r\ncde\r\nPUT k xyz tag\r\nITEM a\r\nITEM b\r\nEND\r\nERROR\r\nERROR\r\nERROR\r\nFAST 1\r\n")
}

// TestPipelinedAnswersInOrder: a held request and fast ones pipelined
// behind it; the fast ones run while the first is held, and every answer
// still leaves in request order.
//
// The engine runs a lone request on the connection's goroutine and hands
// pipelined ones to goroutines of their own once handlers prove slow: a
// SLOW request first makes them so.
func TestPipelinedAnswersInOrder(t *testing.T) {
	h := newHolds()
	_, addr := serve(t, testMux(h), server.Config{})
	c := dial(t, "tcp", addr)
	c.send(t, "SLEEP\r\n")
	c.expect(t, "SLEPT\r\n")
	c.send(t, "HOLD\r\nFAST 1\r\nFAST 2\r\n")
	// All three start, in whatever order their goroutines run, while HOLD
	// is held.
	started := map[string]bool{}
	for len(started) < 3 {
		select {
		case got := <-h.started:
			started[got] = true
		case <-time.After(safety):
			close(h.release)
			t.Fatalf("only %v started while HOLD was held", started)
		}
	}
	if !started["HOLD"] || !started["FAST 1"] || !started["FAST 2"] {
		t.Fatalf("started %v", started)
	}
	// Both fast handlers have answered; their answers wait for HOLD's.
	close(h.release)
	c.expect(t, "HELD\r\nFAST 1\r\nFAST 2\r\n")
}

// TestErrorsAreStatusLines: a handler's error, an *Error, a timeout of an
// async and of a sync handler, and a panic each answer one line, and the
// connection goes on.
func TestErrorsAreStatusLines(t *testing.T) {
	_, addr := serve(t, testMux(newHolds()), server.Config{})
	c := dial(t, "tcp", addr)
	c.send(t, "FAIL\r\nREFUSE\r\nNEVER\r\nSTUCK\r\nPANIC\r\nECHO 2\r\nok\r\n")
	c.expect(t, "SERVER_ERROR disk on fire  second line\r\n"+
		"CLIENT_ERROR no thanks\r\n"+
		"SERVER_ERROR timeout\r\n"+
		"SERVER_ERROR timeout\r\n"+
		"SERVER_ERROR internal error\r\n"+
		"DATA 2\r\nok\r\n")
}

// TestProtocolErrorCloses: a data block longer than its count leaves the
// stream out of sync: the answers before it are written, then the
// connection closes, counted as a protocol error.
func TestProtocolErrorCloses(t *testing.T) {
	for name, bad := range map[string][2]string{
		"data longer than its count": {"ECHO 2\r\nhello\r\n", "CLIENT_ERROR bad data chunk\r\n"},
		"count not a number":         {"ECHO two\r\nhi\r\n", "CLIENT_ERROR byte count is not a decimal number\r\n"},
		"line over the limit":        {"ECHO " + strings.Repeat("9", 5000) + "\r\n", "CLIENT_ERROR line too long: 4097, over the limit of 4096\r\n"},
	} {
		t.Run(name, func(t *testing.T) {
			logger, hook := test.NewNullLogger()
			logger.SetLevel(logrus.DebugLevel)
			rec := stats.NewMemory()
			srv, addr := serve(t, testMux(newHolds()), server.Config{Logger: logger, Stats: rec})
			c := dial(t, "tcp", addr)
			c.send(t, "LIST\r\n"+bad[0])
			// The answers before, what is wrong, then the close.
			c.expect(t, "ITEM a\r\nITEM b\r\nEND\r\n"+bad[1])
			c.expectClosed(t)
			shutdown(t, srv) // returns once the connection's end is logged
			// Answered first, the close is still a protocol error's.
			if n := rec.Counter(server.StatErrProtocol); n != 1 {
				t.Errorf("%s = %d, want 1", server.StatErrProtocol, n)
			}
			for _, e := range hook.AllEntries() {
				if strings.Contains(e.Message, "protocol error") {
					return
				}
			}
			t.Fatalf("no protocol error logged; entries: %d", len(hook.AllEntries()))
		})
	}
}

// TestNotFound: Config.NotFound answers the commands nobody registered,
// and may close the connection, as memcached does on an HTTP request.
func TestNotFound(t *testing.T) {
	mux := textserver.NewMux(textserver.Config{NotFound: func(_ context.Context, req *textserver.Request, resp *textserver.Response) error {
		if strings.HasPrefix(string(req.Arg(len(req.Args)-1)), "HTTP/") {
			return server.ErrCloseConnection
		}
		resp.Line("NO", string(req.Name))
		return nil
	}})
	mux.HandleFunc("PING", func(_ context.Context, _ *textserver.Request, resp *textserver.Response) error {
		resp.Line("PONG")
		return nil
	}, textserver.Command{})
	_, addr := serve(t, mux, server.Config{})
	c := dial(t, "tcp", addr)
	c.send(t, "PING\r\nBOGUS 1\r\nGET / HTTP/1.1\r\nPING\r\n")
	c.expect(t, "PONG\r\nNO BOGUS\r\n")
	c.expectClosed(t)
}

// TestQuit closes the connection after the answers before it, quietly.
func TestQuit(t *testing.T) {
	logger, hook := test.NewNullLogger()
	srv, addr := serve(t, testMux(newHolds()), server.Config{Logger: logger})
	c := dial(t, "tcp", addr)
	c.send(t, "LIST\r\nQUIT\r\nLIST\r\n")
	c.expect(t, "ITEM a\r\nITEM b\r\nEND\r\n")
	c.expectClosed(t)
	shutdown(t, srv)
	for _, e := range hook.AllEntries() {
		if e.Level <= logrus.InfoLevel {
			t.Fatalf("quit logged at %v: %s %v", e.Level, e.Message, e.Data)
		}
	}
}

// TestTLSAndUnix: the engine's TLS and Unix listeners serve text
// commands as they serve frames.
func TestTLSAndUnix(t *testing.T) {
	cert, pool := testcert.New(t, "text server")
	_, addr := serve(t, testMux(newHolds()), server.Config{TLS: &tls.Config{Certificates: []tls.Certificate{cert}}})
	tc, err := tls.DialWithDialer(&net.Dialer{Timeout: safety}, "tcp", addr, &tls.Config{RootCAs: pool})
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	tc.SetDeadline(time.Now().Add(safety))
	c := &conn{tc, bufio.NewReader(tc)}
	c.send(t, "ECHO 3\r\ntls\r\n")
	c.expect(t, "DATA 3\r\ntls\r\n")

	srv := textserver.NewServer(testMux(newHolds()), server.Config{Logger: quiet()})
	path := filepath.Join(t.TempDir(), "text.sock")
	served := make(chan error, 1)
	go func() { served <- srv.ListenAndServe("unix:" + path) }()
	var uc *conn
	for range 1000 {
		if nc, err := net.Dial("unix", path); err == nil {
			nc.SetDeadline(time.Now().Add(safety))
			uc = &conn{nc, bufio.NewReader(nc)}
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if uc == nil {
		t.Fatal("unix socket never served")
	}
	defer uc.Close()
	uc.send(t, "ECHO 4\r\nunix\r\n")
	uc.expect(t, "DATA 4\r\nunix\r\n")
	srv.Close()
	if err := <-served; !errors.Is(err, server.ErrServerClosed) {
		t.Fatal(err)
	}
}

// TestShutdownAnswersWhatItRead: Shutdown waits for a held request, whose
// answer still goes out, then closes.
func TestShutdownAnswersWhatItRead(t *testing.T) {
	h := newHolds()
	srv, addr := serve(t, testMux(h), server.Config{})
	c := dial(t, "tcp", addr)
	c.send(t, "HOLD\r\n")
	<-h.started
	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), safety)
		defer cancel()
		shut <- srv.Shutdown(ctx)
	}()
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned %v with a request in hand", err)
	case <-time.After(20 * time.Millisecond):
	}
	close(h.release)
	c.expect(t, "HELD\r\n")
	c.expectClosed(t)
	if err := <-shut; err != nil {
		t.Fatal(err)
	}
}

// TestSpansNameTheCommand: the request log carries the command's name.
func TestSpansNameTheCommand(t *testing.T) {
	logger, hook := test.NewNullLogger()
	logger.SetLevel(logrus.DebugLevel)
	srv, addr := serve(t, testMux(newHolds()), server.Config{Logger: logger})
	c := dial(t, "tcp", addr)
	c.send(t, "LIST\r\n")
	c.expect(t, "ITEM a\r\nITEM b\r\nEND\r\n")
	c.Close()
	shutdown(t, srv)
	for _, e := range hook.AllEntries() {
		if e.Message == "tcpez: request" && e.Data["command"] == "LIST" {
			return
		}
	}
	t.Fatalf("no request entry with command LIST in %d entries", len(hook.AllEntries()))
}

// TestShortFirstRequest: a first request shorter than a frame header is
// answered at once: a text connection is never read for the multiplexed
// mode's preface.
func TestShortFirstRequest(t *testing.T) {
	_, addr := serve(t, testMux(newHolds()), server.Config{})
	c := dial(t, "tcp", addr)
	c.send(t, "\n")
	c.expect(t, "ERROR\r\n")
}

// TestMuxLookup: commands that share a first byte are told apart by the
// rest of their name, a command registered again is replaced, and a name
// that is only a prefix of a command's is not that command.
func TestMuxLookup(t *testing.T) {
	mux := textserver.NewMux(textserver.Config{})
	answer := func(s string) textserver.HandlerFunc {
		return func(_ context.Context, _ *textserver.Request, resp *textserver.Response) error {
			resp.Line(s)
			return nil
		}
	}
	mux.HandleFunc("get", answer("OLD"), textserver.Command{})
	mux.HandleFunc("gets", answer("GETS"), textserver.Command{})
	mux.HandleFunc("get", answer("GET"), textserver.Command{})
	for req, want := range map[string]string{"get\r\n": "GET\r\n", "gets\r\n": "GETS\r\n", "ge\r\n": "ERROR\r\n",
		"getss\r\n": "ERROR\r\n", "\r\n": "ERROR\r\n"} {
		got, err := mux.Respond(context.Background(), []byte(req), span.New())
		if err != nil || string(got) != want {
			t.Errorf("%q answered %q, %v; want %q", req, got, err, want)
		}
	}
}

// TestRegisterRefusesBinaryMagic: a command named with a magic byte of
// memcached's binary protocol first, which no request line can open with,
// is refused when registered.
func TestRegisterRefusesBinaryMagic(t *testing.T) {
	for _, name := range []string{"\x80get", "\x81", "a b", ""} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("HandleFunc(%q) did not panic", name)
				}
			}()
			textserver.NewMux(textserver.Config{}).HandleFunc(name, nil, textserver.Command{})
		}()
	}
}

// TestRequestNamedLikeStatus: a request named like a status that carries
// a data block (Config.Replies' DATA) is an unknown command, its line
// alone, and the next line is the next request; a command's own name
// keeps its byte count.
func TestRequestNamedLikeStatus(t *testing.T) {
	mux := testMux(newHolds())
	_, addr := serve(t, mux, server.Config{})
	c := dial(t, "tcp", addr)
	c.send(t, "DATA 3\r\nLIST\r\nECHO 3\r\nabc\r\n")
	c.expect(t, "ERROR\r\nITEM a\r\nITEM b\r\nEND\r\nDATA 3\r\nabc\r\n")
	for name, want := range map[string]int{"DATA": -1, "ECHO": 0, "LIST": -1} {
		if got := mux.RequestGrammar().CountArg([]byte(name)); got != want {
			t.Errorf("RequestGrammar: %s has its byte count at %d, want %d", name, got, want)
		}
	}
	for name, want := range map[string]int{"DATA": 0, "ECHO": -1, "PUT": -1} {
		if got := mux.Grammar().CountArg([]byte(name)); got != want {
			t.Errorf("Grammar: %s has its byte count at %d, want %d", name, got, want)
		}
	}
}
