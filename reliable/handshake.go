package reliable

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"time"

	"github.com/raptormq/raptor/wire"
)

// Both sides of the TLS 1.3 handshake (docs/PROTOCOL.md §5), run through
// crypto/tls's QUIC API: TLS produces and consumes the handshake bytes, which
// travel in CRYPTO frames of Initial (clear) and Handshake (sealed) packets;
// TLS hands over the traffic secrets from which protect.go derives the keys.
//
// Loss recovery is by flight: each side resends every handshake byte the peer
// has not implicitly acknowledged, on a backed-off timer and when a
// duplicate shows that the peer is resending too. Acknowledgement is
// implicit: any server Initial acknowledges the ClientHello; any client
// Handshake packet acknowledges the ServerHello; completion on the server
// acknowledges its flight; the first 1-RTT packet from the server (a PING
// sent at completion) acknowledges the client's Finished and confirms the
// handshake.

const (
	// ALPN names Raptor's protocol version; the plaintext variant is offered
	// only by a client with Config.InsecurePlaintext and accepted only by a
	// listener with it.
	alpnProtected = "raptor/1"
	alpnPlaintext = "raptor/1-insecure-plaintext"

	// hsPacketSize is the size of handshake packets: the smallest datagram
	// every Raptor path carries, since the peer's MaxDatagramSize is not known yet.
	hsPacketSize = wire.MinInitialSize
	// maxCryptoBuffer bounds the reassembly buffer of one level.
	maxCryptoBuffer = 32 << 10
	// cookieLifetime: how long a Retry cookie is accepted.
	cookieLifetime = 3 * time.Second

	levelInitial   = 0
	levelHandshake = 1
)

// ErrNoServerAuth is returned by Dial when the Config says neither how to
// authenticate the server (TLS with roots, or PinnedSHA256) nor that it must
// not be authenticated.
var ErrNoServerAuth = errors.New("raptor: no way to authenticate the server: set Config.PinnedSHA256 (the fingerprint `raptor broker` prints), Config.TLS (RootCAs/ServerName), or, knowing that anyone on the path can then impersonate the server, Config.InsecureSkipServerAuth")

// PinError is returned when the server's certificate does not match
// Config.PinnedSHA256.
type PinError struct {
	Got, Want []byte
}

func (e *PinError) Error() string {
	return fmt.Sprintf("raptor: server certificate SHA-256 %x does not match Config.PinnedSHA256 %x", e.Got, e.Want)
}

type cryptoSend struct {
	data  []byte
	acked bool
}

type cryptoRecv struct {
	buf       []byte
	have      rangeSet
	delivered uint64
}

// handshake is one side's TLS handshake state; the session drops it once the
// handshake is confirmed.
type handshake struct {
	conn      *tls.QUICConn
	out       [2]cryptoSend
	in        [2]cryptoRecv
	seal      *levelKeys // Handshake level
	open      *levelKeys
	pn        uint64 // next Handshake-level packet number
	suite     uint16
	appSeal   []byte
	appOpen   []byte
	peerTP    []byte
	sendNow   bool
	lastSend  time.Time
	tlsDone   bool // TLS reported completion
	complete  bool // and the session took the keys
	addrCount bool // listener: counted in the per-address handshake limit
	gotServer bool // client: a server Initial arrived
	retried   bool // client: a Retry was taken (one per handshake)
	tickets   bool // client: a ClientSessionCache stores session tickets
	fp        wire.HandshakeFrameParser
}

// protection is a session's 1-RTT state after the handshake.
type protection struct {
	keys      *appKeys // nil until the handshake completes, and in plaintext mode
	plaintext bool     // negotiated alpnPlaintext: short packets go unsealed
	state     tls.ConnectionState

	// Post-handshake (docs/PROTOCOL.md §5.8). Server: the session ticket
	// (application-level CRYPTO data) and the address token it sends once,
	// resent whole while a packet carrying them is lost.
	postOut      []byte
	postToken    []byte
	postOff      int  // bytes of postOut sent in the current round
	postQueued   bool // a round is due
	postInFlight int  // packets carrying post-handshake frames not yet acknowledged or lost
	// Client: the TLS connection, kept after confirmation until the ticket
	// has been stored; the ticket's reassembly; the latest NEW_TOKEN.
	tlsConn  *tls.QUICConn
	postIn   cryptoRecv
	newToken []byte
}

const (
	// maxTicketBytes bounds the server's post-handshake TLS data (one
	// NewSessionTicket; larger, with a long client certificate chain, it is
	// not sent) and what a client reassembles of it.
	maxTicketBytes = 4 << 10
	// tokenExtraLabel prefixes the address token a client keeps in the
	// session's SessionState.Extra, next to the ticket it came with.
	tokenExtraLabel = "raptor-address-token:"
)

