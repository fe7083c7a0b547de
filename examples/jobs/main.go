// Jobs is a tcpez example of job dispatch: image-processing jobs (resize,
// then box blur) sent to a pool of workers, each job one call of the Jobs
// service (jobspb/jobs.proto). A worker runs one job at a time, and one of
// the three is five times slower than the others; the client balances by
// outstanding calls (client.PowerOfTwo, the default), so the slow worker,
// whose calls pile up, gets fewer jobs. Every job has a deadline, which the
// worker checks between rows: a job given too little time comes back
// DeadlineExceeded. Each job's span — queue, resize and blur timings and a
// count of rows — shows in the workers' request log, on stderr. An image
// of any size goes through Process, a stream: pixels in, progress events
// and the result out, in chunks, with memory bounded on both sides.
//
//	go run ./examples/jobs
package main

import (
	"context"
	"fmt"
	"hash/crc32"
	"io"
	"log"
	"net"
	"os"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/tcpez/tcpez/client"
	"github.com/tcpez/tcpez/examples/jobs/jobspb"
	"github.com/tcpez/tcpez/protoserver"
	"github.com/tcpez/tcpez/server"
)

const (
	numJobs    = 60
	submitters = 12
	slowdown   = 5
	srcSize    = 512 // source images are srcSize×srcSize
	outSize    = 256
	blurRadius = 3
	images     = 4 // distinct source images
	jobTimeout = 20 * time.Second
	// The side of the image streamed with Process.
	streamSize = 8192
	// The deadline of a job too big to finish in it.
	shortDeadline = 100 * time.Millisecond
)

func main() {
	logger := logrus.New() // to stderr
	logger.SetLevel(logrus.InfoLevel)
	if err := demo(os.Stdout, logger); err != nil {
		log.Fatal(err)
	}
}

// pool is a set of workers, each a server on loopback.
type pool struct {
	workers []*worker
	servers []*server.Server
	addrs   []string
}

// startPool starts a server per worker. Their request logs go to logger at
// info level, each entry with the job's span.
func startPool(logger logrus.FieldLogger, workers ...*worker) (*pool, error) {
	p := &pool{workers: workers}
	for _, w := range workers {
		svc := protoserver.NewService(protoserver.ServiceConfig{Logger: logger})
		jobspb.RegisterJobs(svc, w)
		srv := server.New(svc, server.Config{
			Logger:     logger.WithField("worker", w.name),
			RequestLog: server.RequestLog{Level: logrus.InfoLevel},
		})
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			p.stop()
			return nil, err
		}
		go srv.Serve(l)
		p.servers = append(p.servers, srv)
		p.addrs = append(p.addrs, l.Addr().String())
	}
	return p, nil
}

func (p *pool) stop() {
	for _, srv := range p.servers {
		srv.Shutdown(context.Background())
	}
}

// batch is the outcome of runBatch.
type batch struct {
	done      int
	failed    []error
	perWorker map[string]int
	checked   bool // every result matched the local computation
}

