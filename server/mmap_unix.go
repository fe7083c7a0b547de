//go:build unix

package server

import "syscall"

// mapBuffer maps size bytes of anonymous memory, which the system backs
// only as they are written; if mapping fails, the Go heap serves instead.
func mapBuffer(size int) []byte {
	b, err := syscall.Mmap(-1, 0, size, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		return make([]byte, 0, size)
	}
	return b[:0]
}

// unmapBuffer returns a buffer of mapBuffer to the system. A buffer from
// the Go heap is not a mapping: Munmap refuses it, and the garbage
// collector frees it.
func unmapBuffer(b []byte) { _ = syscall.Munmap(b[:cap(b)]) }
