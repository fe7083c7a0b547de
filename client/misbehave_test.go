package client_test

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/tcpez/tcpez/client"
	"github.com/tcpez/tcpez/frame"
	"github.com/tcpez/tcpez/server"
)

// answerWith is a server script that reads want requests (frames or
// batches) and then sends reply and closes.
func answerWith(want int, reply []byte) func(net.Conn, <-chan struct{}) {
	return func(nc net.Conn, _ <-chan struct{}) {
		r := frame.NewReader(nc, frame.Limits{})
		for range want {
			if _, _, err := readRequest(r); err != nil {
				return
			}
		}
		_, _ = nc.Write(reply)
	}
}

func hexFrame(p string) []byte { return frame.AppendFrame(nil, []byte(p)) }

func concat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// TestMisbehavingServers checks that a server breaking the protocol fails
// every call on the connection with a typed error, and never hands a
// caller a wrong answer or leaves it hanging.
func TestMisbehavingServers(t *testing.T) {
	batchHdr := func(n int) []byte { return frame.AppendHeader(nil, frame.BatchHeader(n)) }
	cases := []struct {
		name  string
		batch int // 0: Call; n: a Pipeline of n requests
		calls int // calls in flight when the server misbehaves
		reply []byte
		want  []error
	}{
		{"garbage", 0, 5, []byte("HTTP/1.1 400 Bad Request\r\n\r\n"),
			[]error{frame.ErrFrameTooLarge}},
		{"malformed header", 0, 3, []byte{0x80, 0, 0, 0},
			[]error{frame.ErrMalformedHeader}},
		{"batch where a frame was expected", 0, 3, concat(batchHdr(1), hexFrame("x")),
			[]error{client.ErrUnexpectedAnswer, frame.ErrNegativeLength}},
		{"frame where a batch was expected", 2, 1, hexFrame("x"),
			[]error{client.ErrUnexpectedAnswer}},
		{"wrong batch count", 3, 1, concat(batchHdr(2), hexFrame("a"), hexFrame("b")),
			[]error{client.ErrUnexpectedAnswer}},
		{"negative length inside a batch", 2, 1, concat(batchHdr(2), []byte{0xff, 0xff, 0xff, 0xff}),
			[]error{frame.ErrNegativeLength}},
		{"batch header inside a batch", 2, 1, concat(batchHdr(2), hexFrame("a"), batchHdr(1)),
			[]error{frame.ErrNegativeLength}},
		{"close mid-header", 0, 2, []byte{0, 0},
			[]error{frame.ErrTruncated, io.ErrUnexpectedEOF}},
		{"close mid-frame", 0, 2, []byte{0, 0, 0, 16, 'a', 'b', 'c'},
			[]error{frame.ErrTruncated, io.ErrUnexpectedEOF}},
		{"close mid-batch", 2, 1, concat(batchHdr(2), hexFrame("a")),
			[]error{frame.ErrTruncated}},
		{"close without answering", 0, 2, nil,
			[]error{io.EOF}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			addr := rawServer(t, answerWith(tc.calls, tc.reply))
			// v1: these servers misbehave in v1's terms.
			c := newClient(t, []string{addr}, client.Config{Protocol: client.ProtocolV1})
			var wg sync.WaitGroup
			for range tc.calls {
				wg.Add(1)
				go func() {
					defer wg.Done()
					err := misbehaveCall(ctxFor(t), c, tc.batch)
					checkConnError(t, err, addr, tc.want...)
				}()
			}
			wg.Wait()
		})
	}
}

func misbehaveCall(ctx context.Context, c *client.Client, batch int) error {
	if batch == 0 {
		ans, err := c.Call(ctx, []byte("req"))
		if err == nil {
			return errors.New("got answer " + string(ans))
		}
		return err
	}
	p := c.Pipeline()
	for range batch {
		p.Enqueue([]byte("req"))
	}
	_, err := p.Flush(ctx)
	return err
}

// checkConnError checks that err is a *ConnError for addr that matches
// ErrConnLost and every one of want; protocol violations must also match
// frame.ErrProtocol.
func checkConnError(t *testing.T, err error, addr string, want ...error) {
	t.Helper()
	var ce *client.ConnError
	if !errors.As(err, &ce) || ce.Addr != addr || !errors.Is(err, client.ErrConnLost) {
		t.Errorf("got %v, want a *ConnError for %s", err, addr)
		return
	}
	for _, w := range want {
		if !errors.Is(err, w) {
			t.Errorf("got %v, want it to match %v", err, w)
		}
	}
	protocol := !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, frame.ErrTruncated)
	if protocol && !errors.Is(err, frame.ErrProtocol) {
		t.Errorf("got %v, want it to match frame.ErrProtocol", err)
	}
}