// runBatch submits n jobs from the given number of goroutines, each with
// its own deadline, and checks every result against the same job run
// locally.
func runBatch(ctx context.Context, jc jobspb.JobsClient, n, goroutines int) batch {
	srcs := make([][]byte, images)
	want := make([]uint32, images)
	for i := range srcs {
		srcs[i] = makeImage(srcSize, srcSize, uint32(i))
		res, err := newWorker("local", 1).Resize(ctx, newJob("ref", srcs[i]), nil)
		if err != nil {
			panic(err)
		}
		want[i] = res.Checksum
	}

	var mu sync.Mutex
	b := batch{perWorker: make(map[string]int), checked: true}
	next := make(chan int)
	go func() {
		defer close(next)
		for i := range n {
			next <- i
		}
	}()
	var wg sync.WaitGroup
	for range goroutines {
		wg.Go(func() {
			for i := range next {
				jctx, cancel := context.WithTimeout(ctx, jobTimeout)
				res, err := jc.Resize(jctx, newJob(fmt.Sprint("job-", i), srcs[i%images]))
				cancel()
				mu.Lock()
				if err != nil {
					b.failed = append(b.failed, err)
				} else {
					b.done++
					b.perWorker[res.Worker]++
					b.checked = b.checked && res.Checksum == want[i%images] && res.Checksum == crc32.ChecksumIEEE(res.Pixels)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return b
}

func newJob(id string, src []byte) *jobspb.ImageJob {
	return &jobspb.ImageJob{
		Id: id, Width: srcSize, Height: srcSize, Pixels: src,
		OutWidth: outSize, OutHeight: outSize, BlurRadius: blurRadius,
	}
}

// demo runs the pool and the jobs and prints a summary that is the same on
// every run.
func demo(out io.Writer, logger logrus.FieldLogger) error {
	p, err := startPool(logger, newWorker("fast-1", 1), newWorker("fast-2", 1), newWorker("slow-3", slowdown))
	if err != nil {
		return err
	}
	defer p.stop()
	fmt.Fprintf(out, "3 workers: fast-1 fast-2 slow-3 (%dx slower), one job at a time each\n", slowdown)

	// Jobs take seconds, so the client does not route calls around an
	// answer that takes long (Config.OverdueAfter): balancing by the jobs
	// outstanding on each worker is what spreads them.
	c, err := client.New(p.addrs, client.Config{Balancer: client.PowerOfTwo, OverdueAfter: -1})
	if err != nil {
		return err
	}
	defer c.Close()
	jc := jobspb.NewJobsClient(protoserver.NewClient(c, protoserver.ClientConfig{}))
	ctx := context.Background()

	fmt.Fprintf(out, "%d jobs (%d×%d to %d×%d, blur radius %d) from %d goroutines, each with a %v deadline\n",
		numJobs, srcSize, srcSize, outSize, outSize, blurRadius, submitters, jobTimeout)
	b := runBatch(ctx, jc, numJobs, submitters)
	fmt.Fprintf(out, "jobs done: %d, failed: %d\n", b.done, len(b.failed))
	for _, err := range b.failed {
		fmt.Fprintln(out, "  failure:", err)
	}
	fmt.Fprintln(out, "every result matches the job run locally:", b.checked)
	fmt.Fprintln(out, "every worker got jobs:", len(b.perWorker) == 3)
	fast := float64(b.perWorker["fast-1"]+b.perWorker["fast-2"]) / 2
	fmt.Fprintln(out, "the slow worker got fewer than the fast ones' average:", float64(b.perWorker["slow-3"]) < fast)

	// An image of any size streams in and its result streams out: a
	// 64 MiB image, never held whole by the client or the worker.
	progress := 0
	crc := crc32.NewIEEE()
	huge := &jobspb.ImageJob{Id: "streamed", Width: streamSize, Height: streamSize, OutWidth: streamSize / 8, OutHeight: streamSize / 8, BlurRadius: blurRadius}
	done, err := processImage(ctx, jc, huge, newImageReader(streamSize, streamSize, 7), func(*jobspb.Progress) { progress++ }, crc)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "a %d MiB image streamed: %d progress events, a %d×%d result whose checksum matches its rows: %t\n",
		streamSize*streamSize>>20, progress, done.Width, done.Height, done.Checksum == crc.Sum32())

	// A job that cannot finish in time (it would take seconds): the worker
	// stops it between rows once the deadline passes, and the caller hears
	// DeadlineExceeded — from the worker, or from its own client if that
	// gives up first.
	big := &jobspb.ImageJob{Id: "too-big", Width: 1024, Height: 1024, Pixels: makeImage(1024, 1024, 9), OutWidth: 1024, OutHeight: 1024, BlurRadius: maxBlurRadius}
	sctx, cancel := context.WithTimeout(ctx, shortDeadline)
	defer cancel()
	_, err = jc.Resize(sctx, big)
	fmt.Fprintf(out, "a big job with a %v deadline: %v\n", shortDeadline, protoserver.CodeOf(err))

	// Shut the workers down before the client: Shutdown lets the jobs in
	// hand finish and log their spans.
	p.stop()
	return nil
}
