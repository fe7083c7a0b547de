package client_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/tcpez/tcpez/client"
	"github.com/tcpez/tcpez/frame"
	"github.com/tcpez/tcpez/internal/testserver"
	"github.com/tcpez/tcpez/server"
	"github.com/tcpez/tcpez/span"
)

// streamServer answers unary calls by echo and streams by the function
// its open payload names.
type streamServer struct {
	modes map[string]func(ctx context.Context, s *server.Stream) error
}

func (h *streamServer) Respond(_ context.Context, req []byte, _ *span.Span) ([]byte, error) {
	return req, nil
}

func (h *streamServer) ServeStream(ctx context.Context, open []byte, s *server.Stream) error {
	f, ok := h.modes[string(open)]
	if !ok {
		return fmt.Errorf("no mode %q", open)
	}
	return f(ctx, s)
}

// echoMessages sends back every message it receives, then ends.
func echoMessages(_ context.Context, s *server.Stream) error {
	for {
		m, err := s.Recv()
		if err == io.EOF {
			s.SetTrailer([]byte("done"))
			return nil
		}
		if err != nil {
			return err
		}
		if err := s.Send(m); err != nil {
			return err
		}
	}
}

func startStreams(t testing.TB, cfg server.Config, modes map[string]func(context.Context, *server.Stream) error) (*server.Server, *client.Client) {
	t.Helper()
	srv, addr := testserver.Start(t, &streamServer{modes: modes}, cfg)
	c, err := client.New([]string{addr}, client.Config{Protocol: client.ProtocolMux, ConnsPerAddr: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return srv, c
}

func TestStreamMessages(t *testing.T) {
	_, c := startStreams(t, server.Config{}, map[string]func(context.Context, *server.Stream) error{"echo": echoMessages})
	s, err := c.Stream(ctxFor(t), []byte("echo"))
	if err != nil {
		t.Fatal(err)
	}
	// Empty, small, and larger than a chunk and than the window.
	msgs := [][]byte{{}, []byte("PING"), bytes.Repeat([]byte("x"), 3<<20+7)}
	go func() {
		for _, m := range msgs {
			if err := s.Send(m); err != nil {
				t.Errorf("Send: %v", err)
				return
			}
		}
		_ = s.CloseSend()
	}()
	for i, want := range msgs {
		got, err := s.Recv()
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("message %d: %d bytes, %v; want %d bytes", i, len(got), err, len(want))
		}
	}
	if _, err := s.Recv(); err != io.EOF {
		t.Fatalf("after the last message: %v, want io.EOF", err)
	}
	if string(s.Trailer()) != "done" {
		t.Fatalf("trailer %q", s.Trailer())
	}
	<-s.Done()
	if err := s.Send([]byte("late")); err != io.EOF {
		t.Fatalf("Send after the end: %v, want io.EOF", err)
	}
}

// TestStreamSendAfterCloseSend: a Send or Write after CloseSend returns
// client.ErrSendClosed, which errors.Is finds (before, the value was
// internal/stream's, which no user can import).
func TestStreamSendAfterCloseSend(t *testing.T) {
	release := make(chan struct{})
	_, c := startStreams(t, server.Config{}, map[string]func(context.Context, *server.Stream) error{
		"hold": func(_ context.Context, s *server.Stream) error {
			if _, err := io.Copy(io.Discard, s); err != nil {
				return err
			}
			<-release // the stream stays open after the client's CloseSend
			return nil
		},
	})
	s, err := c.Stream(ctxFor(t), []byte("hold"))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send([]byte("one")); err != nil {
		t.Fatal(err)
	}
	if err := s.CloseSend(); err != nil {
		t.Fatal(err)
	}
	if err := s.Send([]byte("two")); !errors.Is(err, client.ErrSendClosed) {
		t.Fatalf("Send after CloseSend: %v, want client.ErrSendClosed", err)
	}
	if _, err := s.Write([]byte("two")); !errors.Is(err, client.ErrSendClosed) {
		t.Fatalf("Write after CloseSend: %v, want client.ErrSendClosed", err)
	}
	close(release)
	if _, err := s.Recv(); err != io.EOF {
		t.Fatalf("Recv: %v, want io.EOF", err)
	}
}

// TestStreamBlob copies 64 MiB each way through io.Copy, with the stream
// as io.Reader and io.Writer.
func TestStreamBlob(t *testing.T) {
	_, c := startStreams(t, server.Config{}, map[string]func(context.Context, *server.Stream) error{
		"copy": func(_ context.Context, s *server.Stream) error {
			_, err := io.Copy(s, s)
			return err
		},
	})
	s, err := c.Stream(ctxFor(t), []byte("copy"))
	if err != nil {
		t.Fatal(err)
	}
	const size = 64 << 20
	src := io.LimitReader(&pattern{}, size)
	sent := sha256.New()
	go func() {
		if _, err := io.Copy(s, io.TeeReader(src, sent)); err != nil {
			t.Errorf("copy in: %v", err)
		}
		_ = s.CloseSend()
	}()
	got := sha256.New()
	n, err := io.Copy(got, s)
	if err != nil || n != size {
		t.Fatalf("copied %d bytes, %v", n, err)
	}
	if !bytes.Equal(got.Sum(nil), sent.Sum(nil)) {
		t.Fatal("the bytes that came back differ")
	}
}

// pattern is an endless reader of varied bytes.
type pattern struct{ n byte }

func (p *pattern) Read(b []byte) (int, error) {
	for i := range b {
		b[i] = p.n
		p.n = p.n*7 + 3
	}
	return len(b), nil
}

// TestStreamCancelByClient: a client that cancels mid-stream ends the
// handler's context and frees both ends; goleak checks for goroutines.
func TestStreamCancelByClient(t *testing.T) {
	ended := make(chan error, 1)
	received := make(chan struct{})
	_, c := startStreams(t, server.Config{}, map[string]func(context.Context, *server.Stream) error{
		"sink": func(ctx context.Context, s *server.Stream) error {
			if _, err := s.Recv(); err != nil {
				return err
			}
			close(received)
			_, err := io.Copy(io.Discard, s)
			<-ctx.Done()
			ended <- err
			return err
		},
	})
	ctx, cancel := context.WithCancel(ctxFor(t))
	s, err := c.Stream(ctx, []byte("sink"))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send([]byte("first")); err != nil {
		t.Fatal(err)
	}
	<-received
	cancel()
	if err := <-ended; err == nil {
		t.Fatal("the handler's Read ended without an error")
	}
	<-s.Done()
	if _, err := s.Recv(); !errors.Is(err, context.Canceled) {
		t.Fatalf("Recv after cancel: %v", err)
	}
	if err := s.Send([]byte("x")); err == nil {
		t.Fatal("Send after cancel succeeded")
	}
	// The connection goes on.
	if ans, err := c.Call(ctxFor(t), []byte("after")); err != nil || string(ans) != "after" {
		t.Fatalf("a call after the cancel: %q, %v", ans, err)
	}
}

// TestStreamHandlerFailsMidStream: a handler that returns an error while
// the client still sends ends the client's stream: Recv returns the
// handler's error, and Send io.EOF, as after a handler that succeeded
// (Send says the stream ended, Recv how).
func TestStreamHandlerFailsMidStream(t *testing.T) {
	_, c := startStreams(t, server.Config{}, map[string]func(context.Context, *server.Stream) error{
		"fail": func(_ context.Context, s *server.Stream) error {
			if _, err := s.Recv(); err != nil {
				return err
			}
			return errors.New("boom")
		},
	})
	s, err := c.Stream(ctxFor(t), []byte("fail"))
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 64<<10)
	var sendErr error
	for sendErr == nil {
		sendErr = s.Send(chunk) // until the failure arrives
	}
	var se *client.ServerError
	if _, err := s.Recv(); !errors.As(err, &se) || se.Code != frame.CodeHandler || se.Message != "boom" {
		t.Fatalf("Recv: %v, want the handler's error", err)
	}
	if sendErr != io.EOF {
		t.Fatalf("Send: %v, want io.EOF", sendErr)
	}
}

