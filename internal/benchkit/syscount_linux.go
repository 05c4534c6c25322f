package benchkit

import (
	"encoding/binary"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// tracepointIDFiles are where the kernel publishes the id of the
// raw_syscalls:sys_enter tracepoint (tracefs, or tracefs under debugfs).
var tracepointIDFiles = []string{
	"/sys/kernel/tracing/events/raw_syscalls/sys_enter/id",
	"/sys/kernel/debug/tracing/events/raw_syscalls/sys_enter/id",
}

// SyscallCounter counts the system calls of every thread of this process
// with the kernel's raw_syscalls:sys_enter tracepoint as a perf counter
// (perf_event_open, counting mode, no sampling): one counter per thread,
// inherited by the threads each one creates later. The kernel counts every
// system call — including the Go runtime's futex, epoll_pwait and
// nanosleep — at about the cost of an increment, so the count does not
// disturb the timing it is read around.
//
// It needs tracefs mounted (mount -t tracefs nodev /sys/kernel/tracing) and
// the permission to open tracepoint counters (root, CAP_PERFMON, or
// kernel.perf_event_paranoid ≤ -1).
type SyscallCounter struct {
	mu  sync.Mutex
	fds map[int]int // tid → perf fd
	id  uint64
}

var (
	syscallsOnce sync.Once
	syscalls     *SyscallCounter
	syscallsErr  error
)

// ProcessSyscalls returns the process-wide syscall counter, opened on first
// use, or why it cannot be had.
func ProcessSyscalls() (*SyscallCounter, error) {
	syscallsOnce.Do(func() { syscalls, syscallsErr = openSyscallCounter() })
	return syscalls, syscallsErr
}

func openSyscallCounter() (*SyscallCounter, error) {
	var id uint64
	var err error
	for _, f := range tracepointIDFiles {
		var b []byte
		if b, err = os.ReadFile(f); err == nil {
			id, err = strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("bench: no syscall count: tracepoint raw_syscalls:sys_enter not found (mount tracefs: mount -t tracefs nodev /sys/kernel/tracing): %w", err)
	}
	c := &SyscallCounter{fds: map[int]int{}, id: id}
	// A thread created by a thread that has no counter yet has none either:
	// go over the thread list until every thread has one.
	for try := 0; try < 10; try++ {
		added, err := c.attach()
		if err != nil {
			c.close()
			return nil, err
		}
		if added == 0 {
			return c, nil
		}
	}
	return c, nil
}

func (c *SyscallCounter) attach() (added int, err error) {
	ents, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return 0, fmt.Errorf("bench: no syscall count: %w", err)
	}
	for _, e := range ents {
		tid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if _, ok := c.fds[tid]; ok {
			continue
		}
		attr := unix.PerfEventAttr{
			Type:   unix.PERF_TYPE_TRACEPOINT,
			Config: c.id,
			Size:   uint32(unsafe.Sizeof(unix.PerfEventAttr{})),
			Bits:   unix.PerfBitInherit,
		}
		fd, err := unix.PerfEventOpen(&attr, tid, -1, -1, unix.PERF_FLAG_FD_CLOEXEC)
		if err == unix.ESRCH {
			continue // the thread ended meanwhile
		}
		if err != nil {
			return added, fmt.Errorf("bench: no syscall count: perf_event_open(raw_syscalls:sys_enter, thread %d): %w (needs root, CAP_PERFMON or kernel.perf_event_paranoid <= -1)", tid, err)
		}
		c.fds[tid] = fd
		added++
	}
	return added, nil
}

// Count returns the system calls made by the process since the counter was
// opened (threads that ended included).
func (c *SyscallCounter) Count() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	var sum uint64
	var b [8]byte
	for _, fd := range c.fds {
		if n, err := unix.Read(fd, b[:]); err == nil && n == 8 {
			sum += binary.NativeEndian.Uint64(b[:])
		}
	}
	return sum
}

func (c *SyscallCounter) close() {
	for _, fd := range c.fds {
		unix.Close(fd)
	}
	c.fds = nil
}
