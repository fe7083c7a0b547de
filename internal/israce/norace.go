//go:build !race

// Package israce tells tests whether the race detector is on, so that
// allocation counts, which the detector changes, are asserted only without it.
package israce

// Enabled is true when built with -race.
const Enabled = false