// TestStreamDataBeforeHandlerError: what a handler sent before it failed
// reaches the client, then its error (docs/PROTOCOL.md, "Ending": the
// client reads the data before the error frame), whether the client reads
// as it comes or only once the stream has ended. Before, the error frame
// dropped what was buffered: the client got none of the messages.
func TestStreamDataBeforeHandlerError(t *testing.T) {
	_, c := startStreams(t, server.Config{}, map[string]func(context.Context, *server.Stream) error{
		"fail": func(_ context.Context, s *server.Stream) error {
			for i := range 3 {
				if err := s.Send(fmt.Appendf(nil, "result %d", i)); err != nil {
					return err
				}
			}
			// And a message larger than a chunk, sent in several frames; all
			// of it fits the client's window, which the test may not read
			// before the end.
			if err := s.Send(bytes.Repeat([]byte("y"), 200<<10)); err != nil {
				return err
			}
			return errors.New("failed after the results")
		},
	})
	for _, waitForEnd := range []bool{false, true} {
		s, err := c.Stream(ctxFor(t), []byte("fail"))
		if err != nil {
			t.Fatal(err)
		}
		if waitForEnd {
			<-s.Done()
		}
		for i := range 3 {
			m, err := s.Recv()
			if want := fmt.Sprintf("result %d", i); err != nil || string(m) != want {
				t.Fatalf("waiting for the end %v: message %d: %q, %v; want %q", waitForEnd, i, m, err, want)
			}
		}
		if m, err := s.Recv(); err != nil || len(m) != 200<<10 {
			t.Fatalf("waiting for the end %v: the large message: %d bytes, %v", waitForEnd, len(m), err)
		}
		var se *client.ServerError
		if _, err := s.Recv(); !errors.As(err, &se) || se.Code != frame.CodeHandler || se.Message != "failed after the results" {
			t.Fatalf("waiting for the end %v: Recv after the messages: %v, want the handler's error", waitForEnd, err)
		}
		if _, err := s.Recv(); !errors.As(err, &se) {
			t.Fatalf("waiting for the end %v: Recv again: %v, want the handler's error again", waitForEnd, err)
		}
		<-s.Done()
		if err := s.Send([]byte("late")); err != io.EOF {
			t.Fatalf("waiting for the end %v: Send after the error: %v, want io.EOF", waitForEnd, err)
		}
	}
}

