package protoserver_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/tcpez/tcpez/client"
	"github.com/tcpez/tcpez/internal/israce"
	"github.com/tcpez/tcpez/protoserver"
	"github.com/tcpez/tcpez/protoserver/internal/testpb"
	"github.com/tcpez/tcpez/server"
	"github.com/tcpez/tcpez/span"
)

// The protobuf layer's cost over the byte layer: the same echo, over
// loopback, with the same server and client settings, at 16 B and 4 KiB
// payloads, from one goroutine and from 64 and 256 sharing one client.
//
//	go test -run '^$' -bench Overhead -benchmem ./protoserver/
//
// "bytes" is client.Call against a server.HandlerFunc that returns the
// request; "service" is the generated client's Echo, an EchoRequest whose
// bytes field the service copies into its EchoResponse; "service-reuse" the
// same with ServiceConfig.RequestReuse, each goroutine calling EchoInto
// with its own request and response messages, and "service-deadline" the
// same with a deadline on every call, as real calls have; "compatible" is the same messages in
// compatible mode. ns/op is wall time per call.
func BenchmarkOverhead(b *testing.B) {
	for _, mode := range []string{"bytes", "service", "service-reuse", "service-deadline", "compatible"} {
		for _, size := range []int{16, 4 << 10} {
			for _, conc := range []int{1, 64, 256} {
				b.Run(fmt.Sprintf("%s/%s/conc=%d", mode, sizeName(size), conc), func(b *testing.B) {
					call := benchCall(b, mode, size)
					b.ReportAllocs()
					b.SetBytes(int64(size))
					runConcurrent(b, conc, call)
				})
			}
		}
	}
}

// BenchmarkOverhead1MiB is BenchmarkOverhead's large case: 1 MiB echoes,
// where buffer reuse and copies matter more than the layer's own work.
func BenchmarkOverhead1MiB(b *testing.B) {
	const size = 1 << 20
	for _, mode := range []string{"bytes", "service"} {
		for _, conc := range []int{1, 64} {
			b.Run(fmt.Sprintf("%s/conc=%d", mode, conc), func(b *testing.B) {
				call := benchCall(b, mode, size)
				b.ReportAllocs()
				b.SetBytes(size)
				runConcurrent(b, conc, call)
			})
		}
	}
}

func sizeName(n int) string {
	if n >= 1<<10 {
		return fmt.Sprintf("%dKiB", n>>10)
	}
	return fmt.Sprintf("%dB", n)
}

func echoBytes(_ context.Context, req []byte, _ *span.Span) ([]byte, error) { return req, nil }

// benchCall starts a server for mode and returns what makes a goroutine's
// echo call of size bytes.
func benchCall(b *testing.B, mode string, size int) func() func() {
	payload := make([]byte, size)
	ctx := context.Background()
	switch mode {
	case "bytes":
		_, addr := serve(b, server.HandlerFunc(echoBytes), server.Config{})
		c := newClient(b, addr, client.Config{})
		return shared(func() {
			ans, err := c.Call(ctx, payload)
			if err != nil || len(ans) != size {
				b.Error(len(ans), err)
			}
		})
	case "service-reuse", "service-deadline":
		// echo keeps nothing of its request: its bytes may point into the frame.
		c, _, _ := startService(b, echo, protoserver.ServiceConfig{RequestReuse: true, AliasRequestBytes: true})
		if mode == "service-deadline" {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, time.Hour)
			b.Cleanup(cancel)
		}
		return func() func() {
			req := &testpb.EchoRequest{Data: payload}
			resp := new(testpb.EchoResponse)
			return func() {
				if err := c.EchoInto(ctx, req, resp); err != nil || len(resp.Data) != size {
					b.Error(len(resp.Data), err)
				}
			}
		}
	case "service":
		c, _, _ := startService(b, echo, protoserver.ServiceConfig{})
		req := &testpb.EchoRequest{Data: payload}
		return shared(func() {
			resp, err := c.Echo(ctx, req)
			if err != nil || len(resp.Data) != size {
				b.Error(resp, err)
			}
		})
	case "compatible":
		_, addr := serve(b, protoserver.Compatible(echo, protoserver.CompatibleConfig{}), server.Config{})
		c := protoserver.NewCompatibleClient[testpb.EchoRequest, testpb.EchoResponse](newClient(b, addr, client.Config{}))
		req := &testpb.EchoRequest{Data: payload}
		return shared(func() {
			resp, err := c.Call(ctx, req)
			if err != nil || len(resp.Data) != size {
				b.Error(resp, err)
			}
		})
	}
	panic(mode)
}

// shared is a call that every goroutine makes alike.
func shared(call func()) func() func() { return func() func() { return call } }

// runConcurrent splits b.N calls among g goroutines, each making the call
// newCall returns it.
func runConcurrent(b *testing.B, g int, newCall func() func()) {
	var wg sync.WaitGroup
	b.ResetTimer()
	for i := range g {
		n := b.N / g
		if i < b.N%g {
			n++
		}
		call := newCall()
		wg.Go(func() {
			for range n {
				call()
			}
		})
	}
	wg.Wait()
}

// TestServiceAllocs bounds what a steady-state service-mode call
// allocates, client and server together: the request message and its
// bytes field and the method's response (server), the client's response
// message and its bytes field. The answer is encoded into a buffer the
// connection keeps (server.AppendHandler), and the byte layer's own
// buffers are reused. With ServiceConfig.RequestReuse and a caller that
// reuses its response message (EchoInto), what is left is the two bytes
// fields, which protobuf-go's decoding always allocates, and the method's
// response.
func TestServiceAllocs(t *testing.T) {
	if israce.Enabled {
		t.Skip("the race detector allocates")
	}
	ctx := context.Background()
	req := &testpb.EchoRequest{Data: make([]byte, 16)}
	c, _, _ := startService(t, echo, protoserver.ServiceConfig{})
	wantAllocs(t, "fresh messages", 5, func() error {
		_, err := c.Echo(ctx, req)
		return err
	})
	c, _, _ = startService(t, echo, protoserver.ServiceConfig{RequestReuse: true})
	resp := new(testpb.EchoResponse)
	wantAllocs(t, "reused messages", 3, func() error { return c.EchoInto(ctx, req, resp) })
	// A deadline, which real calls carry, costs no context of its own.
	dctx, cancel := context.WithTimeout(ctx, time.Hour)
	defer cancel()
	wantAllocs(t, "reused messages, with a deadline", 4, func() error { return c.EchoInto(dctx, req, resp) })
}

// wantAllocs fails unless call, once warm, allocates at most limit times.
func wantAllocs(t *testing.T, name string, limit float64, call func() error) {
	t.Helper()
	for range 100 {
		if err := call(); err != nil {
			t.Fatal(err)
		}
	}
	n := testing.AllocsPerRun(1000, func() {
		if err := call(); err != nil {
			t.Fatal(err)
		}
	})
	if n > limit {
		t.Errorf("%s: %v allocations per call, want at most %v", name, n, limit)
	}
}
