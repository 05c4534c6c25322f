// Package dpdk is Raptor's kernel-bypass packet path: a reliable.PacketConn
// (ReadBatch, WriteBatch, LocalAddr, Close) over a DPDK Ethernet port, with
// its own Ethernet II / IPv4 / UDP framing, IPv4 and UDP checksums (offloaded
// when the device can) and ARP (RFC 826).
//
// The DPDK code needs the build tag dpdk, cgo, Linux and Debian's
// libdpdk-dev (DPDK 22.11): go build -tags dpdk. Without them the package
// still builds, with no cgo, and Open returns ErrNotBuilt. The framing and
// ARP state machine are pure Go and always built (and fuzzed).
//
// The EAL is initialised once per process (InitEAL, or the first Open);
// DefaultEALArgs runs it without hugepages, PCI or a NIC, which suits tests
// over the virtual devices net_ring (OpenRingPair), net_af_packet (a veth or
// any kernel interface) and net_tap. docs/DPDK.md describes sandbox and
// production set-up and the raptor+dpdk:// URL keys.
//
// The package imports nothing of Raptor's: reliable.PacketConn uses only
// standard-library types, so *Port satisfies it structurally.
package dpdk