// TestStreamStalledReceiver: a handler that does not read stalls its own
// stream only; another stream and unary calls on the same connection go
// on, and the stalled one resumes once read.
func TestStreamStalledReceiver(t *testing.T) {
	release := make(chan struct{})
	var stalledGot atomic.Int64
	srv, c := startStreams(t, server.Config{}, map[string]func(context.Context, *server.Stream) error{
		"stall": func(_ context.Context, s *server.Stream) error {
			<-release
			n, err := io.Copy(io.Discard, s)
			stalledGot.Store(n)
			return err
		},
		"copy": func(_ context.Context, s *server.Stream) error {
			_, err := io.Copy(s, s)
			return err
		},
	})
	_ = srv
	ctx := ctxFor(t)
	stalled, err := c.Stream(ctx, []byte("stall"))
	if err != nil {
		t.Fatal(err)
	}
	const stalledSize = 16 << 20 // far over the window
	var sent atomic.Int64
	sendDone := make(chan error, 1)
	go func() {
		chunk := make([]byte, 32<<10)
		for sent.Load() < stalledSize {
			if err := stalled.Send(chunk); err != nil {
				sendDone <- err
				return
			}
			sent.Add(int64(len(chunk)))
		}
		sendDone <- stalled.CloseSend()
	}()

	// Another stream moves far more than a window meanwhile.
	other, err := c.Stream(ctx, []byte("copy"))
	if err != nil {
		t.Fatal(err)
	}
	const otherSize = 8 << 20
	go func() {
		_, _ = io.Copy(other, io.LimitReader(&pattern{}, otherSize))
		_ = other.CloseSend()
	}()
	if n, err := io.Copy(io.Discard, other); err != nil || n != otherSize {
		t.Fatalf("the other stream: %d bytes, %v", n, err)
	}
	if ans, err := c.Call(ctx, []byte("unary")); err != nil || string(ans) != "unary" {
		t.Fatalf("a unary call beside the stalled stream: %q, %v", ans, err)
	}
	// The stalled sender got no further than the server's window.
	select {
	case err := <-sendDone:
		t.Fatalf("the stalled stream's sender finished: %v", err)
	default:
	}
	if n := sent.Load(); n > 2<<20 {
		t.Fatalf("the stalled stream sent %d bytes with nobody reading", n)
	}
	close(release)
	if err := <-sendDone; err != nil {
		t.Fatal(err)
	}
	if _, err := stalled.Recv(); err != io.EOF {
		t.Fatalf("the stalled stream ended with %v", err)
	}
	if stalledGot.Load() != stalledSize {
		t.Fatalf("the stalled stream's handler read %d bytes", stalledGot.Load())
	}
}