// localListeners are the certificate fingerprints of this process's
// listeners by address: a client of the same process that has no other way to
// authenticate the server pins the certificate of the listener it reaches
// (docs/PROTOCOL.md §5.7). No other process can be on the far side of such a
// pin: the fingerprint is that of a key only this process holds.
var localListeners struct {
	sync.Mutex
	m map[netip.AddrPort]localListener
	// closed are the addresses of this process's listeners that closed (at
	// most maxClosedLocal, oldest forgotten first): a client that could have
	// pinned one of them fails as a dial to a port nobody listens on does
	// (errLocalListenerClosed), not with ErrNoServerAuth.
	closed      map[netip.AddrPort]struct{}
	closedOrder []netip.AddrPort
}

// maxClosedLocal bounds localListeners.closed.
const maxClosedLocal = 1024

// errLocalListenerClosed is a dial's error when the server is this process's
// listener at raddr and it has closed: a *net.OpError with Op "dial" around
// ECONNREFUSED, as a TCP dial to a closed port fails, so that clients retry
// it as a dead endpoint (franz-go refreshes metadata and moves to another
// broker) instead of taking it for a configuration error.
func errLocalListenerClosed(raddr netip.AddrPort) error {
	return &net.OpError{Op: "dial", Net: "udp", Addr: net.UDPAddrFromAddrPort(raddr),
		Err: fmt.Errorf("raptor: this process's listener there has closed: %w", syscall.ECONNREFUSED)}
}

// wasLocalListener reports whether this process had a listener at raddr (or
// on its port of an unspecified address, for a loopback raddr) that closed
// and none listens there now.
func wasLocalListener(raddr netip.AddrPort) bool {
	localListeners.Lock()
	defer localListeners.Unlock()
	if _, ok := localListeners.closed[raddr]; ok {
		return true
	}
	if raddr.Addr().IsLoopback() {
		for _, any := range []netip.Addr{netip.IPv4Unspecified(), netip.IPv6Unspecified()} {
			if _, ok := localListeners.closed[netip.AddrPortFrom(any, raddr.Port())]; ok {
				return true
			}
		}
	}
	return false
}

// localListener is one entry of localListeners. Two listeners of one process
// on one address (possible only on a simulated network) make it ambiguous:
// no pin is taken from it then.
type localListener struct {
	fp     []byte
	owners int
}

func registerLocalListener(addr netip.AddrPort, fp []byte) {
	if fp == nil || !addr.IsValid() {
		return
	}
	localListeners.Lock()
	defer localListeners.Unlock()
	if localListeners.m == nil {
		localListeners.m = make(map[netip.AddrPort]localListener)
	}
	delete(localListeners.closed, addr)
	e := localListeners.m[addr]
	e.owners++
	if e.owners == 1 {
		e.fp = fp
	} else {
		e.fp = nil
	}
	localListeners.m[addr] = e
}

func unregisterLocalListener(addr netip.AddrPort) {
	localListeners.Lock()
	defer localListeners.Unlock()
	e, ok := localListeners.m[addr]
	if !ok {
		return
	}
	if e.owners--; e.owners <= 0 {
		delete(localListeners.m, addr)
		if localListeners.closed == nil {
			localListeners.closed = make(map[netip.AddrPort]struct{})
		}
		if len(localListeners.closedOrder) >= maxClosedLocal {
			delete(localListeners.closed, localListeners.closedOrder[0])
			localListeners.closedOrder = localListeners.closedOrder[1:]
		}
		localListeners.closed[addr] = struct{}{}
		localListeners.closedOrder = append(localListeners.closedOrder, addr)
		return
	}
	localListeners.m[addr] = e // still ambiguous: which one is left is not known
}

// localPin returns the fingerprint of this process's listener at raddr (or on
// raddr's port of an unspecified address, when raddr is a loopback address).
func localPin(raddr netip.AddrPort) []byte {
	localListeners.Lock()
	defer localListeners.Unlock()
	if e, ok := localListeners.m[raddr]; ok {
		return e.fp
	}
	if raddr.Addr().IsLoopback() {
		for _, any := range []netip.Addr{netip.IPv4Unspecified(), netip.IPv6Unspecified()} {
			if e, ok := localListeners.m[netip.AddrPortFrom(any, raddr.Port())]; ok {
				return e.fp
			}
		}
	}
	return nil
}

