package textclient_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"go.uber.org/goleak"

	"github.com/tcpez/tcpez/client"
	"github.com/tcpez/tcpez/internal/memcachedtest"
	"github.com/tcpez/tcpez/server"
	"github.com/tcpez/tcpez/textcmd"
	"github.com/tcpez/tcpez/textcmd/textclient"
	"github.com/tcpez/tcpez/textcmd/textserver"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const safety = 10 * time.Second

func TestRequestBuilder(t *testing.T) {
	for _, tc := range []struct {
		req  *textclient.Request
		want string
		err  error
	}{
		{textclient.Cmd("get").Arg("a").Arg("b"), "get a b\r\n", nil},
		{textclient.Cmd("set").Arg("k").Uint(0).Int(-1).Count().Data([]byte("a\r\nb")), "set k 0 -1 4\r\na\r\nb\r\n", nil},
		{textclient.Cmd("PUT").Arg("k").Count().Arg("tag").Data(nil), "PUT k 0 tag\r\n\r\n", nil},
		{textclient.Cmd("set").Arg("k").Count().Arg("noreply").Data([]byte("x")), "", textclient.ErrNoReply},
		{textclient.Cmd("get").Arg("a b"), "", textcmd.ErrBadToken},
		{textclient.Cmd("get").Arg(""), "", textcmd.ErrBadToken},
		{textclient.Cmd(""), "", textcmd.ErrBadToken},
		// A name opening with a magic byte of memcached's binary protocol
		// would close the connection; an argument may hold those bytes.
		{textclient.Cmd("\x80é"), "", textcmd.ErrBadToken},
		{textclient.Cmd("\x81"), "", textcmd.ErrBadToken},
		{textclient.Cmd("get").Arg("\x80k"), "get \x80k\r\n", nil},
		{textclient.Cmd("g\x80"), "g\x80\r\n", nil},
		{textclient.Cmd("set").Arg("k").Data([]byte("x")), "", textclient.ErrCount},
		{textclient.Cmd("set").Arg("k").Count(), "", textclient.ErrCount},
	} {
		got, err := tc.req.Build()
		if !errors.Is(err, tc.err) || (err == nil && string(got) != tc.want) {
			t.Errorf("built %q, %v; want %q, %v", got, err, tc.want, tc.err)
		}
	}
}

// echoServer serves ECHO <bytes> (answered DATA <bytes> and the data),
// SLOW (held until release), SAY (answered the line it holds), LONG (a
// line as long as asked) and LIST (ITEM lines, then END).
func echoServer(t *testing.T, release <-chan struct{}) (string, textcmd.Grammar) {
	t.Helper()
	mux := textserver.NewMux(textserver.Config{Replies: map[string]textserver.Reply{
		"DATA": {CountArg: 1}, "ITEM": {Continues: true},
	}})
	mux.HandleFunc("ECHO", func(_ context.Context, req *textserver.Request, resp *textserver.Response) error {
		resp.Message("DATA", [][]byte{req.Arg(0)}, req.Data)
		return nil
	}, textserver.Command{CountArg: 1})
	mux.HandleFunc("SLOW", func(ctx context.Context, _ *textserver.Request, resp *textserver.Response) error {
		select {
		case <-release:
		case <-ctx.Done():
		}
		resp.Line("SLOW")
		return nil
	}, textserver.Command{})
	// LONG <n> answers a line of n bytes, its "\r\n" included.
	mux.HandleFunc("LONG", func(_ context.Context, req *textserver.Request, resp *textserver.Response) error {
		n, err := strconv.Atoi(string(req.Arg(0)))
		if err != nil || n < 7 {
			return err
		}
		resp.Line("LINE", strings.Repeat("x", n-7))
		return nil
	}, textserver.Command{MinArgs: 1})
	// SAY <status> [<arg>...] answers the line it is given.
	mux.HandleFunc("SAY", func(_ context.Context, req *textserver.Request, resp *textserver.Response) error {
		resp.Message(string(req.Arg(0)), req.Args[1:], nil)
		return nil
	}, textserver.Command{MinArgs: 1})
	mux.HandleFunc("LIST", func(_ context.Context, _ *textserver.Request, resp *textserver.Response) error {
		for i := range 3 {
			resp.Message("ITEM", [][]byte{fmt.Append(nil, i)}, nil)
		}
		resp.Line("END")
		return nil
	}, textserver.Command{})
	logger := logrus.New()
	logger.SetOutput(io.Discard)
	srv := textserver.NewServer(mux, server.Config{Logger: logger})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return l.Addr().String(), mux.Grammar()
}

