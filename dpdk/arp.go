package dpdk

import "net/netip"

// arpTable resolves next-hop IPv4 addresses to MACs (RFC 826) and holds the
// datagrams waiting for a resolution in a fixed number of slots. It is a pure
// state machine: time is passed in (nanoseconds on any monotonic scale) and
// it sends nothing itself; the Port guards it with its transmit lock.
type arpTable struct {
	entries    map[netip.Addr]*arpEntry
	maxEntries int
	active     int // entries incomplete or being refreshed (need tick)
	timeout    int64
	retry      int64
	retries    int

	slots    []arpSlot
	free     []int32 // free slot indices (stack)
	inFlight int     // used slots
}

type arpState uint8

const (
	arpIncomplete arpState = iota + 1
	arpReachable
	arpStatic
)

type arpEntry struct {
	mac        macAddr
	state      arpState
	expires    int64 // reachable until
	nextTry    int64 // next request (incomplete or refreshing)
	tries      int
	refreshing bool
	pending    int // slots waiting for this entry
}

// arpSlot is one datagram waiting for its next hop's MAC.
type arpSlot struct {
	used bool
	hop  netip.Addr
	dst  netip.AddrPort
	buf  []byte // cap = max payload
}

// maxARPEntries bounds the table; beyond it the oldest-expiring learnt entry
// is evicted.
const maxARPEntries = 4096

func newARPTable(queue, maxPayload int, timeout, retry int64, retries int) *arpTable {
	t := &arpTable{
		entries:    make(map[netip.Addr]*arpEntry),
		maxEntries: maxARPEntries,
		timeout:    timeout,
		retry:      retry,
		retries:    retries,
		slots:      make([]arpSlot, queue),
		free:       make([]int32, queue),
	}
	for i := range t.slots {
		t.slots[i].buf = make([]byte, 0, maxPayload)
		t.free[i] = int32(queue - 1 - i)
	}
	return t
}

// addStatic adds a permanent entry.
func (t *arpTable) addStatic(ip netip.Addr, mac macAddr) {
	t.entries[ip] = &arpEntry{mac: mac, state: arpStatic}
}

// lookup returns the MAC for hop. ok is false while hop is unresolved.
// request is true when the caller must send an ARP request for hop now (a
// new resolution, or the refresh of an expired entry that stays usable
// meanwhile).
func (t *arpTable) lookup(hop netip.Addr, now int64) (mac macAddr, ok, request bool) {
	e := t.entries[hop]
	if e == nil {
		t.evictIfFull(now)
		t.entries[hop] = &arpEntry{state: arpIncomplete, nextTry: now + t.retry, tries: 1}
		t.active++
		return mac, false, true
	}
	switch e.state {
	case arpStatic:
		return e.mac, true, false
	case arpReachable:
		if now >= e.expires && !e.refreshing {
			e.refreshing = true
			e.tries = 1
			e.nextTry = now + t.retry
			t.active++
			return e.mac, true, true
		}
		return e.mac, true, false
	}
	return mac, false, false
}

func (t *arpTable) evictIfFull(now int64) {
	if len(t.entries) < t.maxEntries {
		return
	}
	var victim netip.Addr
	var oldest int64
	for ip, e := range t.entries {
		if e.state == arpReachable && !e.refreshing && (!victim.IsValid() || e.expires < oldest) {
			victim, oldest = ip, e.expires
		}
	}
	if victim.IsValid() {
		delete(t.entries, victim)
	}
}

// enqueue copies a datagram for hop into a free slot. It returns false when
// all slots are in use (the caller counts the drop).
func (t *arpTable) enqueue(hop netip.Addr, dst netip.AddrPort, payload []byte) bool {
	if len(t.free) == 0 {
		return false
	}
	i := t.free[len(t.free)-1]
	t.free = t.free[:len(t.free)-1]
	s := &t.slots[i]
	s.used, s.hop, s.dst = true, hop, dst
	s.buf = append(s.buf[:0], payload...)
	t.inFlight++
	if e := t.entries[hop]; e != nil {
		e.pending++
	}
	return true
}

// learn records ip → mac from an ARP packet. create says whether a missing
// entry may be added (the packet was addressed to us); existing entries are
// always updated (RFC 826 merge). It returns whether datagrams are waiting
// for ip: the caller then sends them with takePending.
func (t *arpTable) learn(ip netip.Addr, mac macAddr, create bool, now int64) (updated, pending bool) {
	e := t.entries[ip]
	if e == nil {
		if !create {
			return false, false
		}
		t.evictIfFull(now)
		e = &arpEntry{}
		t.entries[ip] = e
	}
	if e.state == arpStatic {
		return false, false
	}
	if e.state == arpIncomplete || e.refreshing {
		t.active--
	}
	e.mac, e.state, e.expires, e.refreshing, e.tries = mac, arpReachable, now+t.timeout, false, 0
	return true, e.pending > 0
}

// takePending calls send for every datagram waiting for hop and frees its
// slot.
func (t *arpTable) takePending(hop netip.Addr, send func(dst netip.AddrPort, payload []byte)) {
	for i := range t.slots {
		s := &t.slots[i]
		if s.used && s.hop == hop {
			send(s.dst, s.buf)
			t.release(int32(i))
		}
	}
	if e := t.entries[hop]; e != nil {
		e.pending = 0
	}
}

func (t *arpTable) release(i int32) {
	t.slots[i].used = false
	t.free = append(t.free, i)
	t.inFlight--
}

// tick retries due resolutions: request is called for every address that
// needs another ARP request; an address that had ARPRetries requests
// unanswered is forgotten, its datagrams dropped (returned as dropped) and
// counted in timeouts.
func (t *arpTable) tick(now int64, request func(ip netip.Addr)) (dropped, timeouts int) {
	if t.active == 0 {
		return 0, 0
	}
	for ip, e := range t.entries {
		if !(e.state == arpIncomplete || e.refreshing) || now < e.nextTry {
			continue
		}
		if e.tries >= t.retries {
			timeouts++
			t.active--
			delete(t.entries, ip)
			for i := range t.slots {
				if t.slots[i].used && t.slots[i].hop == ip {
					t.release(int32(i))
					dropped++
				}
			}
			continue
		}
		e.tries++
		e.nextTry = now + t.retry
		request(ip)
	}
	return dropped, timeouts
}

// size is the number of entries.
func (t *arpTable) size() int { return len(t.entries) }
