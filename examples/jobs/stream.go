package main

import (
	"context"
	"errors"
	"hash/crc32"
	"io"
	"slices"

	"github.com/tcpez/tcpez/examples/jobs/jobspb"
	"github.com/tcpez/tcpez/protoserver"
)

// chunkSize is the size of the pixel and result chunks: messages stay
// small whatever the image, so memory is bounded on both sides.
const chunkSize = 64 << 10

// progressSteps is how many Progress events a job sends while reading.
const progressSteps = 10

// Process runs a streamed job (see jobs.proto): it resizes source rows as
// they arrive, blurs result rows once the rows under their radius are in,
// and sends the result's rows in chunks as they are done.
func (w *worker) Process(stream jobspb.Jobs_ProcessServer) error {
	ctx := stream.Context()
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	job := first.GetJob()
	if job == nil || len(job.Pixels) != 0 {
		return protoserver.Errorf(protoserver.InvalidArgument, "the first chunk must carry the job, without pixels")
	}
	if err := checkShape(job); err != nil {
		return err
	}
	select {
	case w.busy <- struct{}{}:
	case <-ctx.Done():
		return stopped(job, ctx.Err(), 0)
	}
	defer func() { <-w.busy }()

	p := newPipeline(job, stream)
	if len(first.Pixels) > 0 {
		if err := p.feed(first.Pixels); err != nil {
			return err
		}
	}
	for p.rowsRead < p.h {
		if err := ctx.Err(); err != nil {
			return stopped(job, err, p.rowsRead)
		}
		c, err := stream.Recv()
		if err == io.EOF {
			return protoserver.Errorf(protoserver.InvalidArgument, "job %s: the image ended after %d of %d rows", job.Id, p.rowsRead, p.h)
		}
		if err != nil {
			return err
		}
		if err := p.feed(c.Pixels); err != nil {
			return err
		}
	}
	if err := p.finish(); err != nil {
		return err
	}
	return stream.Send(&jobspb.JobEvent{Event: &jobspb.JobEvent_Done{Done: &jobspb.JobResult{
		Id: job.Id, Worker: w.name, Width: job.OutWidth, Height: job.OutHeight, Checksum: p.crc,
	}}})
}

// pipeline is a streamed job's state: the source row being filled, the
// sums of the result row being resized, and the last 2r+1 resized rows
// the blur reads.
type pipeline struct {
	job      *jobspb.ImageJob
	stream   jobspb.Jobs_ProcessServer
	w, h     int
	ow, oh   int
	r        int
	row      []byte // the source row being filled
	fill     int
	rowsRead int
	col      []int // the result column of each source column
	acc      []int // sums of the result row being resized
	resized  int   // result rows resized
	ring     [][]byte
	blurred  int // result rows blurred and queued
	out      []byte
	crc      uint32
	nextStep int
}

func newPipeline(job *jobspb.ImageJob, stream jobspb.Jobs_ProcessServer) *pipeline {
	p := &pipeline{
		job: job, stream: stream,
		w: int(job.Width), h: int(job.Height), ow: int(job.OutWidth), oh: int(job.OutHeight), r: int(job.BlurRadius),
	}
	p.row = make([]byte, p.w)
	p.col = make([]int, p.w)
	for x := range p.ow {
		for sx := x * p.w / p.ow; sx < (x+1)*p.w/p.ow; sx++ {
			p.col[sx] = x
		}
	}
	p.acc = make([]int, p.ow)
	p.ring = make([][]byte, 2*p.r+1)
	for i := range p.ring {
		p.ring[i] = make([]byte, p.ow)
	}
	return p
}

// feed takes the next pixels of the source.
func (p *pipeline) feed(px []byte) error {
	for len(px) > 0 {
		if p.rowsRead == p.h {
			return protoserver.Errorf(protoserver.InvalidArgument, "job %s: more pixels than %d×%d", p.job.Id, p.w, p.h)
		}
		n := copy(p.row[p.fill:], px)
		px, p.fill = px[n:], p.fill+n
		if p.fill < p.w {
			continue
		}
		p.fill = 0
		if err := p.sourceRow(); err != nil {
			return err
		}
	}
	return nil
}

// sourceRow adds a whole source row to the result row under it, and
// finishes that row once its last source row is in.
func (p *pipeline) sourceRow() error {
	y := p.resized
	for sx, v := range p.row {
		p.acc[p.col[sx]] += int(v)
	}
	p.rowsRead++
	if p.rowsRead*progressSteps >= (p.nextStep+1)*p.h {
		p.nextStep++
		ev := &jobspb.JobEvent{Event: &jobspb.JobEvent_Progress{Progress: &jobspb.Progress{RowsRead: uint32(p.rowsRead), Rows: uint32(p.h)}}}
		if err := p.stream.Send(ev); err != nil {
			return err
		}
	}
	y0, y1 := y*p.h/p.oh, (y+1)*p.h/p.oh
	if p.rowsRead < y1 {
		return nil
	}
	dst := p.ring[y%len(p.ring)]
	for x := range p.ow {
		n := (y1 - y0) * ((x+1)*p.w/p.ow - x*p.w/p.ow)
		dst[x] = byte((p.acc[x] + n/2) / n)
		p.acc[x] = 0
	}
	p.resized++
	// Row y-r has every row under its radius now (rows past the end are
	// clamped to the last, which finish blurs).
	if y-p.r >= 0 {
		return p.blurRow(y - p.r)
	}
	return nil
}