func newClient(t *testing.T, addr string, g textcmd.Grammar) *textclient.Client {
	t.Helper()
	c, err := textclient.New([]string{addr}, textclient.Config{Grammar: g})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestConcurrentCallsPipelined: many goroutines on one connection each
// get their own answer, and a slow call does not mix up the order of the
// fast ones queued behind it.
func TestConcurrentCallsPipelined(t *testing.T) {
	release := make(chan struct{})
	addr, g := echoServer(t, release)
	c := newClient(t, addr, g)
	ctx, cancel := context.WithTimeout(context.Background(), safety)
	defer cancel()

	// From cold: the first call of a new client.
	resp, err := c.Call(ctx, textclient.Cmd("LIST"))
	if err != nil || len(resp.Items()) != 3 || resp.Status() != "END" {
		t.Fatalf("LIST: %+v, %v", resp, err)
	}
	slow := c.Go(ctx, textclient.Cmd("SLOW"))
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := range 64 {
		wg.Go(func() {
			for i := range 20 {
				data := fmt.Appendf(nil, "goroutine %d call %d\r\n", g, i)
				resp, err := c.Call(ctx, textclient.Cmd("ECHO").Count().Data(data))
				if err != nil {
					errs <- err
					return
				}
				if got := resp.Parts[0].Data; string(got) != string(data) {
					errs <- fmt.Errorf("goroutine %d got %q, want %q", g, got, data)
					return
				}
			}
		})
	}
	// The echoes queued behind SLOW on the one connection answer only
	// once it does: release it, then collect.
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if resp, err := slow.Wait(); err != nil || resp.Status() != "SLOW" {
		t.Fatalf("SLOW: %+v, %v", resp, err)
	}
}

func TestStatusErrorAndNoBatches(t *testing.T) {
	addr, g := echoServer(t, nil)
	c := newClient(t, addr, g)
	ctx, cancel := context.WithTimeout(context.Background(), safety)
	defer cancel()
	_, err := c.Call(ctx, textclient.Cmd("NOPE"))
	var se *textclient.StatusError
	if !errors.As(err, &se) || se.Status != "ERROR" {
		t.Fatalf("unknown command: %v, want a *StatusError ERROR", err)
	}
	p := c.Raw().Pipeline()
	p.Enqueue([]byte("LIST\r\n"))
	if _, err := p.Flush(ctx); !errors.Is(err, client.ErrBatchUnsupported) {
		t.Fatalf("Pipeline.Flush: %v, want ErrBatchUnsupported", err)
	}
}

// TestServerBreaksProtocol: a response that breaks the grammar fails the
// call with a protocol error, and the connection is replaced.
func TestServerBreaksProtocol(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			nc, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer nc.Close()
				buf := make([]byte, 64)
				nc.Read(buf)
				io.WriteString(nc, "VALUE k 0 3\r\nabcdef\r\n") // the data outruns its count
				io.Copy(io.Discard, nc)
			}()
		}
	}()
	c := newClient(t, l.Addr().String(), textcmd.Memcached)
	ctx, cancel := context.WithTimeout(context.Background(), safety)
	defer cancel()
	_, err = c.Call(ctx, textclient.Cmd("get").Arg("k"))
	if !errors.Is(err, textcmd.ErrBadDataEnd) || !errors.Is(err, client.ErrConnLost) {
		t.Fatalf("Call: %v, want ErrBadDataEnd and ErrConnLost", err)
	}
}

// TestAgainstMemcached: the client speaks to a real memcached.
func TestAgainstMemcached(t *testing.T) {
	c := newClient(t, memcachedtest.Start(t), textcmd.Memcached)
	ctx, cancel := context.WithTimeout(context.Background(), safety)
	defer cancel()
	resp, err := c.Call(ctx, textclient.Cmd("set").Arg("k").Uint(7).Uint(0).Count().Data([]byte("v\r\n1")))
	if err != nil || resp.Status() != "STORED" {
		t.Fatalf("set: %+v, %v", resp, err)
	}
	resp, err = c.Call(ctx, textclient.Cmd("gets").Arg("k").Arg("missing"))
	if err != nil || len(resp.Items()) != 1 || string(resp.Items()[0].Data) != "v\r\n1" || string(resp.Items()[0].Arg(1)) != "7" {
		t.Fatalf("gets: %+v, %v", resp, err)
	}
	_, err = c.Call(ctx, textclient.Cmd("incr").Arg("k").Uint(1))
	var se *textclient.StatusError
	if !errors.As(err, &se) || se.Status != "CLIENT_ERROR" {
		t.Fatalf("incr of a non-number: %v", err)
	}
}

// TestBinaryMagicNameNotSent: a request whose name opens with 0x80, which
// a server reads as memcached's binary protocol and closes the connection
// on, fails alone, and the calls pipelined around it on the one
// connection, which retries cannot rescue, are answered.
func TestBinaryMagicNameNotSent(t *testing.T) {
	release := make(chan struct{})
	addr, g := echoServer(t, release)
	c := oneConnClient(t, addr, g)
	ctx, cancel := context.WithTimeout(context.Background(), safety)
	defer cancel()
	slow := c.Go(ctx, textclient.Cmd("SLOW"))
	bad := c.Go(ctx, textclient.Cmd("\x80é"))
	list := c.Go(ctx, textclient.Cmd("LIST"))
	close(release)
	if _, err := bad.Wait(); !errors.Is(err, textcmd.ErrBadToken) {
		t.Errorf("name opening with 0x80: %v, want ErrBadToken", err)
	}
	if resp, err := slow.Wait(); err != nil || resp.Status() != "SLOW" {
		t.Errorf("SLOW before it: %+v, %v", resp, err)
	}
	if resp, err := list.Wait(); err != nil || resp.Status() != "END" {
		t.Errorf("LIST after it: %+v, %v", resp, err)
	}
}

