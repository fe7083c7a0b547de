package main

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tcpez/tcpez/internal/spec"
)

// binary is the tcpez command built once for the tests, run as a real
// process as a user would.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "tcpez-cmd")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "tcpez")
	if out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput(); err != nil {
		panic(string(out))
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

const safety = 10 * time.Second

// startServe runs "tcpez serve" and returns its address and process.
func startServe(t *testing.T, args ...string) (string, *exec.Cmd) {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"serve", "--addr", "127.0.0.1:0"}, args...)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("reading the address line: %v", err)
	}
	return strings.TrimSpace(line), cmd
}

func call(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd := exec.Command(binary, append([]string{"call"}, args...)...)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errOut.String(), code
}

func TestServeAndCall(t *testing.T) {
	addr, _ := startServe(t)
	for _, args := range [][]string{{"hello", "", "world"}, {"--batch", "a", "b", "c"}} {
		out, errOut, code := call(t, append([]string{"--addr", addr}, args...)...)
		want := strings.Join(args[len(args)-3:], "\n") + "\n"
		if code != 0 || out != want || errOut != "" {
			t.Fatalf("call %q: code %d, stdout %q, stderr %q", args, code, out, errOut)
		}
	}
}

// TestServeSpecExamples: the real process answers every example of the
// spec byte for byte.
func TestServeSpecExamples(t *testing.T) {
	addr, _ := startServe(t)
	examples, err := spec.Load(spec.Path())
	if err != nil {
		t.Fatal(err)
	}
	for _, ex := range examples {
		if ex.Request == nil {
			continue
		}
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(safety))
		if _, err := c.Write(ex.Request); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len(ex.Answer))
		if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, ex.Answer) {
			t.Fatalf("%s: % x, %v", ex.Name, got, err)
		}
		c.Close()
	}
}

func TestServeOnUnixSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.sock")
	cmd := exec.Command(binary, "serve", "--addr", "unix:"+path)
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	line, _ := bufio.NewReader(stdout).ReadString('\n')
	if strings.TrimSpace(line) != "unix:"+path {
		t.Fatalf("address line %q", line)
	}
	if out, _, code := call(t, "--addr", "unix:"+path, "over unix"); code != 0 || out != "over unix\n" {
		t.Fatalf("call: %d %q", code, out)
	}
}

func TestCallFailuresAreOneLine(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 64)
				_, _ = c.Read(buf)
				if bytes.Contains(buf, []byte("garbage")) {
					_, _ = c.Write([]byte{0x80, 0, 0, 0, 1, 2})
					return
				}
				if bytes.Contains(buf, []byte("tls")) {
					// What a TLS server answers a plain client: an alert.
					_, _ = c.Write([]byte{0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x32})
					return
				}
				time.Sleep(safety) // never answers
			}()
		}
	}()
	refused, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refusedAddr := refused.Addr().String()
	refused.Close()
	for name, tc := range map[string]struct {
		args []string
		want string
	}{
		"malformed answer": {[]string{"--addr", l.Addr().String(), "garbage"}, "malformed header"},
		// It said "frame of 352518912 bytes exceeds the limit", which
		// named neither TLS nor --tls.
		"TLS port": {[]string{"--addr", l.Addr().String(), "tls"}, "the server speaks TLS: use --tls"},
		"timeout":  {[]string{"--addr", l.Addr().String(), "--timeout", "100ms", "silence"}, "no answer within 100ms"},
		"refused":  {[]string{"--addr", refusedAddr, "x"}, "connection refused"},
	} {
		out, errOut, code := call(t, tc.args...)
		lines := strings.Split(strings.TrimSpace(errOut), "\n")
		if code == 0 || out != "" || len(lines) != 1 || !strings.Contains(errOut, tc.want) {
			t.Errorf("%s: code %d, stdout %q, stderr %q", name, code, out, errOut)
		}
	}
}

// TestServeBadFlags: serve refuses bad flags with exit 2 and prints no
// address first, which scripts would take for a server that is up. (An
// invalid config was found only after the address was printed, with exit
// 1; a bad log level or a lone --tls-client-ca exited 1; an extra
// argument was ignored.) call refuses a timeout that is not positive.
func TestServeBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--max-frame", "-1"},
		{"--max-inflight", "-3"},
		{"--log-level", "verbose"},
		{"--tls-client-ca", "ca.pem"},
		{"stray"},
	} {
		var out, errOut bytes.Buffer
		cmd := exec.Command(binary, append([]string{"serve", "--addr", "127.0.0.1:0"}, args...)...)
		cmd.Stdout, cmd.Stderr = &out, &errOut
		err := cmd.Run()
		ee, ok := err.(*exec.ExitError)
		if !ok || ee.ExitCode() != 2 || out.Len() != 0 {
			t.Errorf("serve %q: %v, stdout %q, stderr %q; want exit 2 and no address", args, err, out.String(), errOut.String())
		}
	}
	for _, timeout := range []string{"0", "-1s"} {
		if out, errOut, code := call(t, "--addr", "127.0.0.1:1", "--timeout", timeout, "x"); code != 2 || out != "" {
			t.Errorf("call --timeout %s: exit %d, %q %q; want 2", timeout, code, out, errOut)
		}
	}
}

// TestCallInterrupted: a call interrupted (SIGINT) while it waits says so,
// not that its --timeout passed.
func TestCallInterrupted(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		if c, err := l.Accept(); err == nil {
			accepted <- c // and never answer
		}
	}()
	var out, errOut bytes.Buffer
	cmd := exec.Command(binary, "call", "--addr", l.Addr().String(), "--timeout", "1h", "hello")
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	select {
	case c := <-accepted:
		defer c.Close()
	case <-time.After(safety):
		_ = cmd.Process.Kill()
		t.Fatal("call did not connect")
	}
	_ = cmd.Process.Signal(os.Interrupt)
	err = cmd.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(errOut.String(), "interrupted") || strings.Contains(errOut.String(), "no answer within") {
		t.Fatalf("interrupted call: %v, stderr %q; want exit 1 and interrupted", err, errOut.String())
	}
}
