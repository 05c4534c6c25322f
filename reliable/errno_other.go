//go:build !linux

package reliable

import "syscall"

// errnoHostIsolated is the errno of ICMP "host isolated" where the system
// has no ENONET: EHOSTUNREACH, which isICMPReport lists anyway.
const errnoHostIsolated = syscall.EHOSTUNREACH