// oneConnClient is a client of one connection, without retries: calls
// pipelined on it share its fate.
func oneConnClient(t *testing.T, addr string, g textcmd.Grammar) *textclient.Client {
	t.Helper()
	c, err := textclient.New([]string{addr}, textclient.Config{Grammar: g, Client: client.Config{
		ConnsPerAddr: 1, MaxExtraConns: -1, OverdueAfter: -1, MaxRetries: -1}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestStatusNamedLikeCommand: a response whose status is the name of a
// command with a byte count, "ECHO 4", is read with the Mux's Grammar as
// the line it is, not as a line whose data block is the next answer.
func TestStatusNamedLikeCommand(t *testing.T) {
	release := make(chan struct{})
	addr, g := echoServer(t, release)
	c := oneConnClient(t, addr, g)
	ctx, cancel := context.WithTimeout(context.Background(), safety)
	defer cancel()
	slow := c.Go(ctx, textclient.Cmd("SLOW")) // holds the answers behind it
	say := c.Go(ctx, textclient.Cmd("SAY").Arg("ECHO").Arg("4"))
	list := c.Go(ctx, textclient.Cmd("LIST"))
	close(release)
	if resp, err := slow.Wait(); err != nil || resp.Status() != "SLOW" {
		t.Errorf("SLOW: %+v, %v", resp, err)
	}
	if resp, err := say.Wait(); err != nil || string(resp.Raw()) != "ECHO 4\r\n" || resp.Parts[0].Data != nil {
		t.Errorf("SAY ECHO 4: %+v, %v; want the line ECHO 4 alone", resp, err)
	}
	if resp, err := list.Wait(); err != nil || len(resp.Items()) != 3 || resp.Status() != "END" {
		t.Errorf("LIST after it: %+v, %v", resp, err)
	}
}

// TestMaxLineLength: a line limit over what the client's read buffer
// holds is refused at New, not met later with an error naming another
// limit; a line as long as MaxLineLength arrives, and one byte longer is
// over the limit.
func TestMaxLineLength(t *testing.T) {
	for _, n := range []int{textclient.MaxLineLength + 1, 1 << 20} {
		_, err := textclient.New([]string{"127.0.0.1:1"}, textclient.Config{
			Limits: textcmd.Limits{MaxLineLength: n}, Client: client.Config{LazyDial: true}})
		if !errors.Is(err, textcmd.ErrInvalidLimits) {
			t.Errorf("MaxLineLength %d: %v, want ErrInvalidLimits", n, err)
		}
	}
	addr, g := echoServer(t, nil)
	c, err := textclient.New([]string{addr}, textclient.Config{Grammar: g, Limits: textcmd.Limits{MaxLineLength: textclient.MaxLineLength}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), safety)
	defer cancel()
	resp, err := c.Call(ctx, textclient.Cmd("LONG").Int(textclient.MaxLineLength))
	if err != nil || len(resp.Raw()) != textclient.MaxLineLength {
		t.Fatalf("a line of MaxLineLength bytes: %v", err)
	}
	_, err = c.Call(ctx, textclient.Cmd("LONG").Int(textclient.MaxLineLength+1))
	var se *textcmd.SizeError
	if !errors.As(err, &se) || se.Kind != textcmd.ErrLineTooLong || se.Limit != textclient.MaxLineLength {
		t.Fatalf("a line one byte longer: %v, want ErrLineTooLong over the limit of %d", err, textclient.MaxLineLength)
	}
}

func TestNoMultiplexedMode(t *testing.T) {
	_, err := textclient.New([]string{"127.0.0.1:1"}, textclient.Config{Client: client.Config{Protocol: client.ProtocolMux, LazyDial: true}})
	if !errors.Is(err, client.ErrInvalidConfig) {
		t.Fatalf("a Codec with ProtocolMux: %v, want ErrInvalidConfig", err)
	}
}

// TestCallAppendTailJoinedByCodec: a request given in two parts to a
// client of the text codec, which has no frames to write a tail after, is
// sent as the two joined: here a line and its 100 KiB data block.
func TestCallAppendTailJoinedByCodec(t *testing.T) {
	addr, g := echoServer(t, nil)
	c := newClient(t, addr, g)
	data := bytes.Repeat([]byte("d"), 100<<10)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ans, err := c.Raw().CallAppendTail(ctx, nil, fmt.Appendf(nil, "ECHO %d\r\n", len(data)), append(data, "\r\n"...))
	want := append(fmt.Appendf(nil, "DATA %d\r\n", len(data)), append(data, "\r\n"...)...)
	if err != nil || !bytes.Equal(ans, want) {
		t.Fatalf("answered %d bytes (%q…), %v; want %d", len(ans), ans[:min(len(ans), 20)], err, len(want))
	}
}
