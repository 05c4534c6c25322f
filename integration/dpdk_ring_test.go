//go:build dpdk && linux && cgo

package integration

import (
	"context"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/raptormq/raptor/dpdk"
	"github.com/raptormq/raptor/reliable"
)

// TestDPDKRingRaptor runs a Raptor session between two DPDK ports joined
// by in-memory rings (no privileges needed): 4 streams, 1 MiB each way.
func TestDPDKRingRaptor(t *testing.T) {
	if err := dpdk.InitEAL(nil); err != nil {
		t.Fatalf("EAL: %v", err)
	}
	pa, pb, err := dpdk.OpenRingPair(
		dpdk.Config{LocalAddr: netip.MustParseAddrPort("10.214.0.1:4000"), Logger: dpQuiet},
		dpdk.Config{LocalAddr: netip.MustParseAddrPort("10.214.0.2:4001"), Logger: dpQuiet})
	if err != nil {
		t.Fatalf("OpenRingPair: %v", err)
	}
	cfg := &reliable.Config{Logger: dpQuiet}
	l, err := reliable.ListenPacket(pa, cfg)
	if err != nil {
		pa.Close()
		pb.Close()
		t.Fatalf("ListenPacket: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s, err := reliable.DialPacket(ctx, pb, pa.LocalAddr(), cfg)
	if err != nil {
		t.Fatalf("DialPacket: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	start := time.Now()
	const streams, per = 4, 1 << 20
	dpTransfer(t, ctx, s, l.AcceptStream, streams, per, seed)
	el := time.Since(start)
	t.Logf("%d MiB each way over net_ring in %v (%s each way)", streams*per>>20, el.Round(time.Millisecond), dpRate(streams*per, el))
	t.Logf("port A: %+v", pa.Stats())
}
