package dpdk

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"time"
)

// Config configures a Port. The zero value of every field except Device and
// LocalAddr means the documented default. ParseQuery maps the raptor+dpdk://
// URL query keys onto these fields (docs/DPDK.md, URL form).
type Config struct {
	// EALArgs are the DPDK EAL arguments (without argv[0]) used when the first
	// Port of the process initialises the EAL; later Ports reuse that EAL and
	// must leave EALArgs nil or pass the same arguments. Default: DefaultEALArgs(),
	// the NIC-less sandbox set (--no-huge -m 256 --no-pci --no-shconf
	// --no-telemetry, one lcore allowed on every CPU of the process). For a real
	// NIC pass e.g. "-l", "2", "-a", "0000:3b:00.0", "--socket-mem", "1024".
	EALArgs []string
	// Device names the DPDK port: a virtual device string that is probed at
	// Open ("net_af_packet0,iface=veth0", "net_tap0,iface=rtap0", "net_ring0")
	// or the name of a port the EAL already probed (a PCI address such as
	// "0000:3b:00.0" allowed with -a). Required (except for OpenRingPair).
	Device string
	// LocalAddr is the IPv4 address and UDP port this port answers on (and
	// answers ARP for). Required; IPv6 is not supported.
	LocalAddr netip.AddrPort
	// Subnet is the on-link IPv4 prefix. Destinations outside it are sent to
	// Gateway. Default: every destination is on-link.
	Subnet netip.Prefix
	// Gateway is the next hop for destinations outside Subnet, resolved by
	// ARP unless GatewayMAC is set.
	Gateway netip.Addr
	// GatewayMAC, when set, is the static next-hop MAC for destinations
	// outside Subnet (or for every destination when Subnet is unset): no ARP
	// is sent for them.
	GatewayMAC net.HardwareAddr
	// StaticARP holds permanent IPv4 → MAC entries.
	StaticARP map[netip.Addr]net.HardwareAddr
	// MAC overrides the port's own MAC address. Default: the port's.
	MAC net.HardwareAddr
	// MTU is the IP MTU; the largest datagram is MTU-28 bytes. Default 1500.
	MTU int
	// MempoolSize is the number of mbufs in the port's pool. Default 8191.
	MempoolSize int
	// MempoolCache is the per-lcore mbuf cache size. Default 256.
	MempoolCache int
	// Burst is the rx/tx burst size. Default 32, at most 512.
	Burst int
	// RxRing and TxRing are the device descriptor ring sizes. Default 1024.
	RxRing, TxRing int
	// RxQueue bounds the datagrams received but not yet read by ReadBatch
	// (held in their mbufs); beyond it datagrams are dropped and counted.
	// Default 4096.
	RxQueue int
	// ARPQueue bounds the datagrams held while their next hop's MAC is being
	// resolved; beyond it they are dropped and counted. Default 256.
	ARPQueue int
	// ARPTimeout is how long a learnt ARP entry is used before it is
	// refreshed. Default 60 s.
	ARPTimeout time.Duration
	// ARPRetry is the interval between ARP requests for an unresolved address;
	// after ARPRetries requests its queued datagrams are dropped. Defaults
	// 200 ms and 5.
	ARPRetry   time.Duration
	ARPRetries int
	// IdleSpin is how long the poll loop keeps polling after the last
	// received frame before it starts sleeping. Default 20 µs.
	IdleSpin time.Duration
	// IdleSleepMin and IdleSleepMax bound the idle sleep, which doubles from
	// min to max while nothing arrives. Defaults 50 µs and 200 µs. A negative
	// IdleSleepMax busy-polls forever (a dedicated core in production).
	IdleSleepMin, IdleSleepMax time.Duration
	// IdleSleepDeep is the longer sleep bound used once nothing was received
	// or sent for IdleDeepAfter, so that an idle port costs little CPU (each
	// wake-up of a Go thread costs tens of µs of CPU). Defaults 1 ms and 10 ms.
	IdleSleepDeep, IdleDeepAfter time.Duration
	// TxWait is how long WriteBatch retries while the device transmit queue
	// is full before it drops the rest and returns an error. Default 200 µs.
	TxWait time.Duration
	// NoChecksumOffload forces software IPv4/UDP checksums even when the
	// device offers offload.
	NoChecksumOffload bool
	// Logger receives port lifecycle events. Default slog.Default().
	Logger *slog.Logger
}

