package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"

	"github.com/tcpez/tcpez/internal/memcachedtest"
)

// A proc is a server under test, in a process of its own.
type proc struct {
	name string
	addr string
	pid  int
	stop func()
}

// startMemcached starts memcached on a free port: its defaults (4
// threads unless told) but for the memory, which must hold the 4 KiB keys
// of the get cells.
func startMemcached(ctx context.Context, threads int) (*proc, error) {
	args := []string{"-m", "1024"}
	if threads > 0 {
		args = append(args, "-t", strconv.Itoa(threads))
	}
	mc, err := memcachedtest.Run(ctx, args...)
	if err != nil {
		return nil, err
	}
	return &proc{name: "memcached", addr: mc.Addr, pid: mc.Pid(), stop: mc.Stop}, nil
}

// buildKvcache builds examples/kvcache into dir.
func buildKvcache(ctx context.Context, dir string) (string, error) {
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..")
	bin := filepath.Join(dir, "kvcache")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./examples/kvcache")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building kvcache: %v\n%s", err, out)
	}
	return bin, nil
}

var memcacheAddrRE = regexp.MustCompile(`memcache_addr="?([0-9.:]+)`)

// startKvcache runs the kvcache binary with its memcached listener on a
// free port, and the extra flags; procs > 0 is its GOMAXPROCS.
func startKvcache(ctx context.Context, name, bin string, procs int, extra ...string) (*proc, error) {
	dir, err := os.MkdirTemp("", "kvcache-bench")
	if err != nil {
		return nil, err
	}
	args := append([]string{"--serve", "127.0.0.1:0", "--memcache", "127.0.0.1:0"}, extra...)
	for i, a := range args {
		if a == "JOURNAL" {
			args[i] = filepath.Join(dir, "kv.journal")
		}
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	if procs > 0 {
		cmd.Env = append(os.Environ(), "GOMAXPROCS="+strconv.Itoa(procs))
	}
	return startProc(name, cmd, memcacheAddrRE, func() { os.RemoveAll(dir) })
}

// startProc starts cmd, a server named name, and waits for the line of its
// standard error in which addrRE finds the address it serves; cleanup
// runs once the process has ended, or at once if it could not start.
func startProc(name string, cmd *exec.Cmd, addrRE *regexp.Regexp, cleanup func()) (*proc, error) {
	stderr, err := cmd.StderrPipe()
	if err == nil {
		err = cmd.Start()
	}
	if err != nil {
		cleanup()
		return nil, err
	}
	p := &proc{name: name, pid: cmd.Process.Pid, stop: func() {
		cmd.Process.Kill()
		cmd.Wait()
		cleanup()
	}}
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		if m := addrRE.FindStringSubmatch(sc.Text()); m != nil {
			p.addr = m[1]
			go io.Copy(io.Discard, stderr)
			return p, nil
		}
	}
	p.stop()
	return nil, errors.Join(fmt.Errorf("%s did not say where it serves", name), sc.Err())
}
