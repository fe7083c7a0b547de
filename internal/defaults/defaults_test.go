package defaults

import (
	"testing"
	"time"
)

func TestOr(t *testing.T) {
	if got := Or(0, 5); got != 5 {
		t.Errorf("Or(0, 5) = %d", got)
	}
	if got := Or(-1, 5); got != -1 {
		t.Errorf("Or(-1, 5) = %d: a negative value is a setting, not a zero", got)
	}
	if got := Or(time.Duration(0), time.Second); got != time.Second {
		t.Errorf("Or(0s, 1s) = %v", got)
	}
	if got := Or("", "x"); got != "x" {
		t.Errorf(`Or("", "x") = %q`, got)
	}
}
