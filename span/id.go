package span

import (
	"errors"
	"fmt"
	"math/rand/v2"
)

// ErrInvalidID is wrapped by the error ParseID returns for malformed input.
var ErrInvalidID = errors.New("tcpez/span: invalid span id")

// ID identifies a span. The zero ID means "no id", for example no parent.
type ID uint64

// NewID returns a random non-zero ID. It uses the runtime's per-thread
// generator, which is cheap and needs no lock; span IDs need to be unique
// in practice, not unpredictable.
func NewID() ID {
	for {
		if v := rand.Uint64(); v != 0 {
			return ID(v)
		}
	}
}

const hexDigits = "0123456789abcdef"

// String returns id as 16 lowercase hex digits, zero-padded, so that IDs
// line up in logs and sort as text in numeric order.
func (id ID) String() string {
	var b [16]byte
	for i := len(b) - 1; i >= 0; i-- {
		b[i] = hexDigits[id&0xf]
		id >>= 4
	}
	return string(b[:])
}

// ParseID parses the form String returns: exactly 16 hex digits, in either
// case. "0000000000000000" parses to the zero ID, so every ID round-trips.
func ParseID(s string) (ID, error) {
	if len(s) != 16 {
		return 0, fmt.Errorf("%w %q: want 16 hex digits, got %d characters", ErrInvalidID, s, len(s))
	}
	var id ID
	for i := 0; i < len(s); i++ {
		var d byte
		switch c := s[i]; {
		case '0' <= c && c <= '9':
			d = c - '0'
		case 'a' <= c && c <= 'f':
			d = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			d = c - 'A' + 10
		default:
			return 0, fmt.Errorf("%w %q: %q at offset %d is not a hex digit", ErrInvalidID, s, c, i)
		}
		id = id<<4 | ID(d)
	}
	return id, nil
}
