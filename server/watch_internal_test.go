package server

import (
	"testing"

	"github.com/tcpez/tcpez/frame"
)

// TestWatcherSkipsOneAtATime checks that a connection of one request at a
// time is never watched: a new reader could start nothing before the
// slow handler's answer, so the watcher's ticks would buy nothing.
func TestWatcherSkipsOneAtATime(t *testing.T) {
	for _, tc := range []struct {
		maxInFlight int
		watched     bool
	}{{1, false}, {0, true}, {2, true}} {
		srv, addr := startInternal(t, echo, Config{MaxInFlight: tc.maxInFlight})
		nc := dialInternal(t, addr)
		w, r := frame.NewWriter(nc), frame.NewReader(nc, frame.Limits{})
		for range 3 {
			if err := w.WriteFrame([]byte("ping")); err != nil {
				t.Fatal(err)
			}
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
			if _, err := r.ReadFrame(nil); err != nil {
				t.Fatal(err)
			}
		}
		srv.watch.mu.Lock()
		watched := len(srv.watch.conns) > 0
		srv.watch.mu.Unlock()
		if watched != tc.watched {
			t.Errorf("MaxInFlight %d: watched %v, want %v", tc.maxInFlight, watched, tc.watched)
		}
		nc.Close()
	}
}
