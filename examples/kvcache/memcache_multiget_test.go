package main

import (
	"fmt"
	"strings"
	"testing"
)

// TestLongMultiGet: a get of a thousand keys, as a memcached client's
// multi-get sends for the keys of one server, is answered as memcached
// answers it. Before, a get line over 4 KiB or with more than 256 keys
// closed the connection, and the client saw only EOF.
func TestLongMultiGet(t *testing.T) {
	addr := startMemcacheNode(t, nodeOptions{})
	keys := make([]string, 1000)
	for i := range keys {
		keys[i] = fmt.Sprintf("key-%040d", i)
	}
	req := "set " + keys[999] + " 0 0 1\r\nx\r\nget " + strings.Join(keys, " ") + "\r\n"
	want := "STORED\r\nVALUE " + keys[999] + " 0 1\r\nx\r\nEND\r\n"
	got, err := exchange(t, addr, []byte(req), len(want))
	if err != nil || string(got) != want {
		t.Fatalf("answered %q, %v; want %q", got, err, want)
	}
}
