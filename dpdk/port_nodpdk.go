//go:build !(dpdk && linux && cgo)

package dpdk

import (
	"net"
	"net/netip"
)

// Built reports whether this binary has DPDK support (the dpdk build tag,
// cgo and Linux). It is false in this build: Open returns ErrNotBuilt.
const Built = false

// Port is a DPDK port. In this build (without the dpdk tag, cgo or Linux)
// it cannot be opened: Open and OpenRingPair return ErrNotBuilt.
type Port struct{}

// Open returns ErrNotBuilt: this binary was built without DPDK support.
func Open(cfg Config) (*Port, error) { return nil, ErrNotBuilt }

// OpenRingPair returns ErrNotBuilt: this binary was built without DPDK support.
func OpenRingPair(a, b Config) (*Port, *Port, error) { return nil, nil, ErrNotBuilt }

// InitEAL returns ErrNotBuilt: this binary was built without DPDK support.
func InitEAL(args []string) error { return ErrNotBuilt }

// DefaultEALArgs returns the sandbox EAL arguments (see the dpdk build).
func DefaultEALArgs() []string {
	return []string{"--no-huge", "-m", "256", "--no-pci", "--no-shconf", "--no-telemetry", "--lcores", "0@(0)"}
}

// ReadBatch returns ErrNotBuilt.
func (p *Port) ReadBatch(bufs [][]byte, sizes []int, addrs []netip.AddrPort) (int, error) {
	return 0, ErrNotBuilt
}

// WriteBatch returns ErrNotBuilt.
func (p *Port) WriteBatch(bufs [][]byte, addrs []netip.AddrPort) (int, error) {
	return 0, ErrNotBuilt
}

// LocalAddr returns the zero address.
func (p *Port) LocalAddr() netip.AddrPort { return netip.AddrPort{} }

// MAC returns nil.
func (p *Port) MAC() net.HardwareAddr { return nil }

// ChecksumOffload reports false, false.
func (p *Port) ChecksumOffload() (tx, rx bool) { return false, false }

// Stats returns zero counters.
func (p *Port) Stats() Stats { return Stats{} }

// Close does nothing.
func (p *Port) Close() error { return nil }
