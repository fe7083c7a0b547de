package textcmd

import (
	"fmt"
	"math"
)

// Defaults for the zero values of Limits.
const (
	// DefaultMaxLineLength is as long as memcached's longest command line
	// with a few keys to spare: 250-byte keys, numbers and "noreply".
	DefaultMaxLineLength = 4096
	// DefaultMaxArgs lets a get name 255 keys.
	DefaultMaxArgs = 256
	// DefaultMaxDataSize is memcached's default item size limit.
	DefaultMaxDataSize = 1 << 20
	// DefaultMaxParts bounds a multi-part response.
	DefaultMaxParts = 4096
	// MaxDataSize is the largest byte count this package reads.
	MaxDataSize = math.MaxInt32
)

// Limits bound what a peer may send. The zero value means the defaults.
type Limits struct {
	// MaxLineLength is the longest line accepted, its line ending
	// included. Default DefaultMaxLineLength. A Reader over a
	// *frame.Reader needs a buffer at least this large.
	MaxLineLength int
	// MaxArgs is the most arguments a line may have after its name.
	// Default DefaultMaxArgs.
	MaxArgs int
	// MaxDataSize is the largest byte count accepted. Memory for a data
	// block is taken only as its bytes arrive, beyond the first 64 KiB.
	// Default DefaultMaxDataSize; at most MaxDataSize.
	MaxDataSize int
	// MaxParts is the most messages one response may hold, its closing
	// line included. Default DefaultMaxParts.
	MaxParts int
}

// Validate reports limits out of range, wrapping ErrInvalidLimits.
func (l Limits) Validate() error {
	switch {
	case l.MaxLineLength < 0, l.MaxArgs < 0, l.MaxParts < 0:
		return fmt.Errorf("%w: negative limit", ErrInvalidLimits)
	case l.MaxDataSize < 0 || l.MaxDataSize > MaxDataSize:
		return fmt.Errorf("%w: MaxDataSize %d not in [0, %d]", ErrInvalidLimits, l.MaxDataSize, MaxDataSize)
	case l.MaxLineLength != 0 && l.MaxLineLength < 3:
		return fmt.Errorf("%w: MaxLineLength %d cannot hold a line", ErrInvalidLimits, l.MaxLineLength)
	}
	return nil
}

// LineLimit is the longest line accepted, the default applied.
func (l Limits) LineLimit() int { return orDefault(l.MaxLineLength, DefaultMaxLineLength) }

func (l Limits) argLimit() int { return orDefault(l.MaxArgs, DefaultMaxArgs) }
func (l Limits) dataLimit() int {
	return min(orDefault(l.MaxDataSize, DefaultMaxDataSize), MaxDataSize)
}
func (l Limits) partLimit() int { return orDefault(l.MaxParts, DefaultMaxParts) }

func orDefault(v, def int) int {
	if v <= 0 {
		return def
	}
	return v
}
