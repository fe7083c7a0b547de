package server_test

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/tcpez/tcpez/frame"
	"github.com/tcpez/tcpez/server"
	"github.com/tcpez/tcpez/span"
)

// TestDisablePanicRecovery: with recovery off, a handler's panic takes the
// process down, as its owner asked. The test runs itself as a child
// process, which is the one that crashes.
func TestDisablePanicRecovery(t *testing.T) {
	if os.Getenv("TCPEZ_CRASH_CHILD") == "1" {
		h := func(context.Context, []byte, *span.Span) ([]byte, error) { panic("deliberate handler bug") }
		_, addr := startServer(t, h, server.Config{DisablePanicRecovery: true})
		c := dial(t, addr)
		write(t, c, frame.AppendFrame(nil, []byte("boom")))
		readN(t, c, 1) // never returns: the process dies first
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestDisablePanicRecovery$", "-test.count=1")
	cmd.Env = append(os.Environ(), "TCPEZ_CRASH_CHILD=1")
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("the child survived a panic with recovery disabled:\n%s", out)
	}
	if !strings.Contains(string(out), "panic: deliberate handler bug") {
		t.Fatalf("the child did not die of the handler's panic (%v):\n%s", err, out)
	}
}
