package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tcpez/tcpez/client"
	"github.com/tcpez/tcpez/server"
	"github.com/tcpez/tcpez/span"
)

// The stream case (-stream N): N MiB echoed through one tcpez stream on
// loopback, beside the same bytes echoed by the raw loop (sys_raw.go) in
// the same run, with the heap's growth sampled during each transfer. Both
// ends run in this process, so the growth measured bounds each side's.

// streamChunk is the size of each Write to the stream and of each raw
// frame: the matrix's bandwidth size.
const streamChunk = 1 << 20

// streamResult is one transfer: payload bytes echoed (each went both
// ways), how long it took, and the heap's largest growth over its start.
type streamResult struct {
	bytes      int64
	took       time.Duration
	heapGrowth uint64
}

func (r streamResult) mibPerSec() float64 {
	return float64(r.bytes) / (1 << 20) / r.took.Seconds()
}

// heapWatch samples HeapInuse until stopped and keeps the peak.
type heapWatch struct {
	base uint64
	peak atomic.Uint64
	stop chan struct{}
	done sync.WaitGroup
}

func watchHeap() *heapWatch {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	w := &heapWatch{base: ms.HeapInuse, stop: make(chan struct{})}
	w.peak.Store(ms.HeapInuse)
	w.done.Go(func() {
		t := time.NewTicker(2 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-w.stop:
				return
			case <-t.C:
			}
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > w.peak.Load() {
				w.peak.Store(ms.HeapInuse)
			}
		}
	})
	return w
}

// growth stops the watch and returns the peak's growth over the start.
func (w *heapWatch) growth() uint64 {
	close(w.stop)
	w.done.Wait()
	return w.peak.Load() - w.base
}

// streamEcho serves the stream case: it copies what it reads back.
type streamEcho struct{}

func (streamEcho) Respond(_ context.Context, req []byte, _ *span.Span) ([]byte, error) {
	return req, nil
}

func (streamEcho) ServeStream(_ context.Context, _ []byte, s *server.Stream) error {
	buf := make([]byte, 256<<10)
	_, err := io.CopyBuffer(struct{ io.Writer }{s}, struct{ io.Reader }{s}, buf)
	return err
}

// runStreamTransfer echoes size bytes through one stream.
func runStreamTransfer(ctx context.Context, size int64) (streamResult, error) {
	srv, addr, done, err := startTCPEZServer(streamEcho{})
	if err != nil {
		return streamResult{}, err
	}
	defer stopTCPEZServer(srv, done)
	c, err := client.New([]string{addr}, client.Config{Protocol: client.ProtocolMux})
	if err != nil {
		return streamResult{}, err
	}
	defer c.Close()
	// Open one stream first, so that the dial is not measured.
	if err := c.WaitConnected(ctx); err != nil {
		return streamResult{}, err
	}
	src := make([]byte, streamChunk)
	for i := range src {
		src[i] = byte(i * 7)
	}
	dst := make([]byte, 256<<10)
	w := watchHeap()
	start := time.Now()
	s, err := c.Stream(ctx, nil)
	if err != nil {
		w.growth()
		return streamResult{}, err
	}
	sendErr := make(chan error, 1)
	go func() {
		for sent := int64(0); sent < size; sent += streamChunk {
			if err := s.Send(src); err != nil {
				sendErr <- err
				return
			}
		}
		sendErr <- s.CloseSend()
	}()
	var got int64
	for {
		n, err := s.Read(dst)
		got += int64(n)
		if err == io.EOF {
			break
		}
		if err != nil {
			w.growth()
			return streamResult{}, err
		}
	}
	took := time.Since(start)
	growth := w.growth()
	if err := <-sendErr; err != nil {
		return streamResult{}, err
	}
	if got != size {
		return streamResult{}, fmt.Errorf("stream: echoed %d bytes of %d", got, size)
	}
	return streamResult{bytes: size, took: took, heapGrowth: growth}, nil
}

