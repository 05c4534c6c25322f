//go:build dpdk && linux && cgo

package integration

// dpdkBuilt says whether this test binary links the DPDK packet path.
const dpdkBuilt = true
