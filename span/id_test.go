package span

import (
	"errors"
	"math"
	"testing"
)

func TestIDString(t *testing.T) {
	for _, tc := range []struct {
		id   ID
		want string
	}{
		{0, "0000000000000000"},
		{0x2a, "000000000000002a"},
		{0x0123456789abcdef, "0123456789abcdef"},
		{math.MaxUint64, "ffffffffffffffff"},
	} {
		if got := tc.id.String(); got != tc.want {
			t.Errorf("ID(%#x).String() = %q, want %q", uint64(tc.id), got, tc.want)
		}
	}
}

func TestParseIDRoundTrip(t *testing.T) {
	ids := []ID{0, 1, 0x2a, 0xfedcba9876543210, math.MaxUint64}
	for range 100 {
		ids = append(ids, NewID())
	}
	for _, id := range ids {
		got, err := ParseID(id.String())
		if err != nil || got != id {
			t.Errorf("ParseID(%q) = %#x, %v; want %#x, nil", id.String(), uint64(got), err, uint64(id))
		}
	}
}

func TestParseIDUppercase(t *testing.T) {
	got, err := ParseID("FEDCBA9876543210")
	if err != nil || got != 0xfedcba9876543210 {
		t.Errorf("ParseID(upper case) = %#x, %v; want 0xfedcba9876543210, nil", uint64(got), err)
	}
}

func TestParseIDErrors(t *testing.T) {
	for _, s := range []string{
		"",
		"2a",
		"000000000000002",   // 15 digits
		"000000000000002a0", // 17 digits
		"0x0000000000002a",  // prefix
		"000000000000002g",
		" 00000000000002a",
		"+00000000000002a",
		"-00000000000002a",
		"00000000000002\u00e9", // 16 bytes, not 16 digits
	} {
		id, err := ParseID(s)
		if !errors.Is(err, ErrInvalidID) {
			t.Errorf("ParseID(%q) = %#x, %v; want an error matching ErrInvalidID", s, uint64(id), err)
		}
	}
}

func TestNewIDNonZeroAndDistinct(t *testing.T) {
	const n = 10000
	seen := make(map[ID]bool, n)
	for range n {
		id := NewID()
		if id == 0 {
			t.Fatal("NewID() returned 0")
		}
		if seen[id] {
			t.Fatalf("NewID() returned %v twice in %d draws", id, len(seen)+1)
		}
		seen[id] = true
	}
}
