package main

import (
	"bytes"
	"context"
	"hash/crc32"
	"io"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tcpez/tcpez/examples/jobs/jobspb"
	"github.com/tcpez/tcpez/protoserver"
)

// TestProcessMatchesResize: the streamed job gives the result of the
// whole-image call, byte for byte, whatever the chunking and the blur.
func TestProcessMatchesResize(t *testing.T) {
	_, jc := startTestPool(t, newWorker("w", 1))
	ctx := context.Background()
	for _, tc := range []struct{ w, h, ow, oh, r int }{
		{512, 512, 256, 256, 3}, {301, 77, 100, 33, 0}, {64, 64, 64, 64, 16}, {9, 9, 2, 2, 1},
	} {
		src := makeImage(tc.w, tc.h, 5)
		job := &jobspb.ImageJob{Id: "ref", Width: uint32(tc.w), Height: uint32(tc.h), Pixels: src,
			OutWidth: uint32(tc.ow), OutHeight: uint32(tc.oh), BlurRadius: uint32(tc.r)}
		want, err := jc.Resize(ctx, job)
		if err != nil {
			t.Fatal(err)
		}
		shape := &jobspb.ImageJob{Id: "streamed", Width: job.Width, Height: job.Height,
			OutWidth: job.OutWidth, OutHeight: job.OutHeight, BlurRadius: job.BlurRadius}
		var got bytes.Buffer
		events := 0
		done, err := processImage(ctx, jc, shape, newImageReader(tc.w, tc.h, 5), func(*jobspb.Progress) { events++ }, &got)
		if err != nil {
			t.Fatalf("%+v: %v", tc, err)
		}
		if !bytes.Equal(got.Bytes(), want.Pixels) || done.Checksum != want.Checksum {
			t.Fatalf("%+v: the streamed result differs from Resize's", tc)
		}
		if events != min(progressSteps, tc.h) {
			t.Fatalf("%+v: %d progress events", tc, events)
		}
	}
}

// TestImageReader: the reader makes makeImage's image.
func TestImageReader(t *testing.T) {
	got, err := io.ReadAll(newImageReader(37, 11, 3))
	if err != nil || !bytes.Equal(got, makeImage(37, 11, 3)) {
		t.Fatal("imageReader differs from makeImage")
	}
}

// TestProcessBoundedMemory streams a 32 MiB image through a worker on
// loopback: the heap (both ends, one process) never grows by half of it,
// so neither side holds the image.
func TestProcessBoundedMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("32 MiB through a worker")
	}
	_, jc := startTestPool(t, newWorker("w", 1))
	const w, h = 4096, 8192
	job := &jobspb.ImageJob{Id: "huge", Width: w, Height: h, OutWidth: w / 8, OutHeight: h / 8, BlurRadius: 2}
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapInuse
	var peak atomic.Uint64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		var ms runtime.MemStats
		for {
			select {
			case <-stop:
				return
			case <-time.After(2 * time.Millisecond):
			}
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
		}
	}()
	crc := crc32.NewIEEE()
	done, err := processImage(context.Background(), jc, job, newImageReader(w, h, 1), func(*jobspb.Progress) {}, crc)
	close(stop)
	<-sampled
	if err != nil {
		t.Fatal(err)
	}
	if done.Checksum != crc.Sum32() || done.Width != w/8 {
		t.Fatalf("result %+v", done)
	}
	growth := int64(peak.Load()) - int64(base)
	if growth > 16<<20 {
		t.Fatalf("the heap grew by %d MiB for a 32 MiB image", growth>>20)
	}
	t.Logf("heap growth %.1f MiB for a 32 MiB image", float64(growth)/(1<<20))
}

// TestProcessRefuses: a stream without the job first, or with too few
// pixels, is InvalidArgument.
func TestProcessRefuses(t *testing.T) {
	_, jc := startTestPool(t, newWorker("w", 1))
	ctx := context.Background()
	job := &jobspb.ImageJob{Id: "short", Width: 10, Height: 10, OutWidth: 5, OutHeight: 5}
	_, err := processImage(ctx, jc, job, bytes.NewReader(make([]byte, 55)), func(*jobspb.Progress) {}, io.Discard)
	if protoserver.CodeOf(err) != protoserver.InvalidArgument {
		t.Fatalf("too few pixels: %v", err)
	}
	s, err := jc.Process(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(&jobspb.ImageChunk{Pixels: []byte{1}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Recv(); protoserver.CodeOf(err) != protoserver.InvalidArgument {
		t.Fatalf("no job first: %v", err)
	}
}
