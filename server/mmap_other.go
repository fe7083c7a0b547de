//go:build !unix

package server

// mapBuffer allocates from the Go heap where anonymous mappings are not
// available.
func mapBuffer(size int) []byte { return make([]byte, 0, size) }

// unmapBuffer leaves b to the garbage collector.
func unmapBuffer([]byte) {}
