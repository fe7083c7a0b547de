package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/tcpez/tcpez/internal/memcachedtest"
	"github.com/tcpez/tcpez/internal/spec"
	"github.com/tcpez/tcpez/textcmd"
	"github.com/tcpez/tcpez/textcmd/textclient"
)

// needTool returns the path of a program the test runs, skipping the test
// where it is not installed, except in CI, whose .ci/run installs it.
func needTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s not installed: .ci/run installs libmemcached-tools and memcached", name)
		}
		t.Skipf("%s not installed (apt-get install libmemcached-tools memcached)", name)
	}
	return p
}

// startMemcacheNode starts a cache server in this process with a
// memcached listener, and returns that listener's address.
func startMemcacheNode(t *testing.T, opts nodeOptions) string {
	t.Helper()
	logger := logrus.New()
	logger.SetOutput(io.Discard)
	opts.memcache = "127.0.0.1:0"
	n, err := startNode("mc", "127.0.0.1:0", opts, logger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := n.stop(ctx); err != nil {
			t.Error(err)
		}
	})
	return n.memcacheAddr
}

// dialMemcache connects to a memcached listener, with a deadline that is
// not a timing assertion, only a bound on a server that hangs.
func dialMemcache(t *testing.T, addr string) *net.TCPConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return c.(*net.TCPConn)
}

// exchange sends req on a new connection and reads until it has as many
// bytes as want, or the server closes.
func exchange(t *testing.T, addr string, req []byte, n int) ([]byte, error) {
	t.Helper()
	c := dialMemcache(t, addr)
	defer c.Close()
	if _, err := c.Write(req); err != nil {
		t.Fatal(err)
	}
	// Nothing more comes: a request cut short is cut short for good.
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, n)
	m, err := io.ReadFull(c, got)
	return got[:m], err
}

// TestSpecExamples sends every example of docs/TEXTPROTOCOL.md to
// kvcache's memcached listener, and to a real memcached, and checks the
// answers the document gives; kvcache closes the connection on each
// malformed example.
func TestSpecExamples(t *testing.T) {
	examples, err := spec.Load(spec.TextPath())
	if err != nil {
		t.Fatal(err)
	}
	servers := map[string]string{"kvcache": startMemcacheNode(t, nodeOptions{})}
	if _, err := exec.LookPath("memcached"); err == nil || os.Getenv("CI") != "" {
		servers["memcached"] = memcachedtest.Start(t)
	}
	for name, addr := range servers {
		for _, ex := range examples {
			t.Run(name+"/"+ex.Name, func(t *testing.T) {
				if ex.Malformed != nil {
					if name != "kvcache" {
						t.Skip("memcached answers some malformed lines and waits on others")
					}
					// The answer, if the spec gives one, then the close.
					got, err := exchange(t, addr, ex.Malformed, len(ex.Answer)+1)
					closed := errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
					if !closed || !bytes.Equal(got, ex.Answer) {
						t.Fatalf("after %q: read %q, %v; want %q and the connection closed", ex.Malformed, got, err, ex.Answer)
					}
					return
				}
				got, err := exchange(t, addr, ex.Request, len(ex.Answer))
				if err != nil || !bytes.Equal(got, ex.Answer) {
					t.Fatalf("%q answered %q, %v; want %q", ex.Request, got, err, ex.Answer)
				}
			})
		}
	}
}

