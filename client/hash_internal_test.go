package client

import "testing"

// TestRendezvousStable pins the hash: clients in different processes, and
// in different versions of this package, must agree on where a key lives.
func TestRendezvousStable(t *testing.T) {
	for _, tc := range []struct {
		s    string
		want uint64
	}{
		{"", 0xcbf29ce484222325}, // FNV-1a 64 test vectors
		{"a", 0xaf63dc4c8601ec8c},
		{"foobar", 0x85944171f73967e8},
	} {
		if got := hashString(tc.s); got != tc.want {
			t.Errorf("hashString(%q) = %#x, want %#x", tc.s, got, tc.want)
		}
	}
	got := rendezvousScore(hashString("user:42"), hashString("10.0.0.1:7000"))
	if want := uint64(0x379cdedf728cd7ab); got != want {
		t.Errorf("rendezvousScore = %#x, want %#x", got, want)
	}
}