// Defaults of Config fields.
const (
	DefaultMTU           = 1500
	DefaultMempoolSize   = 8191
	DefaultMempoolCache  = 256
	DefaultBurst         = 32
	MaxBurst             = 512
	DefaultRing          = 1024
	DefaultRxQueue       = 4096
	DefaultARPQueue      = 256
	DefaultARPTimeout    = 60 * time.Second
	DefaultARPRetry      = 200 * time.Millisecond
	DefaultARPRetries    = 5
	DefaultIdleSpin      = 20 * time.Microsecond
	DefaultIdleSleepMin  = 50 * time.Microsecond
	DefaultIdleSleepMax  = 200 * time.Microsecond
	DefaultIdleSleepDeep = time.Millisecond
	DefaultIdleDeepAfter = 10 * time.Millisecond
	DefaultTxWait        = 200 * time.Microsecond
)

// ErrNotBuilt is returned by Open and OpenRingPair in a binary built without
// the dpdk build tag (or without cgo, or not on Linux).
var ErrNotBuilt = errors.New("dpdk: built without DPDK support (build with -tags dpdk, cgo enabled, on linux, with libdpdk-dev installed)")

// ErrIPv6 is wrapped by the errors for IPv6 local or destination addresses.
var ErrIPv6 = errors.New("IPv6 is not supported by the DPDK packet path")

// ConfigError reports an invalid Config field and its value.
type ConfigError struct {
	Field string
	Value any
	Err   error
}

// Error describes the failure, naming the offending value.
func (e *ConfigError) Error() string {
	return fmt.Sprintf("dpdk: invalid Config.%s %v: %v", e.Field, e.Value, e.Err)
}

// Unwrap returns the cause.
func (e *ConfigError) Unwrap() error { return e.Err }

// AddrError reports a destination address WriteBatch cannot send to.
type AddrError struct {
	Addr netip.AddrPort
	Err  error
}

// Error describes the failure, naming the offending value.
func (e *AddrError) Error() string {
	return fmt.Sprintf("dpdk: cannot send to %v: %v", e.Addr, e.Err)
}

// Unwrap returns the cause (ErrIPv6 for IPv6 destinations).
func (e *AddrError) Unwrap() error { return e.Err }

// SizeError reports a datagram larger than the port's MTU allows.
type SizeError struct {
	Size, Max int
}

// Error describes the failure, naming the offending value.
func (e *SizeError) Error() string {
	return fmt.Sprintf("dpdk: datagram of %d bytes exceeds the maximum of %d (MTU-28)", e.Size, e.Max)
}

// DeviceError reports a failing DPDK call, naming the device, the operation
// and DPDK's error code (a negative errno).
type DeviceError struct {
	Device string
	Op     string
	Code   int
}

// Error describes the failure, naming the offending value.
func (e *DeviceError) Error() string {
	return fmt.Sprintf("dpdk: device %q: %s failed: %s (%d)", e.Device, e.Op, errnoName(e.Code), e.Code)
}

// TxDropError reports datagrams of a WriteBatch that were dropped because the
// device queue stayed full for TxWait or the mbuf pool was exhausted.
type TxDropError struct {
	Dropped int
	Reason  string
}

// Error describes the failure, naming the offending value.
func (e *TxDropError) Error() string {
	return fmt.Sprintf("dpdk: %d datagrams dropped on transmit: %s", e.Dropped, e.Reason)
}

// Temporary reports true: the condition is transient back-pressure.
func (e *TxDropError) Temporary() bool { return true }

func errnoName(code int) string {
	if code < 0 {
		code = -code
	}
	switch code {
	case 1:
		return "EPERM"
	case 2:
		return "ENOENT"
	case 12:
		return "ENOMEM"
	case 16:
		return "EBUSY"
	case 17:
		return "EEXIST"
	case 19:
		return "ENODEV"
	case 22:
		return "EINVAL"
	case 28:
		return "ENOSPC"
	case 95:
		return "ENOTSUP"
	case 114:
		return "EALREADY"
	default:
		return fmt.Sprintf("errno %d", code)
	}
}

// resolved is a Config with defaults applied and fields validated.
type resolved struct {
	Config
	mac        macAddr // override, valid if hasMAC
	hasMAC     bool
	gwMAC      macAddr
	hasGWMAC   bool
	static     map[netip.Addr]macAddr
	maxPayload int
}

func toMAC(field string, hw net.HardwareAddr) (macAddr, error) {
	var m macAddr
	if len(hw) != 6 {
		return m, &ConfigError{Field: field, Value: hw, Err: errors.New("not a 6-byte Ethernet address")}
	}
	copy(m[:], hw)
	return m, nil
}

