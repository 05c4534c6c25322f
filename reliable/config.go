package reliable

import (
	"crypto/sha256"
	"crypto/tls"
	"fmt"
	"log/slog"
	"time"
)

// Config tunes an endpoint and its sessions. The zero value of every field
// means the documented default; Listen and Dial validate it up front.
type Config struct {
	// MaxDatagramSize is the base datagram size (UDP payload): what every
	// session starts with and falls back to when the path stops carrying more,
	// so every path must carry it. Default 1452 (fits a 1500-byte MTU over
	// IPv6). Range 1200..65527.
	MaxDatagramSize int
	// MaxProbedDatagramSize is the ceiling of datagram size discovery
	// (docs/PROTOCOL.md §8.12): a session probes sizes above MaxDatagramSize up
	// to this, the peer's max_datagram_size and what the path carries, and
	// sends the largest confirmed. It is also the largest datagram this side
	// receives, announced as max_datagram_size; each receive loop holds a
	// batch of buffers of this size. Default 16384 (on loopback, the gain
	// flattens beyond it: docs/PROTOCOL.md §8.12); negative turns discovery
	// off (datagrams stay at MaxDatagramSize). Range MaxDatagramSize..65527.
	MaxProbedDatagramSize int
	// probeRaiseAfter: how long a finished datagram size search rests
	// (default probeRaiseInterval; tests lower it).
	probeRaiseAfter time.Duration
	// HandshakeTimeout bounds Dial's handshake. Default 5s.
	HandshakeTimeout time.Duration
	// IdleTimeout ends a session that received nothing for this long; the
	// smaller of both sides' values applies. Default 30s.
	IdleTimeout time.Duration
	// KeepAlive is the interval of PINGs on an otherwise silent session.
	// Default IdleTimeout/3; negative disables keepalives.
	KeepAlive time.Duration
	// MinRTO is the floor of the retransmission timeout. Default 5ms: low
	// enough that a lone loss costs milliseconds, high enough that scheduling
	// hiccups of a loaded host do not trigger spurious retransmissions.
	MinRTO time.Duration
	// MaxRTO caps the backed-off retransmission timeout. Default 1s.
	MaxRTO time.Duration
	// MaxAckDelay is how long a receiver may hold an ACK hoping to piggyback
	// it. Default 1ms.
	MaxAckDelay time.Duration
	// FlushDelay lets small writes wait this long for more data to fill a
	// datagram. Default 0: send as soon as the session's sender runs, which
	// already coalesces every write that arrived while it was busy.
	FlushDelay time.Duration
	// StreamReceiveWindow is the per-stream receive window. Default 4 MiB:
	// a window must cover what is in flight while credit and ACKs come
	// back, and with 1 MiB a loopback stream ran at 0.65× its speed with
	// 4 MiB (docs/BENCHMARKS.md). It is a bound, not an allocation: a
	// stream buffers only what arrived and was not read yet.
	StreamReceiveWindow int
	// SessionReceiveWindow is the per-session receive window over all
	// streams. Default 8 MiB. A session's receive buffers are charged
	// against twice it (Config.MaxMemory bounds the sum over sessions).
	SessionReceiveWindow int
	// StreamSendBuffer is how many bytes a stream holds written but not yet
	// acknowledged before Write blocks (backpressure). Default 4 MiB, for
	// the same reason as StreamReceiveWindow's.
	StreamSendBuffer int
	// SessionSendBuffer caps the bytes written on all streams of a session
	// and not yet acknowledged; writers block beyond it. Default 8 MiB.
	// Together with SessionReceiveWindow it bounds a session's buffer memory.
	SessionSendBuffer int
	// MaxStreams is how many streams the peer may have open at once.
	// Default 1024.
	MaxStreams int
	// MaxSessions bounds the sessions a listener holds. Default 4096.
	MaxSessions int
	// MaxSessionsPerAddr bounds the sessions (in handshake or established)
	// that one source IP address may hold on a listener, so that one client
	// cannot take the slots of others. Default MaxSessions/4 (1024), but at
	// least min(MaxSessions, 64).
	MaxSessionsPerAddr int
	// MaxHandshakesPerAddr bounds the handshakes one source IP address may
	// have in progress on a listener. Default 32.
	MaxHandshakesPerAddr int

	// TLS configures the TLS 1.3 handshake that authenticates the peers and
	// keys packet protection (docs/PROTOCOL.md §5.7). On a listener:
	// Certificates (default: an ephemeral self-signed certificate, whose
	// SHA-256 Listener.CertificateSHA256 returns), and ClientAuth/ClientCAs
	// for mutual TLS. On a client: RootCAs (default: the system roots),
	// ServerName (default: the host dialed), Certificates for mutual TLS, and
	// ClientSessionCache, which keeps session tickets and address tokens so
	// that a reconnect is one round trip (docs/PROTOCOL.md §5.8; a Dialer has
	// a cache of its own when this is nil). A listener sends a ticket unless
	// SessionTicketsDisabled. MinVersion and NextProtos are overridden
	// (TLS 1.3, ALPN "raptor/1").
	TLS *tls.Config
	// PinnedSHA256 (client) authenticates the server by the SHA-256 of its
	// certificate instead of a chain to TLS.RootCAs and its name: the value a
	// listener's CertificateSHA256 returns and `raptor broker` prints.
	PinnedSHA256 []byte
	// InsecureSkipServerAuth (client) accepts any server certificate: packets
	// are still encrypted, but anyone on the path can impersonate the server.
	// Without it, a client needs TLS or PinnedSHA256 (Dial fails with
	// ErrNoServerAuth).
	InsecureSkipServerAuth bool
	// InsecurePlaintext turns packet protection off: after an unauthenticated
	// TLS handshake, packets travel unencrypted and unauthenticated, so
	// anyone on the path can read, forge or end sessions. For benchmarks on
	// a trusted link only. A client with it only reaches a listener with it;
	// such a listener also accepts protected clients.
	InsecurePlaintext bool
	// keyUpdateAfter: packets sealed per 1-RTT key generation (tests lower it).
	keyUpdateAfter uint64
	// ReceiveLoops is how many sockets Listen opens on its address with
	// SO_REUSEPORT (Linux), one receive loop each, to spread sessions over
	// cores. Default 1. Dial and ListenPacket ignore it.
	ReceiveLoops int
	// AcceptBacklog bounds streams waiting in Accept. Default 256.
	AcceptBacklog int
	// CloseTimeout bounds how long a graceful Close waits for written data to
	// be acknowledged. Default 5s.
	CloseTimeout time.Duration
	// Congestion chooses the congestion controller: "cubic" (default; RFC
	// 9438 with proportional rate reduction, RFC 6937, that takes random
	// loss below LossTolerance as no congestion), "newreno" (RFC 9002 §7:
	// every loss halves the window) or "none" (no congestion window; for
	// benchmarks on a dedicated link). NewCongestionControl, if set, takes
	// precedence.
	Congestion string
	// LossTolerance is the packet loss rate up to which "cubic" takes a
	// loss as random rather than as congestion (docs/PROTOCOL.md §8.7):
	// such a loss is resent but does not shrink the window. Default 0.02 ([DefaultLossTolerance]); negative: every loss is
	// a congestion event (RFC 9438 as written). At most 0.25.
	LossTolerance float64
	// NewCongestionControl, if set, returns the congestion controller of
	// each new session, for datagrams of maxDatagramSize bytes (for example
	// [NewNewReno]). Default nil: Congestion chooses.
	NewCongestionControl func(maxDatagramSize int) CongestionControl
	// MaxCongestionWindow caps the congestion window in bytes, whatever the
	// controller says, so that acknowledgements a peer fakes cannot open
	// it without bound (the window also grows only while it is in use).
	// Default SessionSendBuffer: more could never be in flight.
	MaxCongestionWindow int
	// MaxMemory is the hard ceiling, in bytes, of the stream buffers that
	// all sessions of one endpoint (a Listener, or a dialed session) hold:
	// received data waiting to be read or reassembled and written data not
	// yet acknowledged. At the ceiling, stream data that would need more is
	// not acknowledged (the peer sends it again later), Write blocks, and a
	// listener refuses new sessions (CodeRefused); each is counted under
	// CounterLimitMemory. Every session may hold its floor, MaxMemory /
	// (2 × MaxSessions), whatever the others hold; beyond it a session grows
	// only while all hold at most half the ceiling (beyond a quarter, only
	// within its fair share, half the ceiling divided by the sessions), so
	// peers that never acknowledge, in whatever number and order, cannot
	// leave a newcomer nothing. Default 1 GiB.
	MaxMemory int64
	// Logger receives session events. Default: slog.Default() at Warn and above
	// for errors only.
	Logger *slog.Logger
}

