// Command headofline measures, through real loopback sockets, what one slow
// answer does to the calls around it (docs/RELIABILITY.md, "Slow, stuck and
// panicking handlers"):
//
//   - through a client.Client with default options (--v1: speaking v1
//     only), the latency of fast calls started one every --every while
//     one --slow call is in flight;
//   - on a raw connection, how long a PING waits for its answer when two
//     bytes of the next request's header follow it and nothing more.
//
// Run it on two checkouts to compare them: cd bench && go run ./headofline
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/tcpez/tcpez/client"
	"github.com/tcpez/tcpez/frame"
	"github.com/tcpez/tcpez/server"
	"github.com/tcpez/tcpez/span"
)

func main() {
	var (
		rounds = flag.Int("rounds", 3, "rounds of each measurement")
		calls  = flag.Int("calls", 50, "fast calls per round")
		every  = flag.Duration("every", time.Millisecond, "time between the starts of the fast calls")
		slow   = flag.Duration("slow", 300*time.Millisecond, "how long the slow call's handler takes")
		ping   = flag.Duration("ping-limit", 40*time.Second, "how long to wait for the PING answer")
		v1     = flag.Bool("v1", false, "the client speaks v1 only (default: the client's default, the multiplexed mode when the server has it)")
	)
	flag.Parse()
	h := func(_ context.Context, req []byte, _ *span.Span) ([]byte, error) {
		if string(req) == "slow" {
			time.Sleep(*slow)
		}
		return req, nil
	}
	srv := server.New(server.HandlerFunc(h), server.Config{})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	go func() { _ = srv.Serve(l) }()
	defer srv.Close()
	addr := l.Addr().String()
	for round := range *rounds {
		if err := fastDuringSlow(addr, round, *calls, *every, *v1); err != nil {
			log.Fatal(err)
		}
	}
	for round := range *rounds {
		if err := pingBehindPartialHeader(addr, round, *ping); err != nil {
			log.Fatal(err)
		}
	}
}

// fastDuringSlow starts the slow call on a new client, then the fast calls,
// one every every, and prints their latencies.
func fastDuringSlow(addr string, round, calls int, every time.Duration, v1 bool) error {
	var cfg client.Config
	if v1 {
		cfg.Protocol = client.ProtocolV1
	}
	c, err := client.New([]string{addr}, cfg)
	if err != nil {
		return err
	}
	defer c.Close()
	ctx := context.Background()
	start := time.Now()
	slowCall := c.Go(ctx, []byte("slow"))
	var (
		mu   sync.Mutex
		lat  []time.Duration
		errs []error
		wg   sync.WaitGroup
	)
	for i := range calls {
		time.Sleep(every)
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := time.Now()
			_, err := c.Call(ctx, fmt.Appendf(nil, "fast %d", i))
			mu.Lock()
			defer mu.Unlock()
			lat = append(lat, time.Since(t))
			if err != nil {
				errs = append(errs, err)
			}
		}()
	}
	wg.Wait()
	if _, err := slowCall.Wait(); err != nil {
		return err
	}
	if len(errs) > 0 {
		return errs[0]
	}
	slowTook := time.Since(start)
	slices.Sort(lat)
	at := func(q float64) time.Duration { return lat[int(q*float64(len(lat)-1))].Round(10 * time.Microsecond) }
	fmt.Printf("round %d: %d fast calls during a slow one: median %v, p90 %v, max %v (slow call %v)\n",
		round, calls, at(0.5), at(0.9), at(1), slowTook.Round(time.Millisecond))
	return nil
}

// pingBehindPartialHeader sends PING and two bytes of a next header in one
// write and times the PING's answer.
func pingBehindPartialHeader(addr string, round int, limit time.Duration) error {
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer nc.Close()
	next := frame.AppendFrame(nil, []byte("next"))
	msg := append(frame.AppendFrame(nil, []byte("PING")), next[:2]...)
	_ = nc.SetReadDeadline(time.Now().Add(limit))
	t := time.Now()
	if _, err := nc.Write(msg); err != nil {
		return err
	}
	if _, err := io.ReadFull(nc, make([]byte, len(msg)-2)); err != nil {
		return err
	}
	fmt.Printf("round %d: PING behind a partial header answered after %v\n", round, time.Since(t).Round(time.Microsecond))
	return nil
}
