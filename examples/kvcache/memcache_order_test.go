package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// TestPipelinedCommandsRunInOrder: commands pipelined in one write run one
// after another, as memcached runs them, so a get sees the set before it
// and a delete the set before it. Before, once a handler had been slow
// (here: the journal's fsync) the engine started the buffered commands
// concurrently, and `set p1 …; get p1` written at once could answer END.
func TestPipelinedCommandsRunInOrder(t *testing.T) {
	addr := startMemcacheNode(t, nodeOptions{journal: JournalConfig{Path: filepath.Join(t.TempDir(), "journal"), SyncEvery: -1}})
	var req, want strings.Builder
	for i := range 100 {
		v := fmt.Sprint(i)
		fmt.Fprintf(&req, "set k 0 0 %d\r\n%s\r\nget k\r\ndelete k\r\nget k\r\n", len(v), v)
		fmt.Fprintf(&want, "STORED\r\nVALUE k 0 %d\r\n%s\r\nEND\r\nDELETED\r\nEND\r\n", len(v), v)
	}
	got, err := exchange(t, addr, []byte(req.String()), want.Len())
	if err != nil || string(got) != want.String() {
		t.Fatalf("answered %q, %v;\nwant %q", got, err, want.String())
	}
}
