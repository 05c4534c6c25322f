//go:build !linux

package benchkit

import (
	"fmt"
	"runtime"
)

// SyscallCounter counts the system calls of this process; on Linux only.
type SyscallCounter struct{}

// ProcessSyscalls reports that this system has no syscall counter.
func ProcessSyscalls() (*SyscallCounter, error) {
	return nil, fmt.Errorf("bench: no syscall count on %s (Linux perf tracepoints only)", runtime.GOOS)
}

// Count is never called: ProcessSyscalls returns no counter.
func (c *SyscallCounter) Count() uint64 { return 0 }
