package main

import (
	"bytes"
	"context"
	"hash/crc32"
	"io"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/tcpez/tcpez/client"
	"github.com/tcpez/tcpez/examples/jobs/jobspb"
	"github.com/tcpez/tcpez/protoserver"
	"github.com/tcpez/tcpez/span"
)

// expiringCtx is a context whose deadline passes after Err has been asked
// n times: it stops a job after a known number of rows, with no clock.
type expiringCtx struct {
	context.Context
	left atomic.Int64
}

func expireAfter(n int64) *expiringCtx {
	c := &expiringCtx{Context: context.Background()}
	c.left.Store(n)
	return c
}

func (c *expiringCtx) Err() error {
	if c.left.Add(-1) < 0 {
		return context.DeadlineExceeded
	}
	return nil
}

func counter(sp *span.Span, name string) int64 {
	n, _ := sp.Fields(nil)[name].(int64)
	return n
}

func smallJob() *jobspb.ImageJob {
	return &jobspb.ImageJob{Id: "j", Width: 64, Height: 48, Pixels: makeImage(64, 48, 1), OutWidth: 32, OutHeight: 24, BlurRadius: 2}
}

// The worker checks the deadline between rows and stops with
// DeadlineExceeded, having counted the rows it did.
func TestResizeDeadline(t *testing.T) {
	for _, tc := range []struct {
		checks int64 // ctx.Err calls that pass
		rows   int64 // rows done by then
	}{
		{checks: 0, rows: 0},   // before the job starts
		{checks: 1, rows: 0},   // before the first row
		{checks: 11, rows: 10}, // in the resize
		{checks: 30, rows: 29}, // in the blur
	} {
		sp := span.New()
		_, err := newWorker("w", 1).Resize(expireAfter(tc.checks), smallJob(), sp)
		if protoserver.CodeOf(err) != protoserver.DeadlineExceeded {
			t.Fatalf("after %d checks: %v, want DeadlineExceeded", tc.checks, err)
		}
		if got := counter(sp, "rows"); got != tc.rows {
			t.Errorf("after %d checks: rows = %d, want %d", tc.checks, got, tc.rows)
		}
	}

	// A cancelled context is no deadline: the service answers it as the
	// server closing.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := newWorker("w", 1).Resize(ctx, smallJob(), nil); err != context.Canceled {
		t.Fatalf("cancelled: %v", err)
	}
}

// Over the network, a job whose deadline is too short comes back
// DeadlineExceeded and the worker is free for the next one.
func TestDeadlineOverTheNetwork(t *testing.T) {
	_, jc := startTestPool(t, newWorker("w", 1))
	big := &jobspb.ImageJob{Id: "big", Width: 1024, Height: 1024, Pixels: makeImage(1024, 1024, 2), OutWidth: 1024, OutHeight: 1024, BlurRadius: maxBlurRadius}
	ctx, cancel := context.WithTimeout(context.Background(), shortDeadline)
	defer cancel()
	if _, err := jc.Resize(ctx, big); protoserver.CodeOf(err) != protoserver.DeadlineExceeded {
		t.Fatalf("big job with a %v deadline: %v, want DeadlineExceeded", shortDeadline, err)
	}
	ctx, cancel = context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := jc.Resize(ctx, smallJob())
	if err != nil || res.Worker != "w" {
		t.Fatalf("the next job: %v, %v", res, err)
	}
}

// The span of a job carries its progress and timings.
func TestResizeSpan(t *testing.T) {
	for _, passes := range []int{1, 3} {
		sp := span.New()
		res, err := newWorker("w", passes).Resize(context.Background(), smallJob(), sp)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := counter(sp, "rows"), int64(24*(1+passes)); got != want {
			t.Errorf("%d blur passes: rows = %d, want %d", passes, got, want)
		}
		f := sp.Fields(nil)
		for _, k := range []string{"queue_ms", "resize_ms", "blur_ms"} {
			if _, ok := f[k]; !ok {
				t.Errorf("span has no %s: %v", k, sp)
			}
		}
		if f["worker"] != "w" || f["job"] != "j" {
			t.Errorf("span attributes: %v", sp)
		}
		if res.Width != 32 || res.Height != 24 || len(res.Pixels) != 32*24 || res.Checksum != crc32.ChecksumIEEE(res.Pixels) || res.Worker != "w" || res.Id != "j" {
			t.Errorf("result: %dx%d, %d pixels, checksum %x", res.Width, res.Height, len(res.Pixels), res.Checksum)
		}
	}
	// Without a blur there is no blur timing.
	sp := span.New()
	job := smallJob()
	job.BlurRadius = 0
	if _, err := newWorker("w", 1).Resize(context.Background(), job, sp); err != nil {
		t.Fatal(err)
	}
	if got := counter(sp, "rows"); got != 24 {
		t.Errorf("no blur: rows = %d, want 24", got)
	}
}