// TestBadHeaderAmongAnswers: answers arriving together with a bad header
// reach their callers, and the calls behind the bad header fail, including
// the one whose call the reader took with the answer before it.
func TestBadHeaderAmongAnswers(t *testing.T) {
	reply := concat(hexFrame("a"), hexFrame("b"), []byte{0x80, 0, 0, 0})
	addr := rawServer(t, answerWith(4, reply))
	// v1: the bad header is in v1's terms.
	c := newClient(t, []string{addr}, client.Config{Protocol: client.ProtocolV1})
	ctx := ctxFor(t)
	// Futures are answered by the reader goroutine, in order.
	calls := make([]*client.Future, 4)
	for i := range calls {
		calls[i] = c.Go(ctx, []byte("req"))
	}
	for i, f := range calls {
		ans, err := f.Wait()
		switch {
		case i < 2:
			if err != nil || string(ans) != string(rune('a'+i)) {
				t.Errorf("call %d: %q, %v; want %q", i, ans, err, string(rune('a'+i)))
			}
		default:
			checkConnError(t, err, addr, frame.ErrMalformedHeader)
		}
	}
}

func TestAnswerOverLimit(t *testing.T) {
	srv := newServer(t, func(req []byte) []byte {
		if string(req) == "big" {
			return make([]byte, 11)
		}
		return req
	})
	c := newClient(t, []string{srv.addr}, client.Config{Limits: frame.Limits{MaxFrameSize: 10}})
	_, err := c.Call(ctxFor(t), []byte("big"))
	var se *frame.SizeError
	if !errors.As(err, &se) || se.Limit != 10 || se.Size != 11 || !errors.Is(err, frame.ErrFrameTooLarge) {
		t.Fatalf("got %v, want a *frame.SizeError for 11 bytes over 10", err)
	}
	checkConnError(t, err, srv.addr, frame.ErrProtocol)
	// The connection is replaced; answers within the limit still work.
	ans, err := c.Call(ctxFor(t), []byte("small"))
	if err != nil || string(ans) != "small" {
		t.Fatalf("after the oversized answer: %q, %v", ans, err)
	}
}

func TestUnsolicitedAnswer(t *testing.T) {
	addr := rawServer(t, func(nc net.Conn, stop <-chan struct{}) {
		_, _ = nc.Write(hexFrame("nobody asked"))
		<-stop
	})
	ev := newEvents()
	// v1: with mux asked for, an unsolicited first answer is the answer to
	// the preface, as the spec says.
	newClient(t, []string{addr}, fast(client.Config{Protocol: client.ProtocolV1, OnStateChange: ev.hook}))
	got, _ := ev.waitFor(t, client.Disconnected, 0)
	if !errors.Is(got.Err, client.ErrUnexpectedAnswer) || !errors.Is(got.Err, frame.ErrProtocol) {
		t.Fatalf("Disconnected with %v, want ErrUnexpectedAnswer", got.Err)
	}
}

// TestServerNeverAnswers: the context is the only way out, and it works.
func TestServerNeverAnswers(t *testing.T) {
	addr := rawServer(t, func(nc net.Conn, stop <-chan struct{}) {
		go func() { _, _ = io.Copy(io.Discard, nc) }()
		<-stop
	})
	c := newClient(t, []string{addr}, client.Config{})
	var wg sync.WaitGroup
	for i := range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
			defer cancel()
			var err error
			switch i % 3 {
			case 0:
				_, err = c.Call(ctx, []byte("hello?"))
			case 1:
				_, err = c.Go(ctx, []byte("hello?")).Wait()
			default:
				err = misbehaveCall(ctx, c, 2)
			}
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("got %v, want DeadlineExceeded", err)
			}
		}()
	}
	wg.Wait()
}

// TestRequestOverOwnLimit: a request over the client's own frame limit is
// refused before anything is written, with an error that says so, and the
// connection serves the next call (over v1 a server would close it).
func TestRequestOverOwnLimit(t *testing.T) {
	for _, proto := range []client.Protocol{client.ProtocolV1, client.ProtocolMux} {
		t.Run(proto.String(), func(t *testing.T) {
			_, addr, rec := startMux(t, newMuxHandler(), server.Config{})
			c := newClient(t, []string{addr}, client.Config{Protocol: proto, Limits: frame.Limits{MaxFrameSize: 64}})
			_, err := c.Call(ctxFor(t), make([]byte, 65))
			var se *frame.SizeError
			if !errors.As(err, &se) || se.Limit != 64 || se.Size != 65 || !errors.Is(err, frame.ErrFrameTooLarge) {
				t.Fatalf("got %v, want a *frame.SizeError for 65 bytes over 64", err)
			}
			p := c.Pipeline()
			p.Enqueue([]byte("ok"))
			p.Enqueue(make([]byte, 65))
			if _, err := p.Flush(ctxFor(t)); !errors.Is(err, frame.ErrFrameTooLarge) {
				t.Fatalf("pipeline with an oversize request: %v", err)
			}
			if _, err := c.Go(ctxFor(t), make([]byte, 65)).Wait(); !errors.Is(err, frame.ErrFrameTooLarge) {
				t.Fatalf("Go: %v", err)
			}
			ans, err := c.Call(ctxFor(t), []byte("small"))
			if err != nil || string(ans) != "small" {
				t.Fatalf("after the refused requests: %q, %v", ans, err)
			}
			if n := rec.Counter(server.StatConnsAccepted); n != 1 {
				t.Fatalf("%d connections accepted, want 1: a refusal broke the connection", n)
			}
			if n := rec.Counter(server.StatRequests); n != 1 {
				t.Fatalf("the server saw %d requests, want only the small one", n)
			}
		})
	}
}