// TestStreamFairness: 8 streams push 16 MiB each on one connection; every
// one has made progress before any finishes.
func TestStreamFairness(t *testing.T) {
	const streams, size = 8, 16 << 20
	var (
		progress  [streams]atomic.Int64
		opened    sync.WaitGroup
		firstDone sync.Once
		snapshot  [streams]int64
	)
	opened.Add(streams)
	modes := map[string]func(context.Context, *server.Stream) error{}
	for i := range streams {
		modes[fmt.Sprint(i)] = func(_ context.Context, s *server.Stream) error {
			opened.Done()
			buf := make([]byte, 32<<10)
			for {
				n, err := s.Read(buf)
				progress[i].Add(int64(n))
				if err == io.EOF {
					break
				}
				if err != nil {
					return err
				}
			}
			firstDone.Do(func() {
				for j := range streams {
					snapshot[j] = progress[j].Load()
				}
			})
			return nil
		}
	}
	_, c := startStreams(t, server.Config{}, modes)
	ctx := ctxFor(t)
	ss := make([]*client.Stream, streams)
	for i := range ss {
		s, err := c.Stream(ctx, []byte(fmt.Sprint(i)))
		if err != nil {
			t.Fatal(err)
		}
		ss[i] = s
	}
	opened.Wait() // every handler runs before anyone sends
	var wg sync.WaitGroup
	for _, s := range ss {
		wg.Go(func() {
			if _, err := io.Copy(s, io.LimitReader(&pattern{}, size)); err != nil {
				t.Error(err)
			}
			_ = s.CloseSend()
			if _, err := s.Recv(); err != io.EOF {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	for i, n := range snapshot {
		if n == 0 {
			t.Errorf("stream %d had made no progress when the first finished: %v", i, snapshot)
		}
	}
}

func TestStreamRefused(t *testing.T) {
	t.Run("no stream handler", func(t *testing.T) {
		_, addr := testserver.Start(t, server.HandlerFunc(func(_ context.Context, req []byte, _ *span.Span) ([]byte, error) {
			return req, nil
		}), server.Config{})
		c := newClient(t, []string{addr}, client.Config{Protocol: client.ProtocolMux})
		s, err := c.Stream(ctxFor(t), []byte("x"))
		if err != nil {
			t.Fatal(err)
		}
		var se *client.ServerError
		if _, err := s.Recv(); !errors.As(err, &se) || se.Code != frame.CodeNoHandler {
			t.Fatalf("Recv: %v, want code %v", err, frame.CodeNoHandler)
		}
	})
	t.Run("v1 server", func(t *testing.T) {
		_, addr := testserver.Start(t, &streamServer{}, server.Config{V1Only: true})
		c := newClient(t, []string{addr}, client.Config{Protocol: client.ProtocolAuto})
		if _, err := c.Stream(ctxFor(t), []byte("x")); !errors.Is(err, client.ErrNoStreams) {
			t.Fatalf("Stream: %v, want ErrNoStreams", err)
		}
	})
}

// TestStreamLargerWindow: windows over the protocol's start are granted
// as the stream opens, on both sides.
func TestStreamLargerWindow(t *testing.T) {
	_, addr := testserver.Start(t, &streamServer{modes: map[string]func(context.Context, *server.Stream) error{
		"copy": func(_ context.Context, s *server.Stream) error {
			_, err := io.Copy(s, s)
			return err
		},
	}}, server.Config{StreamWindow: 1 << 20})
	c := newClient(t, []string{addr}, client.Config{Protocol: client.ProtocolMux, StreamWindow: 2 << 20})
	s, err := c.Stream(ctxFor(t), []byte("copy"))
	if err != nil {
		t.Fatal(err)
	}
	const size = 16 << 20
	go func() {
		_, _ = io.Copy(s, io.LimitReader(&pattern{}, size))
		_ = s.CloseSend()
	}()
	if n, err := io.Copy(io.Discard, s); err != nil || n != size {
		t.Fatalf("copied %d bytes, %v", n, err)
	}
}

// TestStreamMessageOverLimit: a message over the client's frame limit
// fails Recv with a *frame.SizeError and cancels the stream on the server.
func TestStreamMessageOverLimit(t *testing.T) {
	cancelled := make(chan error, 1)
	_, addr := testserver.Start(t, &streamServer{modes: map[string]func(context.Context, *server.Stream) error{
		"big": func(ctx context.Context, s *server.Stream) error {
			err := s.Send(make([]byte, 2<<20))
			<-ctx.Done()
			cancelled <- ctx.Err()
			return err
		},
	}}, server.Config{})
	c := newClient(t, []string{addr}, client.Config{Protocol: client.ProtocolMux, Limits: frame.Limits{MaxFrameSize: 1 << 20}})
	s, err := c.Stream(ctxFor(t), []byte("big"))
	if err != nil {
		t.Fatal(err)
	}
	var se *frame.SizeError
	if _, err := s.Recv(); !errors.As(err, &se) || !errors.Is(err, frame.ErrFrameTooLarge) {
		t.Fatalf("Recv: %v, want a *frame.SizeError", err)
	}
	if err := <-cancelled; !errors.Is(err, context.Canceled) {
		t.Fatalf("the handler's context ended with %v", err)
	}
	<-s.Done()
}

// TestStreamMessageOverServerLimit: a message over the server's frame
// limit fails the stream with an error matching frame.ErrFrameTooLarge,
// as a request over it does. Before, the client saw a handler error (code
// 1) that only said so in its text.
func TestStreamMessageOverServerLimit(t *testing.T) {
	_, c := startStreams(t, server.Config{Limits: frame.Limits{MaxFrameSize: 1 << 20}},
		map[string]func(context.Context, *server.Stream) error{"echo": echoMessages})
	s, err := c.Stream(ctxFor(t), []byte("echo"))
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.Send(make([]byte, 2<<20)) }()
	_, err = s.Recv()
	var se *client.ServerError
	if !errors.As(err, &se) || se.Code != frame.CodeTooLarge || !errors.Is(err, frame.ErrFrameTooLarge) {
		t.Fatalf("Recv: %v, want a ServerError with code 6 matching frame.ErrFrameTooLarge", err)
	}
}
