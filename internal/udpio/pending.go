package udpio

import "sync"

// pendingProbe is what Conn.Pending needs to ask the kernel without
// allocating: a callback for RawConn.Control bound once, and its result.
// Sessions of one listener share the Conn, so it is guarded.
type pendingProbe struct {
	mu sync.Mutex
	fn func(fd uintptr)
	n  int
}
