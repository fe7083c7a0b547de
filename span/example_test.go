package span_test

import (
	"fmt"
	"time"

	"github.com/tcpez/tcpez/span"
)

// handle is a request handler that notes what it did on its span.
func handle(s *span.Span, key string) {
	s.Attr("key", key)
	s.Attr("cache", "miss")
	s.Increment("db_calls")
	// A real handler would time the call with Start and Finish; Observe
	// with a fixed duration keeps the output stable.
	s.Observe("db", 1500*time.Microsecond)
}

func Example() {
	// The server keeps one Span per connection slot and resets it for each
	// request; a fixed ID stands in for span.NewID() here.
	s := span.New()
	s.Reset(0x2a)
	s.SetParentID(0x1f) // the caller's span, taken from the request

	handle(s, "user:42")

	// After the handler returns, only spans it touched cost any work.
	if s.Touched() {
		fmt.Println(s)
	}
	// Output:
	// span_id=000000000000002a parent_id=000000000000001f key=user:42 cache=miss db_calls=1 db_ms=1.5
}

func ExampleParseID() {
	id, err := span.ParseID("00000000000004d2")
	fmt.Println(uint64(id), err)
	_, err = span.ParseID("4d2")
	fmt.Println(err)
	// Output:
	// 1234 <nil>
	// tcpez/span: invalid span id "4d2": want 16 hex digits, got 3 characters
}
