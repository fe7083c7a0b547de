package server_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/tcpez/tcpez/frame"
	"github.com/tcpez/tcpez/internal/spec"
	"github.com/tcpez/tcpez/internal/testserver"
	"github.com/tcpez/tcpez/server"
	"github.com/tcpez/tcpez/span"
	"github.com/tcpez/tcpez/stats"
)

// muxSpecHandler is the handler docs/PROTOCOL.md's mux examples assume.
type muxSpecHandler struct {
	release   chan struct{} // closed by the test: SLOW may answer
	waiting   chan struct{} // WAIT has started
	cancelled chan error    // WAIT's context error, once it ended
}

func newMuxSpecHandler() *muxSpecHandler {
	return &muxSpecHandler{release: make(chan struct{}), waiting: make(chan struct{}, 16), cancelled: make(chan error, 1)}
}

func (h *muxSpecHandler) respond(ctx context.Context, req []byte, _ *span.Span) ([]byte, error) {
	switch string(req) {
	case "SLOW":
		select {
		case <-h.release:
		case <-time.After(safety):
		}
	case "FAIL":
		return nil, errors.New("boom")
	case "WAIT":
		h.waiting <- struct{}{}
		select {
		case <-ctx.Done():
			h.cancelled <- ctx.Err()
			return nil, ctx.Err()
		case <-time.After(safety):
		}
	}
	return req, nil
}

// dialMux dials addr and negotiates the multiplexed mode over a raw
// socket, returning the acknowledgement's payload.
func dialMux(t testing.TB, addr string) (*net.TCPConn, *frame.Reader, frame.Ack) {
	t.Helper()
	c := dial(t, addr)
	write(t, c, frame.AppendPreface(nil))
	r := frame.NewReader(c, frame.Limits{})
	p, err := r.ReadFrame(nil)
	if err != nil {
		t.Fatalf("reading the acknowledgement: %v", err)
	}
	ack, ok := frame.ParseAck(p)
	if !ok {
		t.Fatalf("answer to the preface % x is not an acknowledgement", p)
	}
	return c, r, ack
}

func readMux(t testing.TB, r *frame.Reader) frame.MuxFrame {
	t.Helper()
	p, err := r.ReadFrame(nil)
	if err != nil {
		t.Fatalf("reading a mux frame: %v", err)
	}
	f, err := frame.ParseMuxPayload(p)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// TestMuxSpecExamples plays every mux example of docs/PROTOCOL.md against
// a real server and requires the documented answer byte for byte.
func TestMuxSpecExamples(t *testing.T) {
	examples, err := spec.LoadMux(spec.Path())
	if err != nil {
		t.Fatal(err)
	}
	played := 0
	for _, ex := range examples {
		if ex.Request == nil || ex.Answer == nil {
			continue
		}
		t.Run(ex.Name, func(t *testing.T) {
			h := newMuxSpecHandler()
			_, addr := testserver.Start(t, muxSpecStreams{h}, server.Config{})
			c := dial(t, addr)
			if ex.Name != "The preface and the acknowledgement" {
				var ack []byte
				c, _, _ = dialMux(t, addr)
				_ = ack
			}
			write(t, c, ex.Request)
			// Read the first answer frame, then let SLOW answer.
			first := readN(t, c, frame.HeaderSize)
			n := int(first[3]) | int(first[2])<<8
			first = append(first, readN(t, c, n)...)
			close(h.release)
			got := append(first, readN(t, c, len(ex.Answer)-len(first))...)
			if !bytes.Equal(got, ex.Answer) {
				t.Fatalf("got  % x\nwant % x", got, ex.Answer)
			}
			played++
		})
	}
	if played < 6 {
		t.Fatalf("played %d mux examples, want at least 6", played)
	}
}

// TestMuxCancelReachesHandler: a cancel frame ends the handler's context.
func TestMuxCancelReachesHandler(t *testing.T) {
	h := newMuxSpecHandler()
	rec := stats.NewMemory()
	_, addr := startServer(t, h.respond, server.Config{Stats: rec})
	c, r, _ := dialMux(t, addr)
	write(t, c, frame.AppendMux(nil, frame.KindRequest, 5, []byte("WAIT")))
	<-h.waiting // a cancel that comes first stops the call before it runs
	write(t, c, frame.AppendMux(nil, frame.KindCancel, 5, nil))
	select {
	case err := <-h.cancelled:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("handler's context ended with %v", err)
		}
	case <-time.After(safety):
		t.Fatal("the handler's context was not cancelled")
	}
	f := readMux(t, r)
	if code, _ := f.ErrorCode(); f.Kind != frame.KindError || f.ID != 5 || code != frame.CodeCancelled {
		t.Fatalf("answer %+v, want error %v for id 5", f, frame.CodeCancelled)
	}
	// The id may be used again at once.
	write(t, c, frame.AppendMux(nil, frame.KindRequest, 5, []byte("again")))
	if f := readMux(t, r); f.Kind != frame.KindAnswer || string(f.Body) != "again" {
		t.Fatalf("after the cancel: %+v", f)
	}
	waitFor(t, func() bool { return rec.Counter("requests.cancelled") == 1 }, "requests.cancelled counted")
}

