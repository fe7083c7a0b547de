package main

import (
	"context"
	"hash/crc32"

	"github.com/tcpez/tcpez/examples/jobs/jobspb"
	"github.com/tcpez/tcpez/protoserver"
	"github.com/tcpez/tcpez/span"
)

const maxBlurRadius = 16

// worker implements jobspb.JobsServer: it runs one job at a time, as a
// machine with one core for the work would, so that calls queue up on it
// while it is busy.
type worker struct {
	name string
	// passes is how many times the blur runs: 1 normally, more to play a
	// slower machine. The result is the same.
	passes int
	busy   chan struct{} // holds a token while a job runs
}

func newWorker(name string, passes int) *worker {
	return &worker{name: name, passes: max(passes, 1), busy: make(chan struct{}, 1)}
}

// Resize runs a job. Its span gets the worker and job as attributes,
// "queue", "resize" and "blur" timings, and a "rows" counter of the rows
// computed, which the server's request log shows.
func (w *worker) Resize(ctx context.Context, job *jobspb.ImageJob, sp *span.Span) (*jobspb.JobResult, error) {
	sp.Attr("worker", w.name)
	sp.Attr("job", job.Id)
	if err := check(job); err != nil {
		return nil, err
	}
	sp.Start("queue")
	if err := ctx.Err(); err != nil {
		sp.Finish("queue")
		return nil, stopped(job, err, 0)
	}
	select {
	case w.busy <- struct{}{}:
	case <-ctx.Done():
		sp.Finish("queue")
		return nil, stopped(job, ctx.Err(), 0)
	}
	defer func() { <-w.busy }()
	sp.Finish("queue")

	sp.Start("resize")
	resized, err := resize(ctx, job, sp)
	sp.Finish("resize")
	if err != nil {
		return nil, err
	}
	ow, oh := int(job.OutWidth), int(job.OutHeight)
	out := resized
	if r := int(job.BlurRadius); r > 0 {
		sp.Start("blur")
		for range w.passes {
			if out, err = blur(ctx, job, resized, ow, oh, r, sp); err != nil {
				break
			}
		}
		sp.Finish("blur")
		if err != nil {
			return nil, err
		}
	}
	return &jobspb.JobResult{
		Id:       job.Id,
		Worker:   w.name,
		Width:    job.OutWidth,
		Height:   job.OutHeight,
		Pixels:   out,
		Checksum: crc32.ChecksumIEEE(out),
	}, nil
}

func check(job *jobspb.ImageJob) error {
	if uint64(len(job.Pixels)) != uint64(job.Width)*uint64(job.Height) {
		return protoserver.Errorf(protoserver.InvalidArgument, "job %s: %d pixels for a %d×%d image", job.Id, len(job.Pixels), job.Width, job.Height)
	}
	return checkShape(job)
}

// checkShape checks a job's sizes, whose pixels may come later.
func checkShape(job *jobspb.ImageJob) error {
	switch {
	case job.Width == 0 || job.Height == 0:
		return protoserver.Errorf(protoserver.InvalidArgument, "job %s: an image of %d×%d", job.Id, job.Width, job.Height)
	case job.OutWidth == 0 || job.OutHeight == 0 || job.OutWidth > job.Width || job.OutHeight > job.Height:
		return protoserver.Errorf(protoserver.InvalidArgument, "job %s: cannot resize %d×%d to %d×%d", job.Id, job.Width, job.Height, job.OutWidth, job.OutHeight)
	case job.BlurRadius > maxBlurRadius:
		return protoserver.Errorf(protoserver.InvalidArgument, "job %s: blur radius %d over %d", job.Id, job.BlurRadius, maxBlurRadius)
	}
	return nil
}

// stopped is the error of a job that ctx stopped after rows rows.
func stopped(job *jobspb.ImageJob, err error, rows int) error {
	if err == context.DeadlineExceeded {
		return protoserver.Errorf(protoserver.DeadlineExceeded, "job %s: deadline exceeded after %d rows", job.Id, rows)
	}
	return err // cancelled: the connection or the server is closing
}

// resize scales the job's image to its output size, each output pixel the
// rounded average of the source pixels under it. It checks ctx before each
// row and counts the rows on sp.
func resize(ctx context.Context, job *jobspb.ImageJob, sp *span.Span) ([]byte, error) {
	w, h := int(job.Width), int(job.Height)
	ow, oh := int(job.OutWidth), int(job.OutHeight)
	src, dst := job.Pixels, make([]byte, ow*oh)
	for y := range oh {
		if err := ctx.Err(); err != nil {
			return nil, stopped(job, err, y)
		}
		y0, y1 := y*h/oh, (y+1)*h/oh
		for x := range ow {
			x0, x1 := x*w/ow, (x+1)*w/ow
			sum := 0
			for sy := y0; sy < y1; sy++ {
				for _, p := range src[sy*w+x0 : sy*w+x1] {
					sum += int(p)
				}
			}
			n := (y1 - y0) * (x1 - x0)
			dst[y*ow+x] = byte((sum + n/2) / n)
		}
		sp.Add("rows", 1)
	}
	return dst, nil
}

// blur is a box blur of radius r, the edges extended, computed the
// straightforward way: (2r+1)² reads a pixel.
func blur(ctx context.Context, job *jobspb.ImageJob, src []byte, w, h, r int, sp *span.Span) ([]byte, error) {
	dst := make([]byte, len(src))
	n := (2*r + 1) * (2*r + 1)
	for y := range h {
		if err := ctx.Err(); err != nil {
			return nil, stopped(job, err, y)
		}
		for x := range w {
			sum := 0
			for dy := -r; dy <= r; dy++ {
				row := src[clamp(y+dy, h)*w:]
				for dx := -r; dx <= r; dx++ {
					sum += int(row[clamp(x+dx, w)])
				}
			}
			dst[y*w+x] = byte((sum + n/2) / n)
		}
		sp.Add("rows", 1)
	}
	return dst, nil
}

func clamp(i, n int) int {
	return min(max(i, 0), n-1)
}

// makeImage returns a w×h test image, different for each seed: gradients
// under deterministic noise.
func makeImage(w, h int, seed uint32) []byte {
	img := make([]byte, w*h)
	x := seed*2654435761 + 1
	for i := range img {
		x ^= x << 13 // xorshift32
		x ^= x >> 17
		x ^= x << 5
		px, py := i%w, i/w
		img[i] = byte((px*255/w+py*255/h)/2) ^ byte(x&0x3f)
	}
	return img
}
