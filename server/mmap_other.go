//go:build !linux

package server

// mapBuffer allocates from the Go heap off Linux, where the syscall
// package lacks Madvise on some systems (macOS, the BSDs) and anonymous
// mappings on others. Only Linux is measured and tested here, so only it
// maps; elsewhere the buffers are plain heap memory.
func mapBuffer(size int) ([]byte, bool) { return make([]byte, 0, size), false }

// discardBuffer is never called: no buffer is a mapping.
func discardBuffer([]byte) {}

// unmapBuffer is never called: no buffer is a mapping.
func unmapBuffer([]byte) {}
