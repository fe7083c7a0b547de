// Package memcachedtest runs a real memcached, for the tests and the
// benchmark that compare tcpez's text protocol with it.
//
//	addr := memcachedtest.Start(t) // skips where memcached is not installed, except in CI
package memcachedtest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"
)

// Proc is a running memcached.
type Proc struct {
	Addr string // host:port on 127.0.0.1
	cmd  *exec.Cmd
}

// Pid is the process id, for reading its CPU time.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Stop kills memcached and waits for it.
func (p *Proc) Stop() {
	p.cmd.Process.Kill()
	p.cmd.Wait()
}

// Run starts memcached on a free port of 127.0.0.1 with its defaults and
// args, and waits until it accepts connections.
func Run(ctx context.Context, args ...string) (*Proc, error) {
	bin, err := exec.LookPath("memcached")
	if err != nil {
		return nil, fmt.Errorf("memcached not installed (apt-get install memcached): %w", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	// As root it must be told whom to run as; UDP off.
	args = append([]string{"-u", "nobody", "-l", "127.0.0.1", "-p", strconv.Itoa(port), "-U", "0"}, args...)
	cmd := exec.CommandContext(ctx, bin, args...)
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &Proc{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), cmd: cmd}
	for range 1000 {
		if c, err := net.Dial("tcp", p.Addr); err == nil {
			c.Close()
			return p, nil
		}
		select {
		case <-ctx.Done():
			p.Stop()
			return nil, ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
	p.Stop()
	return nil, fmt.Errorf("memcached did not listen on %s", p.Addr)
}

// Start runs memcached for the test and stops it at its end. Where
// memcached is not installed the test is skipped, except in CI (CI set),
// whose .ci/run installs it.
func Start(t testing.TB) string {
	t.Helper()
	if _, err := exec.LookPath("memcached"); err != nil && os.Getenv("CI") == "" {
		t.Skip("memcached not installed (apt-get install memcached)")
	}
	p, err := Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Stop)
	return p.Addr
}
