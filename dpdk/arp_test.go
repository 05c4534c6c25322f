package dpdk

import (
	"net/netip"
	"testing"
	"time"
)

func TestARPTableResolve(t *testing.T) {
	const ms = int64(time.Millisecond)
	tb := newARPTable(2, 1472, 1000*ms, 100*ms, 3)
	hop := netip.MustParseAddr("10.0.0.2")
	dst := netip.AddrPortFrom(hop, 9)

	_, ok, req := tb.lookup(hop, 0)
	if ok || !req {
		t.Fatalf("first lookup: ok=%v request=%v, want unresolved + request", ok, req)
	}
	if _, ok, req = tb.lookup(hop, 1); ok || req {
		t.Fatalf("second lookup: ok=%v request=%v, want unresolved, no new request", ok, req)
	}
	if !tb.enqueue(hop, dst, []byte("one")) || !tb.enqueue(hop, dst, []byte("two")) {
		t.Fatal("enqueue into free slots failed")
	}
	if tb.enqueue(hop, dst, []byte("three")) {
		t.Fatal("enqueue beyond the bound succeeded")
	}
	// A learnt mapping not addressed to us only updates existing entries.
	other := netip.MustParseAddr("10.0.0.3")
	if up, _ := tb.learn(other, macB, false, 2); up {
		t.Fatal("learn created an entry for a packet not addressed to us")
	}
	up, pending := tb.learn(hop, macB, false, 5)
	if !up || !pending {
		t.Fatalf("learn: updated=%v pending=%v", up, pending)
	}
	var got []string
	tb.takePending(hop, func(d netip.AddrPort, p []byte) {
		if d != dst {
			t.Fatalf("pending to %v, want %v", d, dst)
		}
		got = append(got, string(p))
	})
	if len(got) != 2 || tb.inFlight != 0 || len(tb.free) != 2 {
		t.Fatalf("takePending sent %q, inFlight %d, free %d", got, tb.inFlight, len(tb.free))
	}
	mac, ok, req := tb.lookup(hop, 10)
	if !ok || req || mac != macB {
		t.Fatalf("resolved lookup: %v ok=%v request=%v", mac, ok, req)
	}
	// Expired: still usable, one refresh request.
	if _, ok, req = tb.lookup(hop, 1006*ms); !ok || !req {
		t.Fatalf("expired lookup: ok=%v request=%v, want usable + refresh", ok, req)
	}
	if _, ok, req = tb.lookup(hop, 1007*ms); !ok || req {
		t.Fatalf("refreshing lookup: ok=%v request=%v, want usable, no second request", ok, req)
	}
	// Unanswered refresh: retried, then forgotten.
	var reqs int
	for now := 1006 * ms; now < 2000*ms; now += 10 * ms {
		tb.tick(now, func(netip.Addr) { reqs++ })
	}
	if reqs != 2 || tb.size() != 0 || tb.active != 0 {
		t.Fatalf("after unanswered refresh: %d re-requests, %d entries, %d active; want 2, 0, 0", reqs, tb.size(), tb.active)
	}
}

func TestARPTableTimeoutDrops(t *testing.T) {
	const ms = int64(time.Millisecond)
	tb := newARPTable(8, 100, 1000*ms, 100*ms, 2)
	hop := netip.MustParseAddr("10.0.0.9")
	tb.lookup(hop, 0)
	for i := 0; i < 3; i++ {
		tb.enqueue(hop, netip.AddrPortFrom(hop, 1), []byte{byte(i)})
	}
	var dropped, timeouts, reqs int
	for now := int64(0); now <= 500*ms; now += 10 * ms {
		d, to := tb.tick(now, func(netip.Addr) { reqs++ })
		dropped += d
		timeouts += to
	}
	if dropped != 3 || timeouts != 1 || reqs != 1 || tb.inFlight != 0 || tb.size() != 0 {
		t.Fatalf("dropped %d timeouts %d requests %d inFlight %d entries %d; want 3 1 1 0 0",
			dropped, timeouts, reqs, tb.inFlight, tb.size())
	}
	// Static entries never expire or get overwritten.
	tb.addStatic(hop, macA)
	if up, _ := tb.learn(hop, macB, true, 0); up {
		t.Fatal("learn overwrote a static entry")
	}
	if m, ok, req := tb.lookup(hop, 1<<60); !ok || req || m != macA {
		t.Fatalf("static lookup %v %v %v", m, ok, req)
	}
}

func TestARPTableBounded(t *testing.T) {
	tb := newARPTable(1, 10, 1, 1, 1)
	tb.maxEntries = 4
	for i := 0; i < 10; i++ {
		ip := netip.AddrFrom4([4]byte{10, 0, 1, byte(i)})
		tb.learn(ip, macA, true, int64(i))
	}
	if tb.size() > 4 {
		t.Fatalf("table grew to %d entries, bound 4", tb.size())
	}
}