// TestMuxCancelReadAtTheLimit: with MaxInFlight calls running and as
// many waiting, the most a client keeps on a connection, the server still
// reads it: a cancel reaches its handler. (The reader used to stop once
// MaxInFlight calls waited, and the handler ran on, cancel unread.)
func TestMuxCancelReadAtTheLimit(t *testing.T) {
	h := newMuxSpecHandler()
	h.cancelled = make(chan error, 4) // every WAIT ends cancelled, at the close
	_, addr := startServer(t, h.respond, server.Config{MaxInFlight: 2})
	c, r, _ := dialMux(t, addr)
	write(t, c, frame.AppendMux(frame.AppendMux(nil, frame.KindRequest, 1, []byte("WAIT")), frame.KindRequest, 2, []byte("WAIT")))
	<-h.waiting
	<-h.waiting
	var req []byte
	req = frame.AppendMux(req, frame.KindRequest, 3, []byte("WAIT"))
	req = frame.AppendMux(req, frame.KindRequest, 4, []byte("WAIT"))
	req = frame.AppendMux(req, frame.KindCancel, 1, nil)
	write(t, c, req)
	select {
	case err := <-h.cancelled:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("handler's context ended with %v", err)
		}
	case <-time.After(safety):
		t.Fatal("the cancel was not read: the handler's context did not end")
	}
	if f := readMux(t, r); f.Kind != frame.KindError || f.ID != 1 {
		t.Fatalf("answer %+v, want the cancelled call's error for id 1", f)
	}
}

// TestMuxDisconnectCancelsHandlers: a client that closes ends its calls.
func TestMuxDisconnectCancelsHandlers(t *testing.T) {
	h := newMuxSpecHandler()
	_, addr := startServer(t, h.respond, server.Config{})
	c, _, _ := dialMux(t, addr)
	write(t, c, frame.AppendMux(nil, frame.KindRequest, 1, []byte("WAIT")))
	<-h.waiting
	_ = c.Close()
	select {
	case err := <-h.cancelled:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("ended with %v", err)
		}
	case <-time.After(safety):
		t.Fatal("a disconnect did not cancel the handler")
	}
}

// TestMuxFastCallsPassSlowOne: over one connection, answers to fast calls
// arrive while a slow call is still running.
func TestMuxFastCallsPassSlowOne(t *testing.T) {
	h := newMuxSpecHandler()
	_, addr := startServer(t, h.respond, server.Config{})
	c, r, _ := dialMux(t, addr)
	write(t, c, frame.AppendMux(nil, frame.KindRequest, 1, []byte("SLOW")))
	var req []byte
	for i := range 50 {
		req = frame.AppendMux(req, frame.KindRequest, uint32(100+i), fmt.Appendf(nil, "fast%d", i))
	}
	write(t, c, req)
	seen := map[uint32]bool{}
	for range 50 {
		f := readMux(t, r)
		if f.Kind != frame.KindAnswer || f.ID < 100 || seen[f.ID] || string(f.Body) != fmt.Sprintf("fast%d", f.ID-100) {
			t.Fatalf("unexpected %+v", f)
		}
		seen[f.ID] = true
	}
	close(h.release) // only now may the slow call answer
	if f := readMux(t, r); f.ID != 1 || string(f.Body) != "SLOW" {
		t.Fatalf("last answer %+v, want the slow one", f)
	}
}

