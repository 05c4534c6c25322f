package reliable

import (
	"net/netip"
	"time"

	"github.com/raptormq/raptor/wire"
)

// testInitial appends a client Initial with token and no frames, padded.
func testInitial(b []byte, h wire.LongHeader, token []byte) []byte {
	start := len(b)
	return wire.PadInitial(wire.AppendInitialHeader(b, h, token), start)
}

// establishForTest adds to e an established listener session with the peer
// at from (connection ID remote), in plaintext mode, as a handshake with
// Config.InsecurePlaintext leaves it: for tests that feed it hand-made
// packets.
func establishForTest(e *endpoint, from netip.AddrPort, remote wire.ConnID, p wire.Params) *Session {
	s := newSession(e, false, randomID(), from)
	s.remoteID = remote
	s.clientKey = clientKey{from, remote}
	now := time.Now()
	s.mu.Lock()
	s.prot.plaintext = true
	s.applyPeerParamsLocked(p)
	s.state = stateEstablished
	s.lastRecv, s.lastSent = now, now
	close(s.established)
	s.mu.Unlock()
	e.mu.Lock()
	e.sessions[s.localID] = s
	e.byClient[s.clientKey] = s
	e.mu.Unlock()
	e.adm.mu.Lock()
	u := e.adm.perAddr[from.Addr()]
	if u == nil {
		u = &addrUse{}
		e.adm.perAddr[from.Addr()] = u
	}
	u.sessions++
	e.adm.mu.Unlock()
	e.stats.inc(CounterSessionsOpened)
	e.startSession(s)
	return s
}

// pin returns a copy of cfg (nil: defaults) whose client authenticates l's
// certificate by its SHA-256, as an application would with the fingerprint
// `raptor broker` prints.
func pin(l *Listener, cfg *Config) *Config {
	var c Config
	if cfg != nil {
		c = *cfg
	}
	c.PinnedSHA256 = l.CertificateSHA256()
	return &c
}
