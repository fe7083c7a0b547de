//go:build linux

package server

import "syscall"

// mapBuffer maps size bytes of anonymous memory, which the system backs
// only as they are written; if mapping fails, the Go heap serves instead
// and ok is false.
func mapBuffer(size int) (b []byte, ok bool) {
	b, err := syscall.Mmap(-1, 0, size, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		return make([]byte, 0, size), false
	}
	return b[:0], true
}

// discardBuffer gives the memory behind a mapping of mapBuffer back to the
// system but keeps its addresses valid: a handler that broke its contract
// and still reads the buffer sees zeros, not a fault that would end the
// process. Only for mappings: it would zero a Go heap buffer's pages.
func discardBuffer(b []byte) { _ = syscall.Madvise(b[:cap(b)], syscall.MADV_DONTNEED) }

// unmapBuffer returns a mapping of mapBuffer to the system.
func unmapBuffer(b []byte) { _ = syscall.Munmap(b[:cap(b)]) }
