package client_test

import (
	"testing"

	"go.uber.org/goleak"
)

// Every test must leave no goroutine behind: not the client's readers,
// writers and dialers, nor the test servers'.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
