package plugin

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/raptormq/raptor/dpdk"
)

// ErrDPDKUnavailable is wrapped by the error of a raptor+dpdk:// endpoint in
// a binary built without DPDK support (build with -tags dpdk, cgo, on Linux,
// with libdpdk-dev). It is dpdk.ErrNotBuilt.
var ErrDPDKUnavailable = dpdk.ErrNotBuilt

// ParamError reports a raptor+dpdk:// query key that is unknown, missing or
// has a bad value.
type ParamError struct {
	Endpoint string // the endpoint URL
	Key      string // the query key
	Value    string // the value given, "" when missing
	Reason   string
}

// Error names the endpoint, the key and its value.
func (e *ParamError) Error() string {
	return fmt.Sprintf("plugin: endpoint %s: %s=%q: %s (see docs/DPDK.md, URL form)", e.Endpoint, e.Key, e.Value, e.Reason)
}

// dpdkKeys are the query keys of raptor+dpdk:// (docs/DPDK.md, URL form).
var dpdkKeys = []string{
	"dev", "local", "eal", "subnet", "gw", "gwmac", "arp", "mac", "mtu", "mbufs", "mbufcache",
	"burst", "rxring", "txring", "rxqueue", "arpqueue", "arptimeout", "arpretry", "arpretries",
	"spin", "sleepmin", "sleepmax", "sleepdeep", "deepafter", "busypoll", "txwait", "nocsumoffload",
}

