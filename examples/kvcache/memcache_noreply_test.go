package main

import (
	"strings"
	"testing"
)

// TestNoreplyErrorsAreSilent: a command with noreply gets no answer, not
// even an error, as in memcached: a client that sends noreply reads
// nothing for it, and an error line would be taken for the answer to its
// next command. Before, each of these answered a CLIENT_ERROR or
// SERVER_ERROR line.
func TestNoreplyErrorsAreSilent(t *testing.T) {
	addr := startMemcacheNode(t, nodeOptions{})
	req := "set s 0 0 3\r\nabc\r\n" +
		"incr s 1 noreply\r\n" + // not a number
		"incr s x noreply\r\n" + // a bad delta
		"set k abc 0 1 noreply\r\nz\r\n" + // bad flags
		"cas s 0 0 1 abc noreply\r\nz\r\n" + // a bad cas value
		"touch s abc noreply\r\n" + // a bad exptime
		"set big 0 0 1048577 noreply\r\n" + strings.Repeat("x", 1048577) + "\r\n" + // over the item limit
		"get s\r\n"
	want := "STORED\r\nVALUE s 0 3\r\nabc\r\nEND\r\n"
	got, err := exchange(t, addr, []byte(req), len(want))
	if err != nil || string(got) != want {
		t.Fatalf("answered %q, %v; want %q", got, err, want)
	}
}