// Defaults, see the fields of Config.
const (
	DefaultMaxDatagramSize      = 1452
	DefaultHandshakeTimeout     = 5 * time.Second
	DefaultIdleTimeout          = 30 * time.Second
	DefaultMinRTO               = 5 * time.Millisecond
	DefaultMaxRTO               = time.Second
	DefaultMaxAckDelay          = time.Millisecond
	DefaultStreamReceiveWindow  = 4 << 20
	DefaultSessionReceiveWindow = 8 << 20
	DefaultStreamSendBuffer     = 4 << 20
	DefaultSessionSendBuffer    = 8 << 20
	DefaultMaxStreams           = 1024
	DefaultMaxSessions          = 4096
	DefaultMaxHandshakesPerAddr = 32
	DefaultAcceptBacklog        = 256
	DefaultCloseTimeout         = 5 * time.Second
	DefaultMaxMemory            = 1 << 30
)

// DefaultMaxProbedDatagramSize is Config.MaxProbedDatagramSize's default.
const DefaultMaxProbedDatagramSize = 16384

// populate returns a copy of c with defaults filled in, or an error naming the
// first invalid field.
func (c *Config) populate() (*Config, error) {
	var n Config
	if c != nil {
		n = *c
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	defi := func(d *int, v int) {
		if *d == 0 {
			*d = v
		}
	}
	defi(&n.MaxDatagramSize, DefaultMaxDatagramSize)
	switch {
	case n.MaxProbedDatagramSize == 0:
		n.MaxProbedDatagramSize = max(DefaultMaxProbedDatagramSize, n.MaxDatagramSize)
	case n.MaxProbedDatagramSize < 0:
		n.MaxProbedDatagramSize = n.MaxDatagramSize // discovery off
	}
	def(&n.probeRaiseAfter, probeRaiseInterval)
	def(&n.HandshakeTimeout, DefaultHandshakeTimeout)
	def(&n.IdleTimeout, DefaultIdleTimeout)
	def(&n.KeepAlive, n.IdleTimeout/3)
	def(&n.MinRTO, DefaultMinRTO)
	def(&n.MaxRTO, DefaultMaxRTO)
	def(&n.MaxAckDelay, DefaultMaxAckDelay)
	defi(&n.StreamReceiveWindow, DefaultStreamReceiveWindow)
	defi(&n.SessionReceiveWindow, DefaultSessionReceiveWindow)
	defi(&n.StreamSendBuffer, DefaultStreamSendBuffer)
	defi(&n.SessionSendBuffer, max(DefaultSessionSendBuffer, n.StreamSendBuffer))
	defi(&n.MaxStreams, DefaultMaxStreams)
	defi(&n.MaxSessions, DefaultMaxSessions)
	defi(&n.MaxSessionsPerAddr, max(min(n.MaxSessions, 64), n.MaxSessions/4))
	defi(&n.MaxHandshakesPerAddr, DefaultMaxHandshakesPerAddr)
	defi(&n.AcceptBacklog, DefaultAcceptBacklog)
	defi(&n.ReceiveLoops, 1)
	def(&n.CloseTimeout, DefaultCloseTimeout)
	defi(&n.MaxCongestionWindow, n.SessionSendBuffer)
	if n.MaxMemory == 0 {
		n.MaxMemory = DefaultMaxMemory
	}
	if n.LossTolerance == 0 {
		n.LossTolerance = DefaultLossTolerance
	}
	if n.Congestion == "" {
		n.Congestion = "cubic"
	}
	if n.Logger == nil {
		n.Logger = slog.Default()
	}
	switch {
	case n.MaxDatagramSize < 1200 || n.MaxDatagramSize > 65527:
		return nil, fmt.Errorf("raptor: Config.MaxDatagramSize %d out of range 1200..65527", n.MaxDatagramSize)
	case n.MaxProbedDatagramSize < n.MaxDatagramSize || n.MaxProbedDatagramSize > 65527:
		return nil, fmt.Errorf("raptor: Config.MaxProbedDatagramSize %d out of range MaxDatagramSize (%d)..65527", n.MaxProbedDatagramSize, n.MaxDatagramSize)
	case n.HandshakeTimeout < 0:
		return nil, fmt.Errorf("raptor: Config.HandshakeTimeout %v is negative", n.HandshakeTimeout)
	case n.IdleTimeout < 0:
		return nil, fmt.Errorf("raptor: Config.IdleTimeout %v is negative", n.IdleTimeout)
	case n.MinRTO < 0 || n.MaxRTO < n.MinRTO:
		return nil, fmt.Errorf("raptor: Config.MinRTO %v / MaxRTO %v: need 0 <= MinRTO <= MaxRTO", n.MinRTO, n.MaxRTO)
	case n.MaxAckDelay < 0 || n.MaxAckDelay > time.Second:
		return nil, fmt.Errorf("raptor: Config.MaxAckDelay %v out of range 0..1s", n.MaxAckDelay)
	case n.FlushDelay < 0 || n.FlushDelay > 100*time.Millisecond:
		return nil, fmt.Errorf("raptor: Config.FlushDelay %v out of range 0..100ms", n.FlushDelay)
	case n.StreamReceiveWindow < 1<<10 || n.SessionReceiveWindow < n.StreamReceiveWindow:
		return nil, fmt.Errorf("raptor: Config.StreamReceiveWindow %d / SessionReceiveWindow %d: need 1 KiB <= stream <= session", n.StreamReceiveWindow, n.SessionReceiveWindow)
	case n.StreamSendBuffer < 1<<10 || n.SessionSendBuffer < n.StreamSendBuffer:
		return nil, fmt.Errorf("raptor: Config.StreamSendBuffer %d / SessionSendBuffer %d: need 1 KiB <= stream <= session", n.StreamSendBuffer, n.SessionSendBuffer)
	case n.ReceiveLoops < 1 || n.ReceiveLoops > 256:
		return nil, fmt.Errorf("raptor: Config.ReceiveLoops %d out of range 1..256", n.ReceiveLoops)
	case n.MaxStreams < 1 || n.MaxSessions < 1 || n.AcceptBacklog < 1:
		return nil, fmt.Errorf("raptor: Config.MaxStreams %d, MaxSessions %d, AcceptBacklog %d must be positive", n.MaxStreams, n.MaxSessions, n.AcceptBacklog)
	case n.MaxCongestionWindow < minWindowPackets*n.MaxDatagramSize:
		return nil, fmt.Errorf("raptor: Config.MaxCongestionWindow %d below two datagrams (%d)", n.MaxCongestionWindow, minWindowPackets*n.MaxDatagramSize)
	case n.MaxMemory < int64(n.SessionReceiveWindow):
		return nil, fmt.Errorf("raptor: Config.MaxMemory %d below SessionReceiveWindow %d", n.MaxMemory, n.SessionReceiveWindow)
	case n.MaxSessionsPerAddr < 1 || n.MaxHandshakesPerAddr < 1:
		return nil, fmt.Errorf("raptor: Config.MaxSessionsPerAddr %d, MaxHandshakesPerAddr %d must be positive", n.MaxSessionsPerAddr, n.MaxHandshakesPerAddr)
	case n.PinnedSHA256 != nil && len(n.PinnedSHA256) != sha256.Size:
		return nil, fmt.Errorf("raptor: Config.PinnedSHA256 has %d bytes, want %d (a SHA-256)", len(n.PinnedSHA256), sha256.Size)
	case n.TLS != nil && n.TLS.MaxVersion != 0 && n.TLS.MaxVersion < tls.VersionTLS13:
		return nil, fmt.Errorf("raptor: Config.TLS.MaxVersion 0x%04x is below TLS 1.3, which Raptor requires", n.TLS.MaxVersion)
	case !(n.LossTolerance <= maxLossTolerance):
		return nil, fmt.Errorf("raptor: Config.LossTolerance %v above %v", n.LossTolerance, maxLossTolerance)
	case n.Congestion != "newreno" && n.Congestion != "cubic" && n.Congestion != "none":
		return nil, fmt.Errorf("raptor: Config.Congestion %q unknown (want \"cubic\", \"newreno\" or \"none\")", n.Congestion)
	}
	return &n, nil
}

// newCongestionControl returns the controller of a new session:
// Config.NewCongestionControl's, or the one Config.Congestion names.
func (c *Config) newCongestionControl() CongestionControl {
	if c.NewCongestionControl != nil {
		return c.NewCongestionControl(c.MaxDatagramSize)
	}
	if c.Congestion == "cubic" {
		return newTolerantCubic(c.MaxDatagramSize, c.LossTolerance)
	}
	return newCongestionControl(c.Congestion, c.MaxDatagramSize)
}

// newCongestionControl returns the controller Config.Congestion names, for
// datagrams of at most mss bytes.
func newCongestionControl(name string, mss int) CongestionControl {
	switch name {
	case "none":
		return noCongestion{}
	case "cubic":
		return newCubic(mss)
	}
	return newNewReno(mss)
}
