package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"time"
)

// A proc is a server under test, in a process of its own.
type proc struct {
	name string
	addr string
	cmd  *exec.Cmd
	dir  string
}

func (p *proc) stop() {
	p.cmd.Process.Kill()
	p.cmd.Wait()
	if p.dir != "" {
		os.RemoveAll(p.dir)
	}
}

// freeAddr returns a free port on 127.0.0.1.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// startMemcached starts /usr/bin/memcached (or memcached on PATH) on a
// free port.
func startMemcached(ctx context.Context, threads int) (*proc, error) {
	bin, err := exec.LookPath("memcached")
	if err != nil {
		return nil, fmt.Errorf("memcached not installed (apt-get install memcached): %w", err)
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	_, port, _ := net.SplitHostPort(addr)
	// Its defaults (4 threads unless told, 64 MB) but for the memory, which
	// must hold the 4 KiB keys of the get cells.
	args := []string{"-u", "nobody", "-l", "127.0.0.1", "-p", port, "-U", "0", "-m", "1024"}
	if threads > 0 {
		args = append(args, "-t", strconv.Itoa(threads))
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &proc{name: "memcached", addr: addr, cmd: cmd}
	if err := awaitListening(ctx, addr); err != nil {
		p.stop()
		return nil, err
	}
	return p, nil
}

func awaitListening(ctx context.Context, addr string) error {
	for range 1000 {
		if c, err := net.Dial("tcp", addr); err == nil {
			return c.Close()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
	return fmt.Errorf("nothing listens on %s", addr)
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
// free port, and the extra flags.
func startKvcache(ctx context.Context, name, bin string, extra ...string) (*proc, error) {
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
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &proc{name: name, cmd: cmd, dir: dir}
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		if m := memcacheAddrRE.FindStringSubmatch(sc.Text()); m != nil {
			p.addr = m[1]
			go io.Copy(io.Discard, stderr)
			return p, nil
		}
	}
	p.stop()
	return nil, errors.Join(errors.New("kvcache did not say where it serves"), sc.Err())
}
