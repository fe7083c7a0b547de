package main

import (
	"fmt"
	"io"
	"math/bits"
	"strings"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// histBucket is one bar of the latency histogram: the calls (or batches)
// that took more than half of UpToUs and at most UpToUs microseconds.
type histBucket struct {
	UpToUs int64 `json:"up_to_us"`
	Count  int64 `json:"count"`
}

// latencyBuckets groups h into power-of-two buckets of microseconds, from
// the first non-empty one to the last.
func latencyBuckets(h *hdrhistogram.Histogram) []histBucket {
	counts := map[int]int64{}
	lo, hi := 64, -1
	for _, bar := range h.Distribution() {
		if bar.Count == 0 {
			continue
		}
		// bar covers [From, To]; its upper end decides its bucket.
		k := bits.Len64(uint64(max(bar.To, 1) - 1)) // smallest k with 2^k ≥ To
		counts[k] += bar.Count
		lo, hi = min(lo, k), max(hi, k)
	}
	var out []histBucket
	for k := lo; k <= hi; k++ {
		out = append(out, histBucket{UpToUs: 1 << k, Count: counts[k]})
	}
	return out
}

// writeHistogram draws the buckets as text bars, the longest width
// characters wide.
func writeHistogram(w io.Writer, buckets []histBucket, width int) {
	var most, total int64
	for _, b := range buckets {
		most = max(most, b.Count)
		total += b.Count
	}
	if total == 0 {
		return
	}
	for _, b := range buckets {
		n := int((b.Count*int64(width) + most - 1) / most) // a non-empty bucket shows
		fmt.Fprintf(w, "  ≤ %10s  %-*s %d (%.1f%%)\n", usLabel(b.UpToUs), width, strings.Repeat("█", n),
			b.Count, 100*float64(b.Count)/float64(total))
	}
}

// usLabel writes a bucket bound in µs, ms or s.
func usLabel(us int64) string {
	switch {
	case us >= 1_000_000:
		return fmt.Sprintf("%.3g s", float64(us)/1e6)
	case us >= 1000:
		return fmt.Sprintf("%.3g ms", float64(us)/1e3)
	}
	return fmt.Sprintf("%d µs", us)
}