// clientTLSConfig is the tls.Config a session dialing raddr uses
// (docs/PROTOCOL.md §5.7): Config.TLS, with the server authenticated by
// PinnedSHA256 when set, or by the certificate of this process's own
// listener at raddr.
func clientTLSConfig(cfg *Config, serverName string, raddr netip.AddrPort) (*tls.Config, error) {
	var tc *tls.Config
	if cfg.TLS != nil {
		tc = cfg.TLS.Clone()
	} else {
		tc = &tls.Config{}
	}
	pinned := cfg.PinnedSHA256
	if pinned == nil && cfg.TLS == nil && !cfg.InsecureSkipServerAuth && !cfg.InsecurePlaintext {
		pinned = localPin(raddr)
	}
	switch {
	case pinned != nil:
		want := bytes.Clone(pinned)
		tc.InsecureSkipVerify = true // the pin replaces chain and name checks
		tc.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return fmt.Errorf("raptor: server sent no certificate to check against Config.PinnedSHA256")
			}
			got := sha256.Sum256(cs.PeerCertificates[0].Raw)
			if !bytes.Equal(got[:], want) {
				return &PinError{Got: got[:], Want: want}
			}
			return nil
		}
	case cfg.TLS != nil:
	case cfg.InsecureSkipServerAuth || cfg.InsecurePlaintext:
		tc.InsecureSkipVerify = true
	default:
		if wasLocalListener(raddr) {
			return nil, errLocalListenerClosed(raddr)
		}
		return nil, ErrNoServerAuth
	}
	if tc.ServerName == "" {
		tc.ServerName = serverName
	}
	tc.MinVersion = tls.VersionTLS13
	tc.NextProtos = []string{alpnProtected}
	if cfg.InsecurePlaintext {
		tc.NextProtos = []string{alpnPlaintext}
	}
	return tc, nil
}

