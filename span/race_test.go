//go:build race

package span

// The race detector instruments memory accesses and allocates for its own
// bookkeeping, which makes allocation counts meaningless.
const raceEnabled = true
