package reliable

import "syscall"

// errnoHostIsolated is the errno of ICMP "host isolated" (ENONET on Linux).
const errnoHostIsolated = syscall.ENONET
