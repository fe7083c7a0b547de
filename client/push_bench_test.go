package client_test

import (
	"context"
	"encoding/binary"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tcpez/tcpez/client"
	"github.com/tcpez/tcpez/server"
	"github.com/tcpez/tcpez/span"
)

func echoHandler(_ context.Context, req []byte, _ *span.Span) ([]byte, error) { return req, nil }

// BenchmarkNotifyOneListener: notifications of 16 bytes from the server to
// one client, counted once the client has them all.
func BenchmarkNotifyOneListener(b *testing.B) {
	srv, addr, _ := startMux(b, server.HandlerFunc(echoHandler), server.Config{})
	var got atomic.Int64
	all := make(chan struct{})
	var want atomic.Int64
	c := pushClient(b, addr, client.Config{OnNotify: func(client.Notification) {
		if got.Add(1) == want.Load() {
			close(all)
		}
	}})
	if _, err := c.Call(context.Background(), []byte("hi")); err != nil {
		b.Fatal(err)
	}
	r := srv.Remotes()[0]
	want.Store(int64(b.N))
	payload := make([]byte, 16)
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; {
		switch err := r.Notify(payload); {
		case err == nil:
			i++
		case errors.Is(err, server.ErrPushDropped):
			time.Sleep(10 * time.Microsecond) // the client is behind: let it catch up
		default:
			b.Fatal(err)
		}
	}
	<-all
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "notifications/s")
}

// BenchmarkBroadcast1000: one notification to 1,000 clients, each on its
// own connection; the delay is from just before Broadcast to each
// client's OnNotify, over every client and round.
func BenchmarkBroadcast1000(b *testing.B) {
	const listeners = 1000
	srv, addr, _ := startMux(b, server.HandlerFunc(echoHandler), server.Config{})
	var (
		mu     sync.Mutex
		delays []time.Duration
		left   sync.WaitGroup
	)
	for range listeners {
		c := pushClient(b, addr, client.Config{OnNotify: func(n client.Notification) {
			d := time.Duration(time.Now().UnixNano() - int64(binary.BigEndian.Uint64(n.Payload)))
			mu.Lock()
			delays = append(delays, d)
			mu.Unlock()
			left.Done()
		}})
		if _, err := c.Call(context.Background(), []byte("hi")); err != nil {
			b.Fatal(err)
		}
	}
	remotes := srv.Remotes()
	payload := make([]byte, 16)
	b.ResetTimer()
	for range b.N {
		left.Add(listeners)
		binary.BigEndian.PutUint64(payload, uint64(time.Now().UnixNano()))
		if _, dropped := server.Broadcast(remotes, payload); dropped != 0 {
			b.Fatalf("%d dropped", dropped)
		}
		left.Wait()
	}
	b.StopTimer()
	slices.Sort(delays)
	b.ReportMetric(float64(delays[len(delays)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(delays[len(delays)*99/100].Microseconds()), "p99-µs")
}