// runRawTransfer echoes size bytes through the raw loop, a frame of
// streamChunk at a time.
func runRawTransfer(ctx context.Context, size int64) (streamResult, error) {
	sys := &rawSystem{}
	if err := sys.Start(); err != nil {
		return streamResult{}, err
	}
	defer sys.Close()
	cl, err := sys.NewCaller()
	if err != nil {
		return streamResult{}, err
	}
	defer cl.Close()
	req := make([]byte, streamChunk)
	if _, err := cl.Call(ctx, req); err != nil { // warm: the dial and buffers
		return streamResult{}, err
	}
	w := watchHeap()
	start := time.Now()
	for sent := int64(0); sent < size; sent += streamChunk {
		if _, err := cl.Call(ctx, req); err != nil {
			w.growth()
			return streamResult{}, err
		}
	}
	took := time.Since(start)
	return streamResult{bytes: size, took: took, heapGrowth: w.growth()}, nil
}

// runPipelinedTransfer echoes size bytes through the pipelined raw loop
// (sys_raw_pipelined.go): streamChunk frames, four in flight on one
// connection, so that the network is busy both ways as it is for a
// stream. A stricter yardstick than the raw loop, reported beside it.
func runPipelinedTransfer(ctx context.Context, size int64) (streamResult, error) {
	sys := &rawPipelinedSystem{}
	if err := sys.Start(); err != nil {
		return streamResult{}, err
	}
	defer sys.Close()
	const inFlight = 4
	var left atomic.Int64
	left.Store(size / streamChunk)
	errs := make(chan error, inFlight)
	w := watchHeap()
	start := time.Now()
	var wg sync.WaitGroup
	for range inFlight {
		cl, err := sys.NewCaller()
		if err != nil {
			return streamResult{}, err
		}
		wg.Go(func() {
			req := make([]byte, streamChunk)
			for left.Add(-1) >= 0 {
				if _, err := cl.Call(ctx, req); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	took := time.Since(start)
	growth := w.growth()
	select {
	case err := <-errs:
		return streamResult{}, err
	default:
	}
	return streamResult{bytes: size, took: took, heapGrowth: growth}, nil
}

// runStreamCase alternates the raw loop and the stream rounds times and
// reports every run and the ratio of the medians.
func runStreamCase(ctx context.Context, mib, rounds int, out io.Writer) error {
	size := int64(mib) << 20
	var raw, pipe, st []streamResult
	for range rounds {
		r, err := runRawTransfer(ctx, size)
		if err != nil {
			return fmt.Errorf("raw: %w", err)
		}
		raw = append(raw, r)
		p, err := runPipelinedTransfer(ctx, size)
		if err != nil {
			return fmt.Errorf("raw pipelined: %w", err)
		}
		pipe = append(pipe, p)
		s, err := runStreamTransfer(ctx, size)
		if err != nil {
			return fmt.Errorf("stream: %w", err)
		}
		st = append(st, s)
		fmt.Fprintf(out, "raw %6.0f MiB/s   raw pipelined %6.0f MiB/s   stream %6.0f MiB/s, heap +%4.1f MiB\n",
			r.mibPerSec(), p.mibPerSec(), s.mibPerSec(), float64(s.heapGrowth)/(1<<20))
	}
	rm, pm, sm := medianRate(raw), medianRate(pipe), medianRate(st)
	var worst uint64
	for _, s := range st {
		worst = max(worst, s.heapGrowth)
	}
	fmt.Fprintf(out, "\n%d MiB echoed, median of %d: raw loop %.0f MiB/s, one stream %.0f MiB/s: %.2f× the raw loop (%.2f× the pipelined raw loop, %.0f MiB/s); the stream's largest heap growth %.1f MiB (both ends)\n",
		mib, rounds, rm, sm, sm/rm, sm/pm, pm, float64(worst)/(1<<20))
	if worst > 16<<20 {
		return errors.New("the stream's heap grew by more than 16 MiB")
	}
	return nil
}

func medianRate(rs []streamResult) float64 {
	v := make([]float64, len(rs))
	for i, r := range rs {
		v[i] = r.mibPerSec()
	}
	for i := range v { // a few values: insertion sort
		for j := i; j > 0 && v[j] < v[j-1]; j-- {
			v[j], v[j-1] = v[j-1], v[j]
		}
	}
	return v[len(v)/2]
}