// resolve validates c and applies defaults. needDevice is false for
// OpenRingPair, which names its own devices.
func (c Config) resolve(needDevice bool) (*resolved, error) {
	r := &resolved{Config: c}
	if needDevice && c.Device == "" {
		return nil, &ConfigError{Field: "Device", Value: `""`, Err: errors.New("required")}
	}
	if !c.LocalAddr.IsValid() || c.LocalAddr.Port() == 0 {
		return nil, &ConfigError{Field: "LocalAddr", Value: c.LocalAddr, Err: errors.New("an IPv4 address and a non-zero UDP port are required")}
	}
	if !c.LocalAddr.Addr().Unmap().Is4() {
		return nil, &ConfigError{Field: "LocalAddr", Value: c.LocalAddr, Err: ErrIPv6}
	}
	r.LocalAddr = netip.AddrPortFrom(c.LocalAddr.Addr().Unmap(), c.LocalAddr.Port())
	if c.Subnet.IsValid() && !c.Subnet.Addr().Is4() {
		return nil, &ConfigError{Field: "Subnet", Value: c.Subnet, Err: ErrIPv6}
	}
	if c.Gateway.IsValid() && !c.Gateway.Unmap().Is4() {
		return nil, &ConfigError{Field: "Gateway", Value: c.Gateway, Err: ErrIPv6}
	}
	r.Gateway = c.Gateway.Unmap()
	if c.Gateway.IsValid() && !c.Subnet.IsValid() {
		return nil, &ConfigError{Field: "Gateway", Value: c.Gateway, Err: errors.New("needs Subnet to tell on-link destinations from routed ones")}
	}
	var err error
	if c.MAC != nil {
		if r.mac, err = toMAC("MAC", c.MAC); err != nil {
			return nil, err
		}
		r.hasMAC = true
	}
	if c.GatewayMAC != nil {
		if r.gwMAC, err = toMAC("GatewayMAC", c.GatewayMAC); err != nil {
			return nil, err
		}
		r.hasGWMAC = true
	}
	r.static = make(map[netip.Addr]macAddr, len(c.StaticARP))
	for ip, hw := range c.StaticARP {
		if !ip.Unmap().Is4() {
			return nil, &ConfigError{Field: "StaticARP", Value: ip, Err: ErrIPv6}
		}
		m, err := toMAC("StaticARP", hw)
		if err != nil {
			return nil, err
		}
		r.static[ip.Unmap()] = m
	}
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	defD := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	def(&r.MTU, DefaultMTU)
	def(&r.MempoolSize, DefaultMempoolSize)
	def(&r.MempoolCache, DefaultMempoolCache)
	def(&r.Burst, DefaultBurst)
	def(&r.RxRing, DefaultRing)
	def(&r.TxRing, DefaultRing)
	def(&r.RxQueue, DefaultRxQueue)
	def(&r.ARPQueue, DefaultARPQueue)
	def(&r.ARPRetries, DefaultARPRetries)
	defD(&r.ARPTimeout, DefaultARPTimeout)
	defD(&r.ARPRetry, DefaultARPRetry)
	defD(&r.IdleSpin, DefaultIdleSpin)
	defD(&r.IdleSleepMin, DefaultIdleSleepMin)
	defD(&r.IdleSleepMax, DefaultIdleSleepMax)
	defD(&r.IdleSleepDeep, DefaultIdleSleepDeep)
	defD(&r.IdleDeepAfter, DefaultIdleDeepAfter)
	defD(&r.TxWait, DefaultTxWait)
	if r.Logger == nil {
		r.Logger = slog.Default()
	}
	switch {
	case r.MTU < 576 || r.MTU > 9000:
		return nil, &ConfigError{Field: "MTU", Value: r.MTU, Err: errors.New("must be in [576, 9000]")}
	case r.Burst < 1 || r.Burst > MaxBurst:
		return nil, &ConfigError{Field: "Burst", Value: r.Burst, Err: fmt.Errorf("must be in [1, %d]", MaxBurst)}
	case r.MempoolSize < 2*r.Burst+r.RxRing+r.TxRing:
		return nil, &ConfigError{Field: "MempoolSize", Value: r.MempoolSize, Err: fmt.Errorf("must be at least RxRing+TxRing+2*Burst = %d", 2*r.Burst+r.RxRing+r.TxRing)}
	case r.MempoolCache < 0 || r.MempoolCache > 512:
		return nil, &ConfigError{Field: "MempoolCache", Value: r.MempoolCache, Err: errors.New("must be in [0, 512]")}
	case r.RxRing < 1 || r.RxRing > 65535 || r.TxRing < 1 || r.TxRing > 65535:
		return nil, &ConfigError{Field: "RxRing/TxRing", Value: [2]int{r.RxRing, r.TxRing}, Err: errors.New("must be in [1, 65535]")}
	case r.RxQueue < 1:
		return nil, &ConfigError{Field: "RxQueue", Value: r.RxQueue, Err: errors.New("must be positive")}
	case r.ARPQueue < 1:
		return nil, &ConfigError{Field: "ARPQueue", Value: r.ARPQueue, Err: errors.New("must be positive")}
	case r.ARPRetries < 1:
		return nil, &ConfigError{Field: "ARPRetries", Value: r.ARPRetries, Err: errors.New("must be positive")}
	case r.IdleSleepMax >= 0 && r.IdleSleepMin > r.IdleSleepMax:
		return nil, &ConfigError{Field: "IdleSleepMin", Value: r.IdleSleepMin, Err: fmt.Errorf("exceeds IdleSleepMax %v", r.IdleSleepMax)}
	}
	r.maxPayload = r.MTU - ipv4HdrLen - udpHdrLen
	return r, nil
}

