package server_test

import (
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tcpez/tcpez/stats/statsd"
)

// endOfStats is the last counter a udpStatsd sends, so that reading its
// packets stops at it rather than at a deadline.
const endOfStats = "test_end_of_stats"

// udpStatsd is a statsd Recorder that sends real UDP packets to a socket
// the test plays the daemon on.
type udpStatsd struct {
	*statsd.Recorder
	pc net.PacketConn
}

func newUDPStatsd(t testing.TB) *udpStatsd {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	rec, err := statsd.New(statsd.Config{Address: pc.LocalAddr().String()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rec.Close() })
	return &udpStatsd{Recorder: rec, pc: pc}
}

// counters closes the recorder and returns the counters the daemon
// received, summed by name. Call it once whatever is counted was
// recorded. Loopback delivers every packet Close flushed; the safety
// deadline only keeps a broken test from hanging.
func (u *udpStatsd) counters(t testing.TB) map[string]int64 {
	t.Helper()
	u.Count(endOfStats, 1)
	if err := u.Close(); err != nil {
		t.Fatal(err)
	}
	if n := u.Dropped(); n != 0 {
		t.Fatalf("statsd dropped %d events", n)
	}
	_ = u.pc.SetReadDeadline(time.Now().Add(safety))
	got := map[string]int64{}
	buf := make([]byte, 64<<10)
	for got[endOfStats] == 0 {
		n, _, err := u.pc.ReadFrom(buf)
		if err != nil {
			t.Fatalf("reading statsd packets (have %v): %v", got, err)
		}
		for _, line := range strings.Split(strings.TrimSpace(string(buf[:n])), "\n") {
			name, rest, ok := strings.Cut(line, ":")
			value, kind, ok2 := strings.Cut(rest, "|")
			if !ok || !ok2 || kind != "c" {
				continue
			}
			v, err := strconv.ParseInt(value, 10, 64)
			if err != nil {
				t.Fatalf("statsd line %q: %v", line, err)
			}
			got[name] += v
		}
	}
	return got
}