// DPDKConfig maps a raptor+dpdk:// endpoint onto a dpdk.Config
// (docs/DPDK.md, URL form). To listen, host:port is the port's LocalAddr;
// to dial (forDial), host:port is the remote, returned as raddr, and the
// local key gives LocalAddr. Hosts are IPv4 literals. It checks the URL's
// syntax; dpdk.Open checks the rest.
func DPDKConfig(ep Endpoint, forDial bool) (cfg dpdk.Config, raddr netip.AddrPort, err error) {
	name := ep.String()
	if ep.Scheme != SchemeRaptorDPDK {
		return cfg, raddr, &SchemeError{Input: name, Scheme: ep.Scheme}
	}
	q, err := url.ParseQuery(ep.RawQuery)
	if err != nil {
		return cfg, raddr, &AddrError{Input: name, Reason: "malformed query: " + err.Error()}
	}
	bad := func(key, val, reason string) error {
		return &ParamError{Endpoint: name, Key: key, Value: val, Reason: reason}
	}
	host, err := netip.ParseAddrPort(ep.Addr)
	if err != nil || !host.Addr().Unmap().Is4() {
		return cfg, raddr, &AddrError{Input: name, Reason: "raptor+dpdk needs an IPv4 address literal and port"}
	}
	if forDial {
		raddr = host
	} else {
		cfg.LocalAddr = host
	}
	for key, vals := range q {
		if !slices.Contains(dpdkKeys, key) {
			return cfg, raddr, bad(key, vals[0], "unknown key; known: "+strings.Join(dpdkKeys, ", "))
		}
		if len(vals) > 1 && key != "arp" {
			return cfg, raddr, bad(key, vals[1], "given more than once")
		}
		v := vals[0]
		num := func(lo, hi int) (int, error) {
			n, err := strconv.Atoi(v)
			if err != nil || n < lo || n > hi {
				return 0, bad(key, v, fmt.Sprintf("want a whole number from %d to %d", lo, hi))
			}
			return n, nil
		}
		dur := func() (time.Duration, error) {
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 {
				return 0, bad(key, v, "want a positive Go duration such as 200ms")
			}
			return d, nil
		}
		flag := func() (bool, error) {
			switch v {
			case "1", "true":
				return true, nil
			case "0", "false":
				return false, nil
			}
			return false, bad(key, v, "want 1 or 0")
		}
		mac := func(s string) (net.HardwareAddr, error) {
			m, err := net.ParseMAC(s)
			if err != nil || len(m) != 6 {
				return nil, bad(key, s, "want a MAC such as aa:bb:cc:dd:ee:ff")
			}
			return m, nil
		}
		var e error
		switch key {
		case "dev":
			if v == "" {
				e = bad(key, v, "empty device")
			}
			cfg.Device = v
		case "local":
			var ap netip.AddrPort
			if ap, e = netip.ParseAddrPort(v); e != nil || !ap.Addr().Unmap().Is4() {
				e = bad(key, v, "want an IPv4 ip:port")
			}
			if forDial {
				cfg.LocalAddr = ap
			}
		case "eal":
			cfg.EALArgs = strings.Fields(v)
		case "subnet":
			if cfg.Subnet, e = netip.ParsePrefix(v); e != nil {
				e = bad(key, v, "want a CIDR prefix such as 10.0.0.0/24")
			}
		case "gw":
			if cfg.Gateway, e = netip.ParseAddr(v); e != nil {
				e = bad(key, v, "want an IPv4 address")
			}
		case "gwmac":
			cfg.GatewayMAC, e = mac(v)
		case "mac":
			cfg.MAC, e = mac(v)
		case "arp":
			cfg.StaticARP = map[netip.Addr]net.HardwareAddr{}
			for _, a := range vals {
				ipS, macS, ok := strings.Cut(a, "@")
				ip, err := netip.ParseAddr(ipS)
				if !ok || err != nil {
					return cfg, raddr, bad(key, a, "want ip@mac such as 10.0.0.2@aa:bb:cc:dd:ee:ff")
				}
				m, err := mac(macS)
				if err != nil {
					return cfg, raddr, err
				}
				cfg.StaticARP[ip] = m
			}
		case "mtu":
			cfg.MTU, e = num(576, 9000)
		case "mbufs":
			cfg.MempoolSize, e = num(1, 1<<24)
		case "mbufcache":
			cfg.MempoolCache, e = num(1, 512)
		case "burst":
			cfg.Burst, e = num(1, dpdk.MaxBurst)
		case "rxring":
			cfg.RxRing, e = num(1, 1<<16)
		case "txring":
			cfg.TxRing, e = num(1, 1<<16)
		case "rxqueue":
			cfg.RxQueue, e = num(1, 1<<24)
		case "arpqueue":
			cfg.ARPQueue, e = num(1, 1<<24)
		case "arpretries":
			cfg.ARPRetries, e = num(1, 1000)
		case "arptimeout":
			cfg.ARPTimeout, e = dur()
		case "arpretry":
			cfg.ARPRetry, e = dur()
		case "spin":
			cfg.IdleSpin, e = dur()
		case "sleepmin":
			cfg.IdleSleepMin, e = dur()
		case "sleepmax":
			cfg.IdleSleepMax, e = dur()
		case "sleepdeep":
			cfg.IdleSleepDeep, e = dur()
		case "deepafter":
			cfg.IdleDeepAfter, e = dur()
		case "txwait":
			cfg.TxWait, e = dur()
		case "busypoll":
			var on bool
			if on, e = flag(); on {
				cfg.IdleSleepMax = -1
			}
		case "nocsumoffload":
			cfg.NoChecksumOffload, e = flag()
		}
		if e != nil {
			return cfg, raddr, e
		}
	}
	if cfg.Device == "" {
		return cfg, raddr, bad("dev", "", "required: the DPDK device, such as net_af_packet0,iface=veth0")
	}
	if forDial && !cfg.LocalAddr.IsValid() {
		return cfg, raddr, bad("local", "", "required to dial: this side's IPv4 ip:port on the DPDK port")
	}
	return cfg, raddr, nil
}

// dpdkBuilt reports whether this binary has DPDK support: in a build
// without it dpdk.Open fails with ErrNotBuilt before looking at its config.
func dpdkBuilt() error {
	_, err := dpdk.Open(dpdk.Config{})
	if errors.Is(err, dpdk.ErrNotBuilt) {
		return err
	}
	return nil
}

// openDPDK opens the DPDK port for ep.
func openDPDK(ep Endpoint, forDial bool, o *options) (*dpdk.Port, netip.AddrPort, error) {
	if err := dpdkBuilt(); err != nil {
		return nil, netip.AddrPort{}, fmt.Errorf("plugin: endpoint %s: scheme raptor+dpdk: %w", ep, err)
	}
	cfg, raddr, err := DPDKConfig(ep, forDial)
	if err != nil {
		return nil, raddr, err
	}
	cfg.Logger = o.logger
	p, err := dpdk.Open(cfg)
	if err != nil {
		return nil, raddr, fmt.Errorf("plugin: endpoint %s: %w", ep, err)
	}
	return p, raddr, nil
}