func TestResizeComputes(t *testing.T) {
	// 4×2 to 2×1: each output pixel averages a 2×2 block, rounded.
	job := &jobspb.ImageJob{Width: 4, Height: 2, Pixels: []byte{0, 10, 100, 200, 20, 31, 100, 201}, OutWidth: 2, OutHeight: 1}
	res, err := newWorker("w", 1).Resize(context.Background(), job, nil)
	if err != nil || !bytes.Equal(res.Pixels, []byte{15, 150}) {
		t.Fatalf("resize: %v, %v", res.GetPixels(), err)
	}
	// A blur leaves a flat image flat, and averages a lone spike over its box.
	flat := bytes.Repeat([]byte{77}, 25)
	spike := make([]byte, 25)
	spike[12] = 90 // the centre of 5×5
	for _, tc := range []struct {
		in   []byte
		want func(i int) byte
	}{
		{flat, func(int) byte { return 77 }},
		{spike, func(i int) byte {
			if x, y := i%5, i/5; x >= 1 && x <= 3 && y >= 1 && y <= 3 {
				return 10
			}
			return 0
		}},
	} {
		job := &jobspb.ImageJob{Width: 5, Height: 5, Pixels: tc.in, OutWidth: 5, OutHeight: 5, BlurRadius: 1}
		res, err := newWorker("w", 1).Resize(context.Background(), job, nil)
		if err != nil {
			t.Fatal(err)
		}
		for i, p := range res.Pixels {
			if p != tc.want(i) {
				t.Fatalf("blur: pixel %d = %d, want %d (%v)", i, p, tc.want(i), res.Pixels)
			}
		}
	}
}

func TestInvalidJobs(t *testing.T) {
	for name, edit := range map[string]func(*jobspb.ImageJob){
		"short pixels":   func(j *jobspb.ImageJob) { j.Pixels = j.Pixels[1:] },
		"no width":       func(j *jobspb.ImageJob) { j.Width = 0 },
		"no out height":  func(j *jobspb.ImageJob) { j.OutHeight = 0 },
		"upscale":        func(j *jobspb.ImageJob) { j.OutWidth = j.Width + 1 },
		"too much blur":  func(j *jobspb.ImageJob) { j.BlurRadius = maxBlurRadius + 1 },
		"empty job":      func(j *jobspb.ImageJob) { *j = jobspb.ImageJob{} },
		"huge dimension": func(j *jobspb.ImageJob) { j.Width, j.Height = 1<<31, 1<<31 },
	} {
		job := smallJob()
		edit(job)
		if _, err := newWorker("w", 1).Resize(context.Background(), job, nil); protoserver.CodeOf(err) != protoserver.InvalidArgument {
			t.Errorf("%s: %v, want InvalidArgument", name, err)
		}
	}
}

func startTestPool(t *testing.T, workers ...*worker) (*pool, jobspb.JobsClient) {
	t.Helper()
	logger := logrus.New()
	logger.SetOutput(io.Discard)
	p, err := startPool(logger, workers...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.stop)
	// client.PowerOfTwo, the default; jobs take seconds, so no answer is
	// overdue (see main.go).
	c, err := client.New(p.addrs, client.Config{OverdueAfter: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return p, jobspb.NewJobsClient(protoserver.NewClient(c, protoserver.ClientConfig{}))
}

// Balancing by outstanding calls keeps load off the slow worker: its calls
// pile up, so it is picked less. This is the balancer's outcome, whatever
// the speed of the machine: the slow worker does 5 times the work of the
// others for every job.
func TestLeastOutstandingAvoidsSlowWorker(t *testing.T) {
	_, jc := startTestPool(t, newWorker("fast-1", 1), newWorker("fast-2", 1), newWorker("slow-3", slowdown))
	b := runBatch(context.Background(), jc, numJobs, submitters)
	if b.done != numJobs || len(b.failed) != 0 || !b.checked {
		t.Fatalf("done %d of %d, failures %v, checked %t", b.done, numJobs, b.failed, b.checked)
	}
	fastAvg := float64(b.perWorker["fast-1"]+b.perWorker["fast-2"]) / 2
	t.Logf("jobs per worker: %v", b.perWorker)
	if slow := b.perWorker["slow-3"]; float64(slow) >= fastAvg {
		t.Fatalf("the slow worker got %d jobs, the fast ones %v on average: %v", slow, fastAvg, b.perWorker)
	}
}