// blurRow blurs result row y, as blur does, from the rows in the ring.
func (p *pipeline) blurRow(y int) error {
	start := len(p.out)
	p.out = slices.Grow(p.out, p.ow)[:start+p.ow]
	dst := p.out[start:]
	if p.r == 0 {
		copy(dst, p.ring[y%len(p.ring)])
	} else {
		n := (2*p.r + 1) * (2*p.r + 1)
		for x := range p.ow {
			sum := 0
			for dy := -p.r; dy <= p.r; dy++ {
				row := p.ring[clamp(y+dy, p.oh)%len(p.ring)]
				for dx := -p.r; dx <= p.r; dx++ {
					sum += int(row[clamp(x+dx, p.ow)])
				}
			}
			dst[x] = byte((sum + n/2) / n)
		}
	}
	p.crc = crc32.Update(p.crc, crc32.IEEETable, dst)
	p.blurred++
	if len(p.out) >= chunkSize {
		return p.flush()
	}
	return nil
}

// flush sends the result rows queued.
func (p *pipeline) flush() error {
	if len(p.out) == 0 {
		return nil
	}
	err := p.stream.Send(&jobspb.JobEvent{Event: &jobspb.JobEvent_Result{Result: p.out}})
	p.out = p.out[:0]
	return err
}

// finish blurs the last rows, whose radius reaches past the image.
func (p *pipeline) finish() error {
	for y := max(p.blurred, 0); y < p.oh; y++ {
		if err := p.blurRow(y); err != nil {
			return err
		}
	}
	return p.flush()
}

// processImage runs a streamed job: job's parameters, then the pixels
// read from src, in chunks. Progress events go to progress, the result's
// rows to result; the result's Done comes back once its checksum matched
// the rows received.
func processImage(ctx context.Context, jc jobspb.JobsClient, job *jobspb.ImageJob, src io.Reader, progress func(*jobspb.Progress), result io.Writer) (*jobspb.JobResult, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // gives the stream up on an early return
	s, err := jc.Process(ctx)
	if err != nil {
		return nil, err
	}
	sent := make(chan error, 1)
	go func() { sent <- sendImage(s, job, src) }()
	crc := crc32.NewIEEE()
	out := io.MultiWriter(crc, result)
	for {
		ev, err := s.Recv()
		if err != nil {
			if err == io.EOF {
				err = errors.New("the job ended without a result")
			}
			cancel()
			<-sent
			return nil, err
		}
		switch e := ev.Event.(type) {
		case *jobspb.JobEvent_Progress:
			progress(e.Progress)
		case *jobspb.JobEvent_Result:
			if _, err := out.Write(e.Result); err != nil {
				cancel()
				<-sent
				return nil, err
			}
		case *jobspb.JobEvent_Done:
			if err := <-sent; err != nil {
				return nil, err
			}
			if e.Done.Checksum != crc.Sum32() {
				return nil, errors.New("the result's checksum does not match its rows")
			}
			return e.Done, nil
		}
	}
}

// sendImage sends the job, then src in chunks, then closes the stream's
// sending side. io.EOF from Send means the worker has ended the job:
// Recv then says how.
func sendImage(s jobspb.Jobs_ProcessClient, job *jobspb.ImageJob, src io.Reader) error {
	if err := s.Send(&jobspb.ImageChunk{Job: job}); err != nil {
		return ignoreEOF(err)
	}
	buf := make([]byte, chunkSize)
	chunk := &jobspb.ImageChunk{}
	for {
		n, err := io.ReadFull(src, buf)
		if n > 0 {
			chunk.Pixels = buf[:n]
			if err := s.Send(chunk); err != nil {
				return ignoreEOF(err)
			}
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return ignoreEOF(s.CloseSend())
		}
		if err != nil {
			return err
		}
	}
}

func ignoreEOF(err error) error {
	if err == io.EOF {
		return nil
	}
	return err
}

// imageReader reads the image makeImage(w, h, seed) makes, without
// holding it.
type imageReader struct {
	w, h, i int
	x       uint32
}

func newImageReader(w, h int, seed uint32) *imageReader {
	return &imageReader{w: w, h: h, x: seed*2654435761 + 1}
}

func (r *imageReader) Read(b []byte) (int, error) {
	n := 0
	for ; n < len(b) && r.i < r.w*r.h; n, r.i = n+1, r.i+1 {
		r.x ^= r.x << 13
		r.x ^= r.x >> 17
		r.x ^= r.x << 5
		px, py := r.i%r.w, r.i/r.w
		b[n] = byte((px*255/r.w+py*255/r.h)/2) ^ byte(r.x&0x3f)
	}
	if n == 0 {
		return 0, io.EOF
	}
	return n, nil
}