// TestMuxLimits: requests over MaxInFlight wait for a handler, a frame
// over the limit is refused with a code saying it did not run, and the
// connection goes on.
func TestMuxLimits(t *testing.T) {
	h := newMuxSpecHandler()
	var mu sync.Mutex
	started := 0
	_, addr := startServer(t, func(ctx context.Context, req []byte, sp *span.Span) ([]byte, error) {
		mu.Lock()
		started++
		mu.Unlock()
		return h.respond(ctx, req, sp)
	}, server.Config{MaxInFlight: 2, Limits: frame.Limits{MaxFrameSize: 64}})
	c, r, ack := dialMux(t, addr)
	if ack.MaxInFlight != 2 || ack.MaxFrameSize != 64 {
		t.Fatalf("ack %+v", ack)
	}
	var req []byte
	for id := range uint32(3) {
		req = frame.AppendMux(req, frame.KindRequest, id+1, []byte("SLOW"))
	}
	// A frame over the limit is answered and skipped.
	req = frame.AppendMux(req, frame.KindRequest, 9, make([]byte, 100))
	write(t, c, req)
	f := readMux(t, r)
	if code, _ := f.ErrorCode(); f.Kind != frame.KindError || f.ID != 9 || code != frame.CodeTooLarge || !code.NotRun() {
		t.Fatalf("got %+v (%v), want id 9 %v", f, code, frame.CodeTooLarge)
	}
	mu.Lock()
	if started > 2 {
		t.Errorf("%d handlers started with MaxInFlight 2", started)
	}
	mu.Unlock()
	close(h.release)
	got := map[uint32]bool{}
	for range 3 {
		got[readMux(t, r).ID] = true
	}
	if !got[1] || !got[2] || !got[3] {
		t.Fatalf("answers %v, want ids 1, 2 and 3", got)
	}
	write(t, c, frame.AppendMux(nil, frame.KindRequest, 4, []byte("ok")))
	if f := readMux(t, r); f.ID != 4 || string(f.Body) != "ok" {
		t.Fatalf("after the refusal: %+v", f)
	}
}

// TestMuxServerWideBound: MaxCalls refuses with "overloaded".
func TestMuxServerWideBound(t *testing.T) {
	h := newMuxSpecHandler()
	_, addr := startServer(t, h.respond, server.Config{MaxCalls: 1})
	c1, r1, _ := dialMux(t, addr)
	c2, r2, _ := dialMux(t, addr)
	write(t, c1, frame.AppendMux(nil, frame.KindRequest, 1, []byte("SLOW")))
	// c1's request runs once its second is refused, which is read after it.
	write(t, c1, frame.AppendMux(nil, frame.KindRequest, 2, []byte("x")))
	if f := readMux(t, r1); f.ID != 2 || f.Kind != frame.KindError {
		t.Fatalf("second call on a full server: %+v", f)
	}
	write(t, c2, frame.AppendMux(nil, frame.KindRequest, 1, []byte("x")))
	f := readMux(t, r2)
	if code, _ := f.ErrorCode(); code != frame.CodeOverloaded {
		t.Fatalf("other connection: %+v, want overloaded", f)
	}
	close(h.release)
	if f := readMux(t, r1); f.ID != 1 {
		t.Fatalf("slow answer %+v", f)
	}
}

// TestMuxProtocolErrors: a malformed frame gets an error frame with code
// protocol error, then the connection closes.
func TestMuxProtocolErrors(t *testing.T) {
	examples, err := spec.LoadMux(spec.Path())
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string][]byte{
		"batch header":   frame.AppendBatch(nil, []byte("x")),
		"duplicate id":   append(frame.AppendMux(nil, frame.KindRequest, 1, []byte("SLOW")), frame.AppendMux(nil, frame.KindRequest, 1, []byte("x"))...),
		"answer kind":    frame.AppendMux(nil, frame.KindAnswer, 1, nil),
		"v1 header -2³¹": {0x80, 0, 0, 0},
	}
	for _, ex := range examples {
		if ex.Malformed != nil {
			cases[ex.Name] = ex.Malformed
		}
	}
	h := newMuxSpecHandler()
	defer close(h.release)
	_, addr := startServer(t, h.respond, server.Config{Logger: quietLogger()})
	for name, bad := range cases {
		t.Run(name, func(t *testing.T) {
			c, r, _ := dialMux(t, addr)
			write(t, c, bad)
			if name != "v1 header -2³¹" {
				f := readMux(t, r)
				if code, _ := f.ErrorCode(); f.Kind != frame.KindError || f.ID != 0 || code != frame.CodeProtocol {
					t.Fatalf("got %+v, want a protocol error", f)
				}
			}
			if _, err := r.ReadFrame(nil); err == nil {
				t.Fatal("the connection stayed open")
			}
		})
	}
}

