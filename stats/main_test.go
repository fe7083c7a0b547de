package stats

import (
	"testing"

	"go.uber.org/goleak"
)

// No Recorder here owns a goroutine; a test that started one must stop it.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
