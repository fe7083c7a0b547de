package statsd

import (
	"testing"

	"go.uber.org/goleak"
)

// Recorder owns a goroutine and the statsd client owns two more; every
// test must leave none of them running.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
