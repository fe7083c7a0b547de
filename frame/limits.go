package frame

import (
	"fmt"
	"math"
)

const (
	// HeaderSize is the size of a frame or batch header on the wire.
	HeaderSize = 4
	// DefaultMaxFrameSize is the frame length limit when Limits leaves it zero.
	DefaultMaxFrameSize = 16 << 20
	// DefaultMaxBatchCount is the batch count limit when Limits leaves it zero.
	DefaultMaxBatchCount = 65536
	// MaxFrameSize is the largest length the int32 header can carry.
	MaxFrameSize = math.MaxInt32
	// MaxBatchCount is the largest count the int32 header can carry: -2^31
	// is malformed, so a batch holds at most 2^31-1 frames.
	MaxBatchCount = math.MaxInt32
)

// Limits bound what a peer may announce. The zero value means the defaults.
type Limits struct {
	// MaxFrameSize is the largest payload length accepted, in bytes.
	// Zero means DefaultMaxFrameSize; at most MaxFrameSize.
	MaxFrameSize int
	// MaxBatchCount is the largest number of frames one batch may announce.
	// Memory is taken only as the frames arrive, not for the count.
	// Zero means DefaultMaxBatchCount; at most MaxBatchCount.
	MaxBatchCount int
}

// Validate reports limits out of range, wrapping ErrInvalidLimits.
func (l Limits) Validate() error {
	if l.MaxFrameSize < 0 || l.MaxFrameSize > MaxFrameSize {
		return fmt.Errorf("%w: MaxFrameSize %d not in [0, %d]", ErrInvalidLimits, l.MaxFrameSize, MaxFrameSize)
	}
	if l.MaxBatchCount < 0 || l.MaxBatchCount > MaxBatchCount {
		return fmt.Errorf("%w: MaxBatchCount %d not in [0, %d]", ErrInvalidLimits, l.MaxBatchCount, MaxBatchCount)
	}
	return nil
}

func (l Limits) frameLimit() int {
	if l.MaxFrameSize <= 0 {
		return DefaultMaxFrameSize
	}
	return min(l.MaxFrameSize, MaxFrameSize)
}

func (l Limits) batchLimit() int {
	if l.MaxBatchCount <= 0 {
		return DefaultMaxBatchCount
	}
	return min(l.MaxBatchCount, MaxBatchCount)
}

// CheckHeader checks a header that starts a request or an answer: a frame
// length, or a batch count when negative.
func (l Limits) CheckHeader(h Header) error {
	switch {
	case h == math.MinInt32:
		return ErrMalformedHeader
	case h < 0:
		if n := -int64(h); n > int64(l.batchLimit()) {
			return &SizeError{Batch: true, Limit: l.batchLimit(), Size: n}
		}
		return nil
	default:
		return l.CheckLength(h)
	}
}

// CheckLength checks a header where only a frame may start: inside a batch,
// or where a single answer is expected.
func (l Limits) CheckLength(h Header) error {
	if h == math.MinInt32 {
		return ErrMalformedHeader
	}
	if h < 0 {
		return ErrNegativeLength
	}
	if int64(h) > int64(l.frameLimit()) {
		return &SizeError{Limit: l.frameLimit(), Size: int64(h)}
	}
	return nil
}
