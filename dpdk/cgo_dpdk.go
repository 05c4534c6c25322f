//go:build dpdk && linux && cgo

package dpdk

// The C side: thin wrappers around DPDK 22.11, many of whose fast-path
// functions are static inline. Every burst is one cgo call.

/*
#cgo pkg-config: libdpdk
#cgo LDFLAGS: -lrte_net_ring -lrte_bus_vdev
#include "raptor_dpdk.h"
*/
import "C"

import (
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// EAL state: initialised once per process (DPDK refuses a second
// rte_eal_init, even after rte_eal_cleanup).
var eal struct {
	mu   sync.Mutex
	done bool
	args []string
	err  error
}

// DefaultEALArgs returns the EAL arguments for a machine without a DPDK NIC,
// hugepages or vfio: 256 MiB of ordinary memory, no PCI scan, no shared
// config files or telemetry socket, and one lcore whose thread may run on
// every CPU the process may use (so the Go scheduler is not pinned).
func DefaultEALArgs() []string {
	return []string{
		"--no-huge", "-m", "256", "--no-pci", "--no-shconf", "--no-telemetry",
		"--lcores", "0@(" + cpuList() + ")", "--log-level", "*:warning",
	}
}

// cpuList renders the calling thread's CPU affinity as an EAL cpu list, e.g. "0-3,6".
func cpuList() string {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil || set.Count() == 0 {
		return "0"
	}
	var parts []string
	for c := 0; c < 1024; {
		if !set.IsSet(c) {
			c++
			continue
		}
		e := c
		for e+1 < 1024 && set.IsSet(e+1) {
			e++
		}
		if e == c {
			parts = append(parts, strconv.Itoa(c))
		} else {
			parts = append(parts, strconv.Itoa(c)+"-"+strconv.Itoa(e))
		}
		c = e + 1
	}
	return strings.Join(parts, ",")
}

// EALArgsError reports a Port asking for EAL arguments other than those the
// process's EAL was initialised with.
type EALArgsError struct {
	Running, Requested []string
}

// Error describes the failure, naming the offending value.
func (e *EALArgsError) Error() string {
	return fmt.Sprintf("dpdk: EAL already initialised with %q, cannot re-initialise with %q (one EAL per process)", e.Running, e.Requested)
}

// InitEAL initialises the DPDK EAL with args (nil: DefaultEALArgs) unless it
// already is. Open calls it; call it first to choose the arguments
// explicitly. A second call with other non-nil arguments returns an
// *EALArgsError; a failed initialisation is not retried.
func InitEAL(args []string) error {
	eal.mu.Lock()
	defer eal.mu.Unlock()
	if eal.done {
		if args != nil && !slices.Equal(args, eal.args) {
			return &EALArgsError{Running: eal.args, Requested: args}
		}
		return eal.err
	}
	if args == nil {
		args = DefaultEALArgs()
	}
	eal.done, eal.args = true, slices.Clone(args)
	res := make(chan error, 1)
	go func() {
		// rte_eal_init sets the calling thread's affinity to the main lcore's
		// cpuset; do it on a locked thread and restore the affinity after.
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		var saved unix.CPUSet
		haveSaved := unix.SchedGetaffinity(0, &saved) == nil
		argv := C.calloc(C.size_t(len(args)+2), C.size_t(unsafe.Sizeof(uintptr(0))))
		av := unsafe.Slice((**C.char)(argv), len(args)+2)
		av[0] = C.CString("raptor")
		for i, a := range args {
			av[i+1] = C.CString(a)
		}
		r := C.raptor_eal_init(C.int(len(args)+1), (**C.char)(argv))
		// rte_eal_init permutes argv; the strings stay allocated (the EAL may keep them).
		C.free(argv)
		if haveSaved {
			_ = unix.SchedSetaffinity(0, &saved)
		}
		if r < 0 {
			res <- &DeviceError{Device: "EAL", Op: "rte_eal_init " + strings.Join(args, " "), Code: int(r)}
			return
		}
		res <- nil
	}()
	eal.err = <-res
	return eal.err
}

// cArray allocates a zeroed C array of n elements of T (C memory, so it may
// hold C pointers and be passed to C freely).
func cArray[T any](n int) (*T, []T) {
	var zero T
	p := (*T)(C.calloc(C.size_t(n), C.size_t(unsafe.Sizeof(zero))))
	return p, unsafe.Slice(p, n)
}

func cFree[T any](p *T) {
	if p != nil {
		C.free(unsafe.Pointer(p))
	}
}
