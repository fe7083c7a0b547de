// Package spec reads the byte examples of docs/PROTOCOL.md and
// docs/TEXTPROTOCOL.md so that the tests of every layer check the
// specification itself, not a copy of it.
package spec

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
)

// Example is one "###" section of the protocol document with byte lines.
type Example struct {
	Name      string
	Request   []byte // "request" line: what a client sends
	Answer    []byte // "answer" line: what an echo server sends back
	Malformed []byte // "malformed" line: input a receiver must refuse
	Error     string // "error" line: the frame package's error for Malformed
	// Mux is set for the examples of the multiplexed mode, which follow
	// the document's "# The multiplexed mode" heading.
	Mux bool
}

// Path is the location of docs/PROTOCOL.md in the source tree.
func Path() string { return Doc("PROTOCOL.md") }

// TextPath is the location of docs/TEXTPROTOCOL.md in the source tree.
func TextPath() string { return Doc("TEXTPROTOCOL.md") }

// Doc is the location of the document name in docs/ of the source tree.
func Doc(name string) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "docs", name)
}

// Load parses the v1 examples of the document at path.
func Load(path string) ([]Example, error) {
	return load(path, false)
}

// LoadMux parses the examples of the multiplexed mode.
func LoadMux(path string) ([]Example, error) {
	return load(path, true)
}

func load(path string, mux bool) ([]Example, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var (
		out   []Example
		cur   *Example
		inMux bool
	)
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "# ") {
			inMux = strings.Contains(line, "multiplexed")
			cur = nil
			continue
		}
		if name, ok := strings.CutPrefix(line, "### "); ok {
			out = append(out, Example{Name: name, Mux: inMux})
			cur = &out[len(out)-1]
			continue
		}
		fields := strings.Fields(line)
		if cur == nil || len(fields) < 2 || !strings.HasPrefix(line, "    ") {
			continue
		}
		switch fields[0] {
		case "request", "answer", "malformed":
			b, err := decodeBytes(line, fields)
			if err != nil {
				return nil, fmt.Errorf("%s: %q: %w", cur.Name, line, err)
			}
			switch fields[0] {
			case "request":
				cur.Request = b
			case "answer":
				cur.Answer = b
			default:
				cur.Malformed = b
			}
		case "error":
			cur.Error = fields[1]
		}
	}
	// Sections without byte lines are prose, not examples.
	examples := out[:0]
	for _, e := range out {
		if e.Mux == mux && (e.Request != nil || e.Answer != nil || e.Malformed != nil) {
			examples = append(examples, e)
		}
	}
	return examples, sc.Err()
}

// decodeBytes reads the bytes of an example line: hex, or one Go string
// literal for protocols written in text.
func decodeBytes(line string, fields []string) ([]byte, error) {
	rest := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), fields[0]))
	if strings.HasPrefix(rest, `"`) {
		s, err := strconv.Unquote(rest)
		return []byte(s), err
	}
	return hex.DecodeString(strings.Join(fields[1:], ""))
}
