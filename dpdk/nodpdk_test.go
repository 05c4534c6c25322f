//go:build !(dpdk && linux && cgo)

package dpdk

import (
	"errors"
	"net/netip"
	"testing"
)

func TestOpenWithoutDPDK(t *testing.T) {
	_, err := Open(Config{Device: "net_ring0", LocalAddr: netip.MustParseAddrPort("10.0.0.1:9")})
	if !errors.Is(err, ErrNotBuilt) {
		t.Fatalf("Open without the dpdk tag: %v, want ErrNotBuilt", err)
	}
	if _, _, err := OpenRingPair(Config{}, Config{}); !errors.Is(err, ErrNotBuilt) {
		t.Fatalf("OpenRingPair without the dpdk tag: %v, want ErrNotBuilt", err)
	}
}
