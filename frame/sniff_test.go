package frame_test

import (
	"encoding/binary"
	"testing"

	"github.com/tcpez/tcpez/frame"
)

func TestSniff(t *testing.T) {
	for _, tc := range []struct {
		first string
		want  string
	}{
		{"\x16\x03\x01\x02", frame.TLS}, // ClientHello record, TLS 1.0 record version
		{"\x16\x03\x03\x00", frame.TLS},
		{"\x15\x03\x03\x00", frame.TLS}, // alert
		{"GET ", frame.HTTP},
		{"POST", frame.HTTP},
		{"HTTP", frame.HTTP}, // a status line
		{"PRI ", frame.HTTP}, // the HTTP/2 preface
		{"\x00\x00\x00\x04", ""},
		{"\x16\x02\x01\x00", ""},
		{"GETX", ""},
	} {
		h := frame.Header(binary.BigEndian.Uint32([]byte(tc.first)))
		if got := frame.Sniff(h); got != tc.want {
			t.Errorf("Sniff(%q) = %q, want %q", tc.first, got, tc.want)
		}
	}
	// No header a default limit admits is ever taken for another protocol.
	for h := frame.Header(0); h <= frame.DefaultMaxFrameSize; h += 4093 {
		if p := frame.Sniff(h); p != "" {
			t.Fatalf("Sniff(%d) = %q", h, p)
		}
	}
	err := frame.Limits{}.CheckHeader(frame.Header(binary.BigEndian.Uint32([]byte("HTTP"))))
	if frame.SniffError(err) != frame.HTTP {
		t.Fatalf("SniffError(%v) is not HTTP", err)
	}
}