// startSlowCall starts call 1, SLOW, on c, and returns once call 2,
// read after it, is answered: SLOW's handler is running.
func startSlowCall(t *testing.T, c net.Conn, r *frame.Reader) {
	t.Helper()
	write(t, c, frame.AppendMux(nil, frame.KindRequest, 1, []byte("SLOW")))
	write(t, c, frame.AppendMux(nil, frame.KindRequest, 2, []byte("x")))
	if f := readMux(t, r); f.ID != 2 {
		t.Fatalf("%+v", f)
	}
}

// TestMuxShutdownGoesAway: Shutdown sends a go-away, refuses new calls,
// answers the running ones, and ends once the client closes.
func TestMuxShutdownGoesAway(t *testing.T) {
	h := newMuxSpecHandler()
	s, addr := startServer(t, h.respond, server.Config{})
	c, r, _ := dialMux(t, addr)
	startSlowCall(t, c, r)
	done := make(chan error, 1)
	go func() { done <- s.Shutdown(context.Background()) }()
	f := readMux(t, r)
	if code, _ := f.ErrorCode(); f.Kind != frame.KindGoAway || code != frame.CodeShuttingDown {
		t.Fatalf("got %+v, want go-away", f)
	}
	write(t, c, frame.AppendMux(nil, frame.KindRequest, 3, []byte("late")))
	f = readMux(t, r)
	if code, _ := f.ErrorCode(); f.ID != 3 || code != frame.CodeShuttingDown {
		t.Fatalf("a call after go-away: %+v", f)
	}
	select {
	case err := <-done:
		t.Fatalf("Shutdown returned %v with a call running", err)
	default:
	}
	close(h.release)
	if f := readMux(t, r); f.ID != 1 || string(f.Body) != "SLOW" {
		t.Fatalf("the running call: %+v", f)
	}
	_ = c.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestMuxShutdownGraceRefusesLateCalls: once a mux connection has no call
// left after a go-away, a call its client sent before it read the go-away
// is refused, within goAwayGrace, not lost with the connection: on a
// connection idle when Shutdown began, and on one whose last call was
// answered after.
func TestMuxShutdownGraceRefusesLateCalls(t *testing.T) {
	for _, busy := range []bool{false, true} {
		t.Run(map[bool]string{false: "idle", true: "busy"}[busy], func(t *testing.T) {
			h := newMuxSpecHandler()
			s, addr := startServer(t, h.respond, server.Config{})
			c, r, _ := dialMux(t, addr)
			if busy {
				startSlowCall(t, c, r)
			}
			done := make(chan error, 1)
			go func() { done <- s.Shutdown(context.Background()) }()
			if f := readMux(t, r); f.Kind != frame.KindGoAway {
				t.Fatalf("got %+v, want go-away", f)
			}
			if busy {
				close(h.release)
				if f := readMux(t, r); f.ID != 1 || string(f.Body) != "SLOW" {
					t.Fatalf("the running call: %+v", f)
				}
			}
			write(t, c, frame.AppendMux(nil, frame.KindRequest, 3, []byte("late")))
			f := readMux(t, r)
			if code, _ := f.ErrorCode(); f.ID != 3 || code != frame.CodeShuttingDown {
				t.Fatalf("a call after the go-away: %+v, want refused as shutting down", f)
			}
			_ = c.Close()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestMuxShutdownGraceIgnoresLateCalls: a client that keeps sending calls
// after the go-away gets each refused, and the connection still closes
// when the grace runs out: a late call does not start the grace again.
func TestMuxShutdownGraceIgnoresLateCalls(t *testing.T) {
	s, addr := startServer(t, echo, server.Config{})
	c, r, _ := dialMux(t, addr)
	// A call answered first: the server serves c in the multiplexed mode.
	write(t, c, frame.AppendMux(nil, frame.KindRequest, 1, []byte("x")))
	if f := readMux(t, r); f.ID != 1 {
		t.Fatalf("%+v", f)
	}
	done := make(chan error, 1)
	go func() { done <- s.Shutdown(context.Background()) }()
	if f := readMux(t, r); f.Kind != frame.KindGoAway {
		t.Fatalf("got %+v, want go-away", f)
	}
	stop := make(chan struct{})
	sent := make(chan struct{})
	defer func() { close(stop); <-sent }()
	go func() {
		defer close(sent)
		for id := uint32(3); ; id++ {
			if _, err := c.Write(frame.AppendMux(nil, frame.KindRequest, id, []byte("late"))); err != nil {
				return
			}
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	// Five graces, far more than one takes, and still short of safety.
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	refused := 0
	for {
		p, err := r.ReadFrame(nil)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("the connection is still open after %d late calls were refused", refused)
			}
			break
		}
		f, err := frame.ParseMuxPayload(p)
		if code, _ := f.ErrorCode(); err != nil || code != frame.CodeShuttingDown {
			t.Fatalf("a call after the go-away: %+v (%v), want refused as shutting down", f, err)
		}
		refused++
	}
	if refused == 0 {
		t.Fatal("no late call was refused")
	}
	if err := result(t, done); err != nil {
		t.Fatal(err)
	}
}

// TestMuxShutdownGraceEndsHalfFrame: a frame the client had begun when
// its calls were answered after the go-away does not hold the connection
// for ReadTimeout: the grace bounds it too, and the connection ends as
// the shutdown ends it, not as a read timeout.
func TestMuxShutdownGraceEndsHalfFrame(t *testing.T) {
	h := newMuxSpecHandler()
	rec := stats.NewMemory()
	s, addr := startServer(t, h.respond, server.Config{ReadTimeout: time.Minute, Stats: rec})
	c, r, _ := dialMux(t, addr)
	startSlowCall(t, c, r)
	late := frame.AppendMux(nil, frame.KindRequest, 3, []byte("late"))
	write(t, c, late[:6]) // its length, kind and flags; no id yet
	done := make(chan error, 1)
	go func() { done <- s.Shutdown(context.Background()) }()
	if f := readMux(t, r); f.Kind != frame.KindGoAway {
		t.Fatalf("got %+v, want go-away", f)
	}
	close(h.release)
	if f := readMux(t, r); f.ID != 1 || string(f.Body) != "SLOW" {
		t.Fatalf("the running call: %+v", f)
	}
	expectClosed(t, c) // within safety, far short of ReadTimeout
	if err := result(t, done); err != nil {
		t.Fatal(err)
	}
	if n := rec.Counter(server.StatErrReadTimeout); n != 0 {
		t.Errorf("errors.read_timeout = %d, want 0", n)
	}
}

// TestMuxShutdownGraceSparesAdmittedCall: a request the server had
// admitted before the go-away, its body still arriving, is a call the
// grace waits for: it runs and is answered, however long past the grace
// its body takes (within ReadTimeout).
func TestMuxShutdownGraceSparesAdmittedCall(t *testing.T) {
	rec := stats.NewMemory()
	s, addr := startServer(t, echo, server.Config{ReadTimeout: time.Minute, Stats: rec})
	c, r, _ := dialMux(t, addr)
	call := frame.AppendMux(nil, frame.KindRequest, 1, []byte("admitted before the go-away"))
	write(t, c, call[:frame.HeaderSize+frame.MuxHeaderSize+4])
	// The server has read the header, and admits the call as it reads it.
	waitFor(t, func() bool {
		return rec.Counter(server.StatBytesIn) >= int64(len(frame.AppendPreface(nil))+frame.HeaderSize+frame.MuxHeaderSize+4)
	}, "the header read")
	time.Sleep(50 * time.Millisecond)
	done := make(chan error, 1)
	go func() { done <- s.Shutdown(context.Background()) }()
	if f := readMux(t, r); f.Kind != frame.KindGoAway {
		t.Fatalf("got %+v, want go-away", f)
	}
	time.Sleep(1500 * time.Millisecond) // past the one-second grace
	write(t, c, call[frame.HeaderSize+frame.MuxHeaderSize+4:])
	if f := readMux(t, r); f.Kind != frame.KindAnswer || f.ID != 1 || string(f.Body) != "admitted before the go-away" {
		t.Fatalf("the admitted call: %+v", f)
	}
	_ = c.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestV1ClientOnMuxServer: first frames that look like a preface but are
// not, and first frames shorter than one, are served as v1.
func TestV1ClientOnMuxServer(t *testing.T) {
	_, addr := startServer(t, echo, server.Config{})
	for _, first := range [][]byte{
		[]byte("PINGPINGPING"),                  // 12 bytes, not the magic
		[]byte("P"),                             // shorter than a preface
		frame.AppendPreface(nil)[4:15],          // a prefix of the magic
		append(frame.AppendPreface(nil)[4:], 0), // longer
	} {
		c := dial(t, addr)
		write(t, c, frame.AppendFrame(nil, first))
		if got := readN(t, c, 4+len(first)); !bytes.Equal(got[4:], first) {
			t.Fatalf("v1 echo of % x: % x", first, got)
		}
	}
}

// TestV1OnlyServerHandsPrefaceToHandler documents what a v1 handler sees
// from a client that asks for mux.
func TestV1OnlyServerHandsPrefaceToHandler(t *testing.T) {
	var mu sync.Mutex
	var seen [][]byte
	_, addr := startServer(t, func(_ context.Context, req []byte, _ *span.Span) ([]byte, error) {
		mu.Lock()
		seen = append(seen, bytes.Clone(req))
		mu.Unlock()
		return []byte("?"), nil
	}, server.Config{V1Only: true})
	c := dial(t, addr)
	write(t, c, frame.AppendPreface(nil))
	r := frame.NewReader(c, frame.Limits{})
	p, err := r.ReadFrame(nil)
	if err != nil || string(p) != "?" {
		t.Fatalf("answer %q, %v", p, err)
	}
	if _, ok := frame.ParseAck(p); ok {
		t.Fatal("a v1-only server acknowledged")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 1 || !bytes.Equal(seen[0], frame.AppendPreface(nil)[4:]) {
		t.Fatalf("handler saw %q", seen)
	}
}

var _ = io.EOF

// TestMuxIdleTimeout: a mux connection with a call running is not idle;
// once its calls are answered, IdleTimeout closes it.
func TestMuxIdleTimeout(t *testing.T) {
	h := newMuxSpecHandler()
	rec := stats.NewMemory()
	_, addr := startServer(t, h.respond, server.Config{IdleTimeout: 50 * time.Millisecond, Stats: rec})
	c, r, _ := dialMux(t, addr)
	write(t, c, frame.AppendMux(nil, frame.KindRequest, 1, []byte("SLOW")))
	time.Sleep(200 * time.Millisecond) // the scenario: four idle timeouts pass
	close(h.release)
	if f := readMux(t, r); f.ID != 1 || string(f.Body) != "SLOW" {
		t.Fatalf("the slow call: %+v", f)
	}
	if _, err := r.ReadFrame(nil); err == nil {
		t.Fatal("an idle mux connection stayed open")
	}
	waitFor(t, func() bool { return rec.Counter("conns.idle_timeout") == 1 }, "conns.idle_timeout counted")
}

// TestMuxNoIdleTimeoutWaitsForNextFrame is TestNoIdleTimeoutKeepsIdleConnections
// in the multiplexed mode: without IdleTimeout, the ReadTimeout deadline
// of a frame that came in pieces stayed set, and every wait for the next
// frame failed at once: the reader spun, and never read that frame.
func TestMuxNoIdleTimeoutWaitsForNextFrame(t *testing.T) {
	const timeout = 100 * time.Millisecond
	_, addr := startServer(t, echo, server.Config{IdleTimeout: -1, ReadTimeout: timeout})
	c, r, _ := dialMux(t, addr)
	first := frame.AppendMux(nil, frame.KindRequest, 2, []byte("first"))
	write(t, c, first[:8])
	time.Sleep(timeout / 4)
	write(t, c, first[8:])
	if f := readMux(t, r); string(f.Body) != "first" {
		t.Fatalf("first answer %q", f.Body)
	}
	time.Sleep(3 * timeout) // idle, past the frame's deadline
	write(t, c, frame.AppendMux(nil, frame.KindRequest, 4, []byte("after")))
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if f := readMux(t, r); f.ID != 4 || string(f.Body) != "after" {
		t.Fatalf("answer to the request after the idle spell: id %d, %q", f.ID, f.Body)
	}
}
