//go:build !unix

package server

// mapBuffer allocates from the Go heap where anonymous mappings are not
// available.
func mapBuffer(size int) ([]byte, bool) { return make([]byte, 0, size), false }

// discardBuffer is never called: no buffer is a mapping.
func discardBuffer([]byte) {}

// unmapBuffer is never called: no buffer is a mapping.
func unmapBuffer([]byte) {}