// TestLibmemcachedTools runs Debian's libmemcached-tools, which nobody
// here wrote, against kvcache: memccapable's ascii protocol suite, and the
// memccp, memccat, memcrm, memcstat and memcflush commands.
func TestLibmemcachedTools(t *testing.T) {
	addr := startMemcacheNode(t, nodeOptions{})
	servers := "--servers=" + addr
	run := func(name string, args ...string) string {
		t.Helper()
		cmd := exec.Command(needTool(t, name), args...)
		cmd.Dir = t.TempDir()
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s %v: %v\n%s", name, args, err, out)
		}
		return string(out)
	}
	host, port, _ := net.SplitHostPort(addr)
	if out := run("memccapable", "-h", host, "-p", port, "-a"); !strings.Contains(out, "All tests passed") {
		t.Fatalf("memccapable:\n%s", out)
	}

	dir := t.TempDir()
	file := filepath.Join(dir, "greeting.txt")
	content := "hello from memccp\r\nwith a CRLF inside\n"
	if err := os.WriteFile(file, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	run("memccp", servers, file)
	// memccat ends what it prints with a newline of its own.
	if got := run("memccat", servers, "greeting.txt"); got != content+"\n" {
		t.Fatalf("memccat: %q, want %q", got, content)
	}
	stats := run("memcstat", servers)
	if !strings.Contains(stats, "curr_items: 1") || !strings.Contains(stats, "version: "+memcachedVersion) {
		t.Fatalf("memcstat:\n%s", stats)
	}
	run("memcrm", servers, "greeting.txt")
	if out, err := exec.Command(needTool(t, "memccat"), servers, "greeting.txt").CombinedOutput(); err == nil {
		t.Fatalf("memccat of a removed key succeeded: %s", out)
	}
	// kvcache does not speak the binary protocol: a binary client is told
	// at its first byte, rather than waiting out its own timeout for an
	// answer to a request the server still reads as a line.
	if out, err := exec.Command(needTool(t, "memccp"), "--binary", servers, file).CombinedOutput(); err == nil || strings.Contains(string(out), "TIMEOUT") {
		t.Fatalf("memccp --binary: %v\n%s", err, out)
	}
	run("memccp", servers, file)
	run("memcflush", servers)
	if out, err := exec.Command(needTool(t, "memccat"), servers, "greeting.txt").CombinedOutput(); err == nil {
		t.Fatalf("memccat after memcflush succeeded: %s", out)
	}
}

// textClient returns a memcached client of addr made with textclient.
func textClient(t *testing.T, addr string) *textclient.Client {
	t.Helper()
	c, err := textclient.New([]string{addr}, textclient.Config{Grammar: textcmd.Memcached})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func set(ctx context.Context, c *textclient.Client, key, value string) error {
	resp, err := c.Call(ctx, textclient.Cmd("set").Arg(key).Arg("0").Arg("0").Count().Data([]byte(value)))
	if err == nil && resp.Status() != "STORED" {
		err = fmt.Errorf("set %s: %s", key, resp.Status())
	}
	return err
}

func get(ctx context.Context, c *textclient.Client, key string) (string, bool, error) {
	resp, err := c.Call(ctx, textclient.Cmd("get").Arg(key))
	if err != nil {
		return "", false, err
	}
	if items := resp.Items(); len(items) == 1 {
		return string(items[0].Data), true, nil
	}
	return "", false, nil
}

// kvcacheBinary builds the example once per test run.
var kvcacheBinary = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "kvcache-bin")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "kvcache")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

var memcacheAddrRE = regexp.MustCompile(`memcache_addr="?([0-9.:]+)`)

// startChild runs kvcache as a process of its own with a journal, and
// returns it and its memcached listener's address.
func startChild(t *testing.T, journal, sync string) (*exec.Cmd, string) {
	t.Helper()
	bin, err := kvcacheBinary()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--serve", "127.0.0.1:0", "--memcache", "127.0.0.1:0", "--journal", journal, "--sync", sync)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		if m := memcacheAddrRE.FindStringSubmatch(sc.Text()); m != nil {
			go io.Copy(io.Discard, stderr)
			return cmd, m[1]
		}
	}
	t.Fatalf("kvcache did not say where it serves: %v", sc.Err())
	return nil, ""
}

func stat(ctx context.Context, c *textclient.Client, name string) (string, error) {
	resp, err := c.Call(ctx, textclient.Cmd("stats"))
	if err != nil {
		return "", err
	}
	for _, it := range resp.Items() {
		if len(it.Args) == 2 && string(it.Args[0]) == name {
			return string(it.Args[1]), nil
		}
	}
	return "", fmt.Errorf("no stat %s", name)
}

