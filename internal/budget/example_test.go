package budget_test

import (
	"context"
	"fmt"
	"time"

	"github.com/tcpez/tcpez/internal/budget"
)

// A connection engine takes a frame's bytes from its connection's account
// before allocating its buffer, and gives them back once the answer is
// written.
func Example() {
	b := budget.New(1<<20, 16<<10, nil) // 1 MiB shared; 16 KiB each always
	conn := b.NewAccount()

	const frame = 256 << 10
	if err := conn.Acquire(context.Background(), frame, 10*time.Second); err != nil {
		fmt.Println("close the connection:", err)
		return
	}
	buf := make([]byte, frame) // read the payload into buf, run the handler...
	_ = buf
	conn.Release(frame)
	fmt.Println(b.Used())
	// Output: 0
}
