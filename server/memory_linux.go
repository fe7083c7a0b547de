package server

import (
	"os"
	"strconv"
	"strings"
	"syscall"
)

func physicalMemory() int64 {
	var si syscall.Sysinfo_t
	if syscall.Sysinfo(&si) != nil {
		return 4 << 30
	}
	return int64(si.Totalram) * int64(si.Unit)
}

// cgroupMemoryLimit is the memory limit of the process's cgroup (v2, else
// v1), or 0 for none.
func cgroupMemoryLimit() int64 {
	for _, path := range []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"} {
		b, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		if err == nil && n > 0 {
			return n // v1 says "no limit" with a huge number, which loses to the others
		}
		return 0 // "max"
	}
	return 0
}