// TestJournalSIGKILLAlways kills kvcache with SIGKILL while four clients
// write, with --sync always, restarts it on the same journal, and finds
// every write that was acknowledged before the kill.
func TestJournalSIGKILLAlways(t *testing.T) {
	journal := filepath.Join(t.TempDir(), "kv.journal")
	child, addr := startChild(t, journal, "always")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	const writers = 4
	acked := make([][]string, writers) // keys acknowledged, per writer
	progress := make(chan struct{}, 1000)
	var wg sync.WaitGroup
	for w := range writers {
		c := textClient(t, addr)
		wg.Go(func() {
			for i := 0; ; i++ {
				key := fmt.Sprintf("w%d-%d", w, i)
				if err := set(ctx, c, key, "value of "+key); err != nil {
					return // the kill
				}
				acked[w] = append(acked[w], key)
				select {
				case progress <- struct{}{}:
				default:
				}
			}
		})
	}
	// Kill once 400 writes are acknowledged, with the writers still going.
	for range 400 {
		<-progress
	}
	if err := child.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	child.Wait()

	_, addr = startChild(t, journal, "always")
	c := textClient(t, addr)
	total := 0
	for w := range writers {
		for _, key := range acked[w] {
			v, ok, err := get(ctx, c, key)
			if err != nil || !ok || v != "value of "+key {
				t.Fatalf("after SIGKILL and restart, %s = %q, %t, %v; it was acknowledged", key, v, ok, err)
			}
			total++
		}
	}
	t.Logf("%d acknowledged writes survived SIGKILL", total)
}

// TestJournalSIGKILLWindow kills kvcache with SIGKILL during writes with
// --sync 20ms, restarts it, and finds every write the journal reported
// synced before the kill: what a crash loses is only what came after the
// last sync, the documented window.
func TestJournalSIGKILLWindow(t *testing.T) {
	journal := filepath.Join(t.TempDir(), "kv.journal")
	child, addr := startChild(t, journal, "20ms")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	// One writer, so that the journal's n-th record is the n-th key.
	w := textClient(t, addr)
	var mu sync.Mutex
	acked := 0
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			if set(ctx, w, fmt.Sprintf("k%d", i), fmt.Sprintf("v%d", i)) != nil {
				return
			}
			mu.Lock()
			acked = i + 1
			mu.Unlock()
		}
	}()
	// Wait for 300 acknowledged writes and then for the journal to report
	// them synced, while the writer goes on; then kill.
	probe := textClient(t, addr)
	var want int
	for want < 300 {
		mu.Lock()
		want = acked
		mu.Unlock()
	}
	for {
		s, err := stat(ctx, probe, "journal_synced")
		if err != nil {
			t.Fatal(err)
		}
		var synced int
		fmt.Sscan(s, &synced)
		if synced >= want {
			want = synced
			break
		}
	}
	if err := child.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-done
	child.Wait()

	_, addr = startChild(t, journal, "20ms")
	c := textClient(t, addr)
	for i := range want {
		key := fmt.Sprintf("k%d", i)
		if v, ok, err := get(ctx, c, key); err != nil || !ok || v != fmt.Sprintf("v%d", i) {
			t.Fatalf("after SIGKILL and restart, %s = %q, %t, %v; the journal had reported %d writes synced", key, v, ok, err, want)
		}
	}
	t.Logf("the %d writes synced before SIGKILL survived; %d were acknowledged in all", want, acked)
}

// TestValueTooLarge: a value over memcached's item size is refused with
// memcached's error line and the connection goes on; one over the codec's
// limit closes it, before its data is read.
func TestValueTooLarge(t *testing.T) {
	addr := startMemcacheNode(t, nodeOptions{})
	big := bytes.Repeat([]byte("x"), maxItemSize+1)
	req := append(fmt.Appendf(nil, "set big 0 0 %d\r\n", len(big)), big...)
	req = append(req, "\r\nversion\r\n"...)
	want := "SERVER_ERROR object too large for cache\r\nVERSION " + memcachedVersion + "\r\n"
	if got, err := exchange(t, addr, req, len(want)); err != nil || string(got) != want {
		t.Fatalf("answered %q, %v; want %q", got, err, want)
	}
	// Past the protocol's limit the data cannot be skipped: the client
	// learns why, then the connection closes.
	want = "CLIENT_ERROR data block too large"
	got, err := exchange(t, addr, fmt.Appendf(nil, "set huge 0 0 %d\r\n", 2*maxItemSize+1), 256)
	if !errors.Is(err, io.ErrUnexpectedEOF) || !strings.HasPrefix(string(got), want) || !strings.HasSuffix(string(got), "\r\n") {
		t.Fatalf("a byte count over the limit: read %q, %v; want %q..., then the connection closed", got, err, want)
	}
}