// serverTLSConfig is the listener's tls.Config and the SHA-256 of its
// certificate: Config.TLS's, or an ephemeral self-signed one.
func serverTLSConfig(cfg *Config) (*tls.Config, []byte, error) {
	var tc *tls.Config
	if cfg.TLS != nil {
		tc = cfg.TLS.Clone()
	} else {
		tc = &tls.Config{}
	}
	if len(tc.Certificates) == 0 && tc.GetCertificate == nil && tc.GetConfigForClient == nil {
		cert, err := NewEphemeralCertificate()
		if err != nil {
			return nil, nil, err
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	var fp []byte
	if len(tc.Certificates) > 0 && len(tc.Certificates[0].Certificate) > 0 {
		sum := sha256.Sum256(tc.Certificates[0].Certificate[0])
		fp = sum[:]
	}
	tc.MinVersion = tls.VersionTLS13
	tc.NextProtos = []string{alpnProtected}
	if cfg.InsecurePlaintext {
		tc.NextProtos = []string{alpnPlaintext, alpnProtected}
	}
	return tc, fp, nil
}

// NewEphemeralCertificate makes a self-signed ECDSA P-256 certificate valid
// for a year, as a listener without a certificate in Config.TLS does; clients
// pin its SHA-256. Give the same one to several listeners (in Config.TLS) so
// that one pin reaches all of them.
func NewEphemeralCertificate() (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("raptor: ephemeral certificate key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("raptor: ephemeral certificate serial: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "raptor ephemeral listener"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("raptor: ephemeral certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

// CertificateSHA256 is the SHA-256 of the listener's certificate (the
// ephemeral one when Config.TLS has none): the value for a client's
// Config.PinnedSHA256. Nil when Config.TLS chooses certificates per client.
func (l *Listener) CertificateSHA256() []byte { return bytes.Clone(l.e.certSHA256) }

// FormatFingerprint formats a certificate SHA-256 as `raptor broker` prints
// it: lowercase hex. ParseFingerprint reads it back.
func FormatFingerprint(sum []byte) string { return hex.EncodeToString(sum) }

// ParseFingerprint parses a certificate SHA-256 in hex (colons allowed).
func ParseFingerprint(s string) ([]byte, error) {
	b, err := hex.DecodeString(string(bytes.ReplaceAll([]byte(s), []byte(":"), nil)))
	if err != nil || len(b) != sha256.Size {
		return nil, fmt.Errorf("raptor: certificate fingerprint %q is not 32 bytes of hex", s)
	}
	return b, nil
}

// ConnectionState is the TLS state of the session's handshake (peer
// certificates, cipher suite, ALPN); zero until the handshake completes.
func (s *Session) ConnectionState() tls.ConnectionState {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.prot.state
}

// Protected reports whether the session's packets are sealed (false only
// with Config.InsecurePlaintext on both sides).
func (s *Session) Protected() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.prot.keys != nil
}

// startHandshakeLocked creates the TLS side of s and starts it; for a client
// this produces the ClientHello.
func (s *Session) startHandshakeLocked(tc *tls.Config, now time.Time) error {
	hs := &handshake{tickets: s.isClient && tc.ClientSessionCache != nil && !tc.SessionTicketsDisabled}
	qc := &tls.QUICConfig{TLSConfig: tc, EnableSessionEvents: s.isClient}
	if s.isClient {
		hs.conn = tls.QUICClient(qc)
	} else {
		hs.conn = tls.QUICServer(qc)
	}
	p := s.localParams()
	hs.conn.SetTransportParameters(p.Append(nil))
	s.hs = hs
	s.hsNext = now
	s.hsInterval = initialHSResend
	s.hsDeadline = now.Add(s.cfg.HandshakeTimeout)
	if err := hs.conn.Start(context.Background()); err != nil {
		return err
	}
	return s.hsEventsLocked(now)
}

// hsEventsLocked processes what TLS has to say after Start or HandleData.
func (s *Session) hsEventsLocked(now time.Time) error {
	hs := s.hs
	for {
		ev := hs.conn.NextEvent()
		switch ev.Kind {
		case tls.QUICNoEvent:
			if hs.tlsDone && !hs.complete {
				return s.completeHandshakeLocked(now) // the 1-RTT read secret follows HandshakeDone
			}
			return nil
		case tls.QUICWriteData:
			var o *cryptoSend
			switch ev.Level {
			case tls.QUICEncryptionLevelInitial:
				o = &hs.out[levelInitial]
			case tls.QUICEncryptionLevelHandshake:
				o = &hs.out[levelHandshake]
			default:
				continue // the server's ticket is written after completion (sendTicketLocked)
			}
			if len(o.data)+len(ev.Data) > wire.MaxCryptoData {
				return fmt.Errorf("raptor: TLS %v flight of %d bytes exceeds %d", ev.Level, len(o.data)+len(ev.Data), wire.MaxCryptoData)
			}
			o.data = append(o.data, ev.Data...)
			o.acked = false
			hs.sendNow = true
		case tls.QUICSetReadSecret, tls.QUICSetWriteSecret:
			read := ev.Kind == tls.QUICSetReadSecret
			switch ev.Level {
			case tls.QUICEncryptionLevelHandshake:
				k, err := newLevelKeys(ev.Suite, ev.Data)
				if err != nil {
					return err
				}
				if read {
					hs.open = k
				} else {
					hs.seal = k
				}
			case tls.QUICEncryptionLevelApplication:
				hs.suite = ev.Suite
				if read {
					hs.appOpen = bytes.Clone(ev.Data)
				} else {
					hs.appSeal = bytes.Clone(ev.Data)
				}
			}
		case tls.QUICTransportParameters:
			hs.peerTP = bytes.Clone(ev.Data)
		case tls.QUICHandshakeDone:
			hs.tlsDone = true
		case tls.QUICErrorEvent:
			return ev.Err
		}
		// QUICResumeSession (client): a ticket is offered; its EarlyData is
		// false, since Raptor's tickets never allow 0-RTT.
	}
}

// completeHandshakeLocked installs the 1-RTT keys and the peer's parameters.
func (s *Session) completeHandshakeLocked(now time.Time) error {
	hs := s.hs
	if hs.complete {
		return nil
	}
	hs.complete = true
	cs := hs.conn.ConnectionState()
	p, _, err := wire.ParseParams(hs.peerTP)
	if err != nil {
		return &SessionError{Code: CodeProtocol, Reason: fmt.Sprintf("peer's transport parameters: %v", err)}
	}
	s.prot.state = cs
	if cs.NegotiatedProtocol == alpnPlaintext {
		s.prot.plaintext = true
	} else {
		if hs.appSeal == nil || hs.appOpen == nil {
			return fmt.Errorf("raptor: TLS completed without 1-RTT secrets")
		}
		after := s.cfg.keyUpdateAfter
		if after == 0 {
			after = aesGCMPacketLimit / 4
		}
		if s.prot.keys, err = newAppKeys(hs.suite, hs.appSeal, hs.appOpen, after); err != nil {
			return err
		}
	}
	hs.appSeal, hs.appOpen = nil, nil
	if err := s.applyPeerParamsLocked(p); err != nil {
		return err // a parameter out of range: CodeProtocol (docs/PROTOCOL.md §5.4)
	}
	s.state = stateEstablished
	s.lastRecv, s.lastSent = now, now
	hs.out[levelInitial].acked = true
	if !s.isClient {
		// The server's flight is acknowledged by the client's Finished; a PING
		// tells the client that the handshake is confirmed, and with it go a
		// session ticket and an address token for the next handshake.
		hs.out[levelHandshake].acked = true
		s.pingQueued = true
		if err := s.sendTicketLocked(now); err != nil {
			return err
		}
		s.ep.handshakeDone(s)
		s.dropHandshakeLocked()
	}
	// A resumed client has its 1-RTT keys and its Finished is queued ahead
	// of any short-header packet: Dial returns (docs/PROTOCOL.md §5.6). The
	// server already took this client's certificate and parameters in the
	// session the ticket comes from (a resumed handshake has no certificate
	// request). After a full handshake Dial waits for the server's verdict
	// on them: its confirmation. The Finished is resent
	// while the server resends its flight, until that confirmation.
	if !s.isClient || cs.DidResume {
		close(s.established)
	}
	return nil
}

// sendTicketLocked (server, at completion) has TLS write a session ticket
// and queues it with a new address token (docs/PROTOCOL.md §5.8).
func (s *Session) sendTicketLocked(now time.Time) error {
	conn := s.hs.conn
	if err := conn.SendSessionTicket(tls.QUICSessionTicketOptions{}); err != nil {
		return err
	}
	var ticket []byte
	for {
		ev := conn.NextEvent()
		if ev.Kind == tls.QUICNoEvent {
			break
		}
		switch ev.Kind {
		case tls.QUICWriteData:
			if ev.Level == tls.QUICEncryptionLevelApplication {
				ticket = append(ticket, ev.Data...)
			}
		case tls.QUICErrorEvent:
			return ev.Err
		}
	}
	if len(ticket) == 0 || len(ticket) > maxTicketBytes {
		return nil // tickets disabled in Config.TLS, or too large: no resumption
	}
	s.prot.postOut = ticket
	s.prot.postToken = s.ep.mintAddrToken(s.peer.Addr(), now)
	s.prot.postQueued, s.prot.postOff = true, 0
	return nil
}

// confirmLocked: the client opened a 1-RTT packet from the server, so the
// server completed the handshake and the client's handshake state can go.
func (s *Session) confirmLocked() {
	if s.hs == nil || !s.isClient {
		return
	}
	s.dropHandshakeLocked()
	closeOnce(s.established)
}

// dropHandshakeLocked ends the handshake state. A confirmed client that stores
// tickets keeps the TLS connection to read the server's ticket.
func (s *Session) dropHandshakeLocked() {
	if s.hs == nil {
		return
	}
	if s.isClient && s.hs.tickets && s.hs.complete && s.state == stateEstablished && s.prot.tlsConn == nil {
		s.prot.tlsConn = s.hs.conn
	} else {
		s.hs.conn.Close()
	}
	s.hs = nil
}

// closeTLSLocked releases what the session keeps of TLS after the handshake.
func (s *Session) closeTLSLocked() {
	if s.prot.tlsConn != nil {
		s.prot.tlsConn.Close()
		s.prot.tlsConn = nil
	}
	s.prot.postIn = cryptoRecv{}
}

// appendPostHandshakeLocked (server) adds the address token and as much of
// the session ticket as fits to a short-header packet being built, and
// reports whether it added anything (docs/PROTOCOL.md §5.8).
func (s *Session) appendPostHandshakeLocked(b []byte, limit int, rec *sentPacket) ([]byte, bool) {
	p := &s.prot
	if !p.postQueued {
		return b, false
	}
	added := false
	if p.postOff == 0 && len(p.postToken) > 0 {
		f := wire.NewTokenFrame{Token: p.postToken}
		if len(b)+f.Length() > limit {
			return b, false
		}
		b, _ = f.Append(b)
		added = true
	}
	if room := limit - len(b) - wire.CryptoFrameOverhead; room > 0 && p.postOff < len(p.postOut) {
		k := min(room, len(p.postOut)-p.postOff)
		f := wire.CryptoFrame{Offset: uint64(p.postOff), Data: p.postOut[p.postOff : p.postOff+k]}
		b, _ = f.Append(b)
		p.postOff += k
		added = true
	}
	if !added {
		return b, false
	}
	if p.postOff == len(p.postOut) {
		p.postQueued = false
	}
	rec.ctl |= ctlPostHandshake
	p.postInFlight++
	return b, true
}

// onPostHandshakeDoneLocked: a packet with post-handshake frames was
// acknowledged or lost. A loss resends them all; when every packet of a
// round is acknowledged, they are dropped.
func (s *Session) onPostHandshakeDoneLocked(lost bool) {
	p := &s.prot
	p.postInFlight--
	if lost && len(p.postOut) > 0 {
		p.postQueued, p.postOff = true, 0
	}
	if p.postInFlight <= 0 && !p.postQueued {
		p.postOut, p.postToken, p.postInFlight = nil, nil, 0
	}
}

// handlePostHandshakeLocked takes a CRYPTO or NEW_TOKEN frame of a
// short-header packet. A client reassembles the ticket and passes it to TLS,
// which stores it (with the latest token) in the ClientSessionCache. The
// server ignores CRYPTO (the client sends none) and refuses NEW_TOKEN.
func (s *Session) handlePostHandshakeLocked(f wire.Frame) error {
	switch f := f.(type) {
	case *wire.NewTokenFrame:
		if !s.isClient {
			return &SessionError{Code: CodeProtocol, Reason: "NEW_TOKEN frame from a client"}
		}
		s.prot.newToken = append(s.prot.newToken[:0], f.Token...)
	case *wire.CryptoFrame:
		conn := s.prot.tlsConn
		if conn == nil {
			return nil // no ticket wanted, or already stored: a resend
		}
		in := &s.prot.postIn
		fresh, err := in.add(f.Offset, f.Data, maxTicketBytes)
		if err != nil {
			s.closeTLSLocked() // an oversized ticket: resumption is not worth a session
			return nil
		}
		if !fresh {
			return nil
		}
		if data := in.take(); len(data) > 0 {
			if err := conn.HandleData(tls.QUICEncryptionLevelApplication, data); err != nil {
				s.closeTLSLocked()
				return &SessionError{Code: CodeProtocol, Reason: fmt.Sprintf("server's session ticket: %v", err)}
			}
		}
		for {
			ev := conn.NextEvent()
			if ev.Kind == tls.QUICNoEvent {
				break
			}
			if ev.Kind == tls.QUICStoreSession && ev.SessionState != nil {
				st := ev.SessionState
				extra := st.Extra[:0:0]
				for _, x := range st.Extra {
					if !bytes.HasPrefix(x, []byte(tokenExtraLabel)) {
						extra = append(extra, x)
					}
				}
				if len(s.prot.newToken) > 0 {
					extra = append(extra, append([]byte(tokenExtraLabel), s.prot.newToken...))
				}
				st.Extra = extra
				if err := conn.StoreSession(st); err == nil {
					s.closeTLSLocked() // one ticket per session
					return nil
				}
			}
		}
	}
	return nil
}

// cachedAddrToken returns the address token stored with the session ticket
// that tc's ClientSessionCache holds for tc.ServerName (crypto/tls's cache
// key for a QUIC client), or nil.
func cachedAddrToken(tc *tls.Config) []byte {
	if tc.ClientSessionCache == nil || tc.SessionTicketsDisabled || tc.ServerName == "" {
		return nil
	}
	cs, ok := tc.ClientSessionCache.Get(tc.ServerName)
	if !ok || cs == nil {
		return nil
	}
	_, st, err := cs.ResumptionState()
	if err != nil || st == nil {
		return nil
	}
	for _, x := range st.Extra {
		if tok, ok := bytes.CutPrefix(x, []byte(tokenExtraLabel)); ok && len(tok) > 0 && len(tok) <= wire.MaxTokenLen {
			return bytes.Clone(tok)
		}
	}
	return nil
}

// add copies CRYPTO data at off into the reassembly buffer, which may reach
// at most limit bytes; it reports whether any byte was new.
func (in *cryptoRecv) add(off uint64, data []byte, limit uint64) (bool, error) {
	end := off + uint64(len(data))
	if end > limit {
		return false, fmt.Errorf("TLS data reaches offset %d, beyond %d", end, limit)
	}
	if end <= in.delivered || in.have.contains(max(off, in.delivered), end) {
		return false, nil
	}
	if uint64(len(in.buf)) < end-in.delivered {
		in.buf = append(in.buf, make([]byte, int(end-in.delivered)-len(in.buf))...)
	}
	lo := max(off, in.delivered)
	copy(in.buf[lo-in.delivered:], data[lo-off:])
	in.have.add(lo, end)
	return true, nil
}

// take returns the bytes that continue what was delivered (valid until the
// next add), and marks them delivered.
func (in *cryptoRecv) take() []byte {
	sp, ok := in.have.first()
	if !ok || sp.lo != in.delivered {
		return nil
	}
	n := sp.hi - in.delivered
	data := bytes.Clone(in.buf[:n])
	in.delivered = sp.hi
	in.have.trimBelow(in.delivered)
	in.buf = append(in.buf[:0], in.buf[n:]...)
	return data
}

// handleCryptoPacketLocked processes an Initial or Handshake packet addressed
// to s (pkt is the whole datagram, hl the long header's length). It returns
// false for a packet that is malformed or does not open.
func (s *Session) handleCryptoPacketLocked(h wire.LongHeader, pkt []byte, hl int, now time.Time) bool {
	hs := s.hs
	if hs == nil || s.state == stateClosed || s.state == stateClosing {
		s.stats.inc(CounterDropsAuth) // confirmed or ended: its keys are gone
		return true
	}
	level := levelInitial
	var payload []byte
	if h.Type == wire.TypeInitial {
		_, frames, err := wire.ParseInitial(pkt[hl:])
		if err != nil {
			return false
		}
		payload = frames
	} else {
		level = levelHandshake
		if hs.open == nil {
			s.stats.inc(CounterDropsAuth)
			return true
		}
		hdrLen, pn, err := unprotectHeader(&hs.open.hp, pkt, wire.LongHeaderLen, 0)
		if err == nil {
			payload, err = openPayload(&hs.open.key, pkt, hdrLen, pn)
		}
		if err != nil {
			s.stats.inc(CounterDropsAuth)
			return true
		}
	}
	// Validate every frame before acting on any.
	for b := payload; len(b) > 0; {
		_, n, err := hs.fp.ParseNext(b)
		if err != nil {
			return false
		}
		b = b[n:]
	}
	if s.isClient && level == levelInitial {
		hs.out[levelInitial].acked = true // the server has the whole ClientHello
		if !hs.gotServer {
			hs.gotServer = true
			s.remoteID = h.SrcID // the listener's connection ID for this session
			if s.hsSends == 1 {
				s.rec.rtt.update(now.Sub(s.hsSentAt), 0) // unambiguous: one flight since the Retry
			}
		}
	}
	if !s.isClient && level == levelHandshake {
		hs.out[levelInitial].acked = true // the client has the ServerHello
	}
	s.lastRecv = now
	dup, fresh := true, false
	for b := payload; len(b) > 0; {
		f, n, _ := hs.fp.ParseNext(b)
		b = b[n:]
		switch f := f.(type) {
		case *wire.CryptoFrame:
			nw, err := hs.in[level].add(f.Offset, f.Data, maxCryptoBuffer)
			if err != nil {
				s.failHandshakeLocked(now, fmt.Errorf("raptor: peer's %s level: %w", levelName(level), err))
				return true
			}
			if nw {
				dup, fresh = false, true
			}
		case *wire.CloseFrame:
			s.closeLocked(&SessionError{Code: ErrorCode(f.ErrorCode), Remote: true, Reason: string(f.Reason)}, false, now)
			return true
		}
	}
	if fresh {
		for lvl := levelInitial; lvl <= levelHandshake && s.hs != nil; lvl++ {
			data := s.hs.in[lvl].take()
			if len(data) == 0 {
				continue
			}
			tlsLevel := tls.QUICEncryptionLevelInitial
			if lvl == levelHandshake {
				tlsLevel = tls.QUICEncryptionLevelHandshake
			}
			err := s.hs.conn.HandleData(tlsLevel, data)
			if err == nil {
				err = s.hsEventsLocked(now)
			}
			if err != nil {
				s.failHandshakeLocked(now, err)
				return true
			}
		}
	}
	if dup && s.hs != nil && s.hs.unacked() && now.Sub(s.hs.lastSend) >= initialHSResend/4 {
		s.hs.sendNow = true // the peer is resending: our flight was probably lost
	}
	return true
}

func levelName(l int) string {
	if l == levelInitial {
		return "Initial"
	}
	return "Handshake"
}

// failHandshakeLocked ends the session because TLS (or the handshake around
// it) failed, telling the peer why.
func (s *Session) failHandshakeLocked(now time.Time, err error) {
	if s.hsErr == nil {
		s.hsErr = fmt.Errorf("raptor: TLS handshake with %s failed: %w", s.peer, err)
	}
	if se, ok := err.(*SessionError); ok && !se.Remote {
		s.closeLocked(se, true, now) // our own verdict on the peer (a parameter out of range) keeps its code
		return
	}
	s.closeLocked(&SessionError{Code: CodeHandshake, Reason: err.Error()}, true, now)
}

func (hs *handshake) unacked() bool {
	return (!hs.out[levelInitial].acked && len(hs.out[levelInitial].data) > 0) ||
		(!hs.out[levelHandshake].acked && len(hs.out[levelHandshake].data) > 0)
}

// packHandshakeLocked builds the handshake packets due now: every byte not
// yet acknowledged, when new bytes are waiting, the resend timer fired, or
// the peer showed it is resending.
func (s *Session) packHandshakeLocked(now time.Time) int {
	hs := s.hs
	if hs == nil || !hs.unacked() {
		if s.state == stateHandshake {
			s.hsNext = time.Time{} // nothing to resend: no timer
		}
		return 0
	}
	timerDue := s.state == stateHandshake && !now.Before(s.hsNext)
	if !hs.sendNow && !timerDue {
		return 0
	}
	n := 0
	for lvl := levelInitial; lvl <= levelHandshake && n < maxSendBatch; lvl++ {
		o := &hs.out[lvl]
		if o.acked || len(o.data) == 0 || (lvl == levelHandshake && hs.seal == nil) {
			continue
		}
		for off := 0; off < len(o.data) && n < maxSendBatch; {
			b, bp := s.newOut()
			b, chunk := s.appendHandshakePacketLocked(b, lvl, func(b []byte, room int) ([]byte, int) {
				k := min(room, len(o.data)-off)
				f := wire.CryptoFrame{Offset: uint64(off), Data: o.data[off : off+k]}
				b, _ = f.Append(b)
				return b, k
			})
			s.queueOut(b, bp)
			n++
			off += chunk
			if s.isClient && lvl == levelInitial && len(s.hsToken) == 0 {
				break // without a cookie the server answers with a Retry: one packet is enough
			}
		}
	}
	if n > 0 {
		if s.state == stateHandshake {
			s.hsSentAt = now
			s.hsSends++
		}
		s.hsNext = now.Add(s.hsInterval)
		s.hsInterval = min(2*s.hsInterval, time.Second)
		hs.lastSend = now
	}
	hs.sendNow = false
	return n
}

// appendHandshakePacketLocked appends one handshake packet at level lvl whose
// frames fill adds (given the room left); it returns the packet and what fill
// reported.
func (s *Session) appendHandshakePacketLocked(b []byte, lvl int, fill func(b []byte, room int) ([]byte, int)) ([]byte, int) {
	dst := s.remoteID
	if s.isClient && s.remoteID == (wire.ConnID{}) {
		dst = s.hsDst
	}
	h := wire.LongHeader{Version: wire.Version1, DstID: dst, SrcID: s.localID}
	start := len(b)
	if lvl == levelInitial {
		var token []byte
		if s.isClient {
			token = s.hsToken
		}
		b = wire.AppendInitialHeader(b, h, token)
		b, r := fill(b, hsPacketSize-(len(b)-start)-wire.CryptoFrameOverhead)
		if s.isClient {
			b = wire.PadInitial(b, start)
		}
		return b, r
	}
	hs := s.hs
	pn := hs.pn
	hs.pn++
	b = wire.AppendHandshakeHeader(b, h, pn)
	hdrLen := len(b) - start
	b, r := fill(b, hsPacketSize-hdrLen-aeadTagLen-wire.CryptoFrameOverhead)
	pkt := sealPacket(&hs.seal.key, &hs.seal.hp, b[start:], wire.LongHeaderLen, hdrLen, pn, 0)
	return b[:start+len(pkt)], r
}

// packHandshakeCloseLocked sends our CLOSE at the handshake level, for a
// session that has no 1-RTT keys.
func (s *Session) packHandshakeCloseLocked() int {
	if s.hs == nil || (s.isClient && s.hsDst == (wire.ConnID{})) {
		return 0
	}
	lvl := levelInitial
	if s.hs.seal != nil {
		lvl = levelHandshake
	}
	b, bp := s.newOut()
	b, _ = s.appendHandshakePacketLocked(b, lvl, func(b []byte, room int) ([]byte, int) {
		cf := wire.CloseFrame{ErrorCode: uint64(s.closeCode), Reason: []byte(s.closeReason)}
		b, _ = cf.Append(b)
		return b, 0
	})
	s.queueOut(b, bp)
	s.closeSentPending = true
	return 1
}

// sealOutLocked seals a finished short-header packet (a no-op for handshake
// packets, sealed when built, and in plaintext mode).
func (s *Session) sealOutLocked(b []byte) []byte {
	if s.prot.keys == nil || wire.IsLongHeader(b) || len(b) <= wire.ShortPNOffset {
		return b
	}
	pn, n := wire.ReadVarint(b[wire.ShortPNOffset:])
	if n == 0 {
		return b
	}
	return s.prot.keys.sealShort(b, wire.ShortPNOffset+n, pn)
}

// canSendShortLocked reports whether short-header packets can go to the peer.
func (s *Session) canSendShortLocked() bool { return s.prot.keys != nil || s.prot.plaintext }

// sealOverhead is what sealing adds to a short-header packet.
func (s *Session) sealOverhead() int {
	if s.prot.keys != nil {
		return aeadTagLen
	}
	return 0
}

// openShortLocked removes the protection of a short-header datagram b in
// place (or, for bulk data a reader is behind on, into the stream's receive
// ring: rxring.go). A packet that does not open is counted (drop reason
// "auth") and touches nothing else of the session.
func (s *Session) openShortLocked(b []byte, now time.Time, fp *wire.FrameParser) (wire.ShortHeader, int, []byte, bool) {
	s.rxIn = rxIn{}
	switch {
	case s.prot.keys != nil:
		t := s.rxTargetLocked()
		h, hl, p, err := s.prot.keys.openShortInto(b, t)
		if t != nil {
			if err == nil && t.out != nil {
				s.rxLandLocked(t, b[hl:hl+len(p)], fp)
			}
			t.ring, t.out = nil, nil // hold no ring past the packet (rxIn does while it is handled)
		}
		if err != nil {
			s.stats.inc(CounterDropsAuth)
			if s.prot.keys.integrityExceeded() {
				s.closeLocked(&SessionError{Code: CodeProtocol, Reason: fmt.Sprintf("%d packets failed authentication: AEAD integrity limit", s.prot.keys.failed)}, true, now)
			}
			return h, 0, nil, false
		}
		if s.hs != nil {
			s.confirmLocked()
		}
		return h, hl, b[:hl+len(p)], true
	case s.prot.plaintext:
		h, hl, err := wire.ParseShortHeader(b)
		if err != nil {
			s.stats.inc(CounterDropsMalformed)
			return h, 0, nil, false
		}
		if s.hs != nil {
			s.confirmLocked()
		}
		return h, hl, b, true
	}
	s.stats.inc(CounterDropsAuth) // no 1-RTT keys yet
	return wire.ShortHeader{}, 0, nil, false
}
