package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"sync"

	"github.com/tcpez/tcpez/internal/loopback"
)

// The Go loop is a yardstick, as bench/'s raw loop is for tcpez: the
// least a Go server can do for the load's get and set — a goroutine per
// connection reading through a bufio.Reader, a map under a lock, the
// answers of the requests at hand written together — with none of what
// kvcache's listener adds (limits, timeouts, spans, stats, Shutdown,
// every other command). Beside memcached it says how much of a gap is
// Go's runtime and how much the framework's own work.

// goloopEnv makes this program serve the Go loop instead of measuring: its
// value "1" the Go loop, oneReadEnv the Go loop, one read
// (goloop_oneread.go).
const (
	goloopEnv  = "TCPEZ_MEMCACHE_GOLOOP"
	oneReadEnv = "oneread"
)

var goloopAddrRE = regexp.MustCompile(`goloop_addr=([0-9.:]+)`)

// startGoloop runs this program again as the Go loop, on a free port: the
// one read kind (goloop_oneread.go) with oneRead set.
func startGoloop(ctx context.Context, oneRead bool) (*proc, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	name, env := "Go loop", "1"
	if oneRead {
		name, env = "Go loop, one read", oneReadEnv
	}
	cmd := exec.CommandContext(ctx, self)
	cmd.Env = append(os.Environ(), goloopEnv+"="+env)
	return startProc(name, cmd, goloopAddrRE, func() {})
}

// serveGoloopIfAsked serves the Go loop, as goloopEnv asks, until the
// process is killed, in a process that startGoloop started; otherwise it
// returns at once.
func serveGoloopIfAsked() {
	if kind := os.Getenv(goloopEnv); kind != "" {
		fmt.Fprintln(os.Stderr, serveGoloop(kind == oneReadEnv)) // it serves until killed
		os.Exit(1)
	}
}

// serveGoloop serves the Go loop, the one read kind with oneRead set,
// until the process is killed; it returns only why it could not.
func serveGoloop(oneRead bool) error {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	// Its answers go over Reno, as kvcache's do (tcpez's Serve sets it).
	loopback.Listen(l)
	fmt.Fprintf(os.Stderr, "goloop_addr=%s\n", l.Addr())
	var s goloopStore
	for {
		nc, err := l.Accept()
		if err != nil {
			return err
		}
		if oneRead {
			go s.serveOneRead(nc)
		} else {
			go s.serve(nc)
		}
	}
}

type goloopStore struct {
	mu sync.RWMutex
	m  map[string][]byte
}

func (s *goloopStore) serve(nc net.Conn) {
	defer nc.Close()
	r := bufio.NewReaderSize(nc, 64<<10)
	var out []byte
	for {
		line, err := r.ReadSlice('\n')
		if err != nil {
			return
		}
		if out, err = s.command(r, bytes.TrimRight(line, "\r\n"), out); err != nil {
			return
		}
		if r.Buffered() == 0 {
			if _, err := nc.Write(out); err != nil {
				return
			}
			out = out[:0]
		}
	}
}

// command answers one get or set; anything else ends the connection.
func (s *goloopStore) command(r *bufio.Reader, line, out []byte) ([]byte, error) {
	k, n, err := parseGoloopLine(line)
	switch {
	case err != nil:
		return out, err
	case n < 0:
		return s.appendGet(out, k), nil
	}
	key := string(k) // before the read that may move the line
	v := make([]byte, n+2)
	if _, err := io.ReadFull(r, v); err != nil {
		return out, err
	}
	s.set(key, v[:n])
	return append(out, "STORED\r\n"...), nil
}

// parseGoloopLine parses the Go loops' request line, "get KEY" or "set
// KEY FLAGS EXPTIME BYTES", into its key and, for a set, the length of
// the value that follows (-1 for a get). Anything else is an error.
func parseGoloopLine(line []byte) (key []byte, setLen int, err error) {
	f := bytes.Fields(line)
	switch {
	case len(f) == 2 && string(f[0]) == "get":
		return f[1], -1, nil
	case len(f) == 5 && string(f[0]) == "set":
		n, err := strconv.Atoi(string(f[4]))
		if err != nil || n < 0 || n > 1<<20 {
			return nil, 0, fmt.Errorf("bad set %q", line)
		}
		return f[1], n, nil
	}
	return nil, 0, fmt.Errorf("unknown command %q", line)
}

// appendGet appends the answer to a get of key.
func (s *goloopStore) appendGet(out, key []byte) []byte {
	s.mu.RLock()
	v, ok := s.m[string(key)]
	if ok {
		out = fmt.Appendf(out, "VALUE %s 0 %d\r\n", key, len(v))
		out = append(append(out, v...), "\r\n"...)
	}
	s.mu.RUnlock()
	return append(out, "END\r\n"...)
}

// set stores v under key.
func (s *goloopStore) set(key string, v []byte) {
	s.mu.Lock()
	if s.m == nil {
		s.m = make(map[string][]byte)
	}
	s.m[key] = v
	s.mu.Unlock()
}
