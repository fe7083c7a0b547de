package main

import (
	"os/exec"
	"testing"
)

// TestRuns runs the example as a user would and checks what it prints.
func TestRuns(t *testing.T) {
	out, err := exec.Command("go", "run", ".").CombinedOutput()
	want := "3 servers: cache-1 cache-2 cache-3 (cache-3 keeps a snapshot file)\n" +
		"set greeting: replaced false\n" +
		"get greeting: hello (ttl_ms 0: no expiry), from the server it was set on: true\n" +
		"set session:42 with a 500ms ttl; get at once: alice, expiring within 500ms: true\n" +
		"get session:42 600ms later: NotFound\n" +
		"incr hits by 1: 1\n" +
		"incr hits by 41: 42\n" +
		"get hits: \"42\"\n" +
		"incr stock (missing, starts at 0) by -3: -3\n" +
		"incr greeting (not a number): FailedPrecondition\n" +
		"delete greeting: existed true\n" +
		"delete greeting: existed false\n" +
		"get greeting: NotFound\n" +
		"60 keys user:1..user:60 over 3 servers: every server holds some: true\n" +
		"each key read 3 times, always from the server it was set on: true\n" +
		"listener subscribes to channel \"deploys\" from cursor 0, to be pushed its messages; subscribed: true\n" +
		"listener got #1 build started\n" +
		"listener got #2 tests passed\n" +
		"listener got #3 deployed\n" +
		"listener disconnects at cursor 3\n" +
		"published #4 and #5 while it was away\n" +
		"listener, reconnected from cursor 3, got #4 rollback started\n" +
		"listener, reconnected from cursor 3, got #5 rollback done\n" +
		"published 1005 messages on \"metrics\", which keeps 1000; listen from cursor 0: missed 5, first_available 6, got 100 (#6..#105), next cursor 105\n" +
		"cache-3 shut down gracefully; snapshot written: true\n" +
		"while cache-3 is down its keys hash to another server: get: NotFound\n" +
		"cache-3 restarted on its address from the snapshot; every key it held is back: true\n"
	if err != nil || string(out) != want {
		t.Fatalf("go run: %v\n%s", err, out)
	}
}