// Stats are a Port's counters. Device counters come from rte_eth_stats_get;
// the rest are counted by the Port.
type Stats struct {
	// Device counters (all frames, including ARP and dropped ones).
	RxPackets, RxBytes uint64 // frames/bytes received by the device
	TxPackets, TxBytes uint64 // frames/bytes sent by the device
	RxMissed           uint64 // frames the device dropped: rx ring full (imissed)
	RxErrors, TxErrors uint64 // device error counters (ierrors, oerrors)
	RxNoMbuf           uint64 // device rx mbuf allocation failures (rx_nombuf)

	// Datagram path.
	RxDatagrams, RxPayloadBytes uint64 // delivered through ReadBatch
	TxDatagrams, TxPayloadBytes uint64 // handed to the device by WriteBatch or after ARP
	MbufAllocFailures           uint64 // transmit-side rte_pktmbuf_alloc_bulk failures
	PollSleeps                  uint64 // times the idle poll loop slept

	ARP   ARPStats
	Drops DropStats
}

// ARPStats count ARP (RFC 826) traffic and resolution.
type ARPStats struct {
	RequestsSent, RepliesSent         uint64
	RequestsReceived, RepliesReceived uint64
	Resolved                          uint64 // entries learnt or refreshed
	Timeouts                          uint64 // resolutions abandoned after ARPRetries
	Entries                           uint64 // current table size (gauge)
}

// DropStats count received frames not delivered and datagrams not sent, by reason.
type DropStats struct {
	Truncated      uint64 // frame shorter than its headers
	NotForUs       uint64 // other MAC, IP address or UDP port
	IPv6           uint64 // IPv6 frames (unsupported)
	EtherType      uint64 // other EtherTypes (VLAN, LLDP, ...)
	BadIPHeader    uint64
	BadIPChecksum  uint64
	Fragment       uint64 // IPv4 fragments
	NotUDP         uint64 // IPv4 protocols other than UDP
	BadUDPChecksum uint64
	BadUDPLength   uint64
	BadARP         uint64
	MultiSegment   uint64 // chained mbufs
	RxQueueFull    uint64 // ReadBatch too slow: RxQueue full
	ARPQueueFull   uint64 // ARPQueue full while resolving
	ARPUnresolved  uint64 // queued datagrams dropped after ARP timed out
	TxQueueFull    uint64 // device tx queue full for TxWait
	NoMbuf         uint64 // mbuf pool exhausted on transmit
}

func dropStatsFrom(c *[numDropReasons]uint64) DropStats {
	return DropStats{
		Truncated: c[dropTruncated], NotForUs: c[dropNotForUs], IPv6: c[dropIPv6],
		EtherType: c[dropEtherType], BadIPHeader: c[dropBadIPHeader], BadIPChecksum: c[dropBadIPChecksum],
		Fragment: c[dropFragment], NotUDP: c[dropNotUDP], BadUDPChecksum: c[dropBadUDPChecksum],
		BadUDPLength: c[dropBadUDPLength], BadARP: c[dropBadARP], MultiSegment: c[dropMultiSegment],
		RxQueueFull: c[dropRxQueueFull], ARPQueueFull: c[dropARPQueueFull], ARPUnresolved: c[dropARPUnresolved],
		TxQueueFull: c[dropTxQueueFull], NoMbuf: c[dropNoMbuf],
	}
}
