package dpdk

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// QueryError reports a key of a raptor+dpdk:// URL query (docs/DPDK.md,
// URL form) that is unknown, repeated, missing or has a bad value.
type QueryError struct {
	Key    string // the query key
	Value  string // the value given, "" when missing
	Reason string // what is wrong, and what is wanted
}

// Error names the key, its value and what is wrong.
func (e *QueryError) Error() string {
	return fmt.Sprintf("dpdk: query %s=%q: %s", e.Key, e.Value, e.Reason)
}

// queryKey is one key of the URL query: the field it sets and how it reads
// the value. set returns the reason a value is refused.
type queryKey struct {
	name   string
	repeat bool // may be given more than once
	set    func(c *Config, v string) error
}

// queryKeys lists the keys in the order of docs/DPDK.md (URL form); error
// messages name them in this order.
var queryKeys = []queryKey{
	{name: "dev", set: func(c *Config, v string) error {
		if v == "" {
			return errors.New("empty device")
		}
		c.Device = v
		return nil
	}},
	{name: "local", set: func(c *Config, v string) error {
		ap, err := netip.ParseAddrPort(v)
		if err != nil || !ap.Addr().Unmap().Is4() {
			return errors.New("want an IPv4 ip:port")
		}
		c.LocalAddr = ap
		return nil
	}},
	{name: "eal", set: func(c *Config, v string) error { c.EALArgs = strings.Fields(v); return nil }},
	{name: "subnet", set: func(c *Config, v string) (err error) {
		if c.Subnet, err = netip.ParsePrefix(v); err != nil {
			return errors.New("want a CIDR prefix such as 10.0.0.0/24")
		}
		return nil
	}},
	{name: "gw", set: func(c *Config, v string) (err error) {
		if c.Gateway, err = netip.ParseAddr(v); err != nil {
			return errors.New("want an IPv4 address")
		}
		return nil
	}},
	{name: "gwmac", set: macKey(func(c *Config) *net.HardwareAddr { return &c.GatewayMAC })},
	{name: "arp", repeat: true, set: func(c *Config, v string) error {
		ipS, macS, ok := strings.Cut(v, "@")
		ip, err := netip.ParseAddr(ipS)
		m, merr := net.ParseMAC(macS)
		if !ok || err != nil || merr != nil || len(m) != 6 {
			return errors.New("want ip@mac such as 10.0.0.2@aa:bb:cc:dd:ee:ff")
		}
		if c.StaticARP == nil {
			c.StaticARP = map[netip.Addr]net.HardwareAddr{}
		}
		c.StaticARP[ip] = m
		return nil
	}},
	{name: "mac", set: macKey(func(c *Config) *net.HardwareAddr { return &c.MAC })},
	{name: "mtu", set: intKey(576, 9000, func(c *Config) *int { return &c.MTU })},
	{name: "mbufs", set: intKey(1, 1<<24, func(c *Config) *int { return &c.MempoolSize })},
	{name: "mbufcache", set: intKey(1, 512, func(c *Config) *int { return &c.MempoolCache })},
	{name: "burst", set: intKey(1, MaxBurst, func(c *Config) *int { return &c.Burst })},
	{name: "rxring", set: intKey(1, 1<<16, func(c *Config) *int { return &c.RxRing })},
	{name: "txring", set: intKey(1, 1<<16, func(c *Config) *int { return &c.TxRing })},
	{name: "rxqueue", set: intKey(1, 1<<24, func(c *Config) *int { return &c.RxQueue })},
	{name: "arpqueue", set: intKey(1, 1<<24, func(c *Config) *int { return &c.ARPQueue })},
	{name: "arptimeout", set: durKey(func(c *Config) *time.Duration { return &c.ARPTimeout })},
	{name: "arpretry", set: durKey(func(c *Config) *time.Duration { return &c.ARPRetry })},
	{name: "arpretries", set: intKey(1, 1000, func(c *Config) *int { return &c.ARPRetries })},
	{name: "spin", set: durKey(func(c *Config) *time.Duration { return &c.IdleSpin })},
	{name: "sleepmin", set: durKey(func(c *Config) *time.Duration { return &c.IdleSleepMin })},
	{name: "sleepmax", set: durKey(func(c *Config) *time.Duration { return &c.IdleSleepMax })},
	{name: "sleepdeep", set: durKey(func(c *Config) *time.Duration { return &c.IdleSleepDeep })},
	{name: "deepafter", set: durKey(func(c *Config) *time.Duration { return &c.IdleDeepAfter })},
	{name: "busypoll", set: func(c *Config, v string) error {
		on, err := parseFlag(v)
		if on {
			c.IdleSleepMax = -1
		}
		return err
	}},
	{name: "txwait", set: durKey(func(c *Config) *time.Duration { return &c.TxWait })},
	{name: "nocsumoffload", set: func(c *Config, v string) (err error) {
		c.NoChecksumOffload, err = parseFlag(v)
		return err
	}},
}

func intKey(lo, hi int, field func(*Config) *int) func(*Config, string) error {
	return func(c *Config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < lo || n > hi {
			return fmt.Errorf("want a whole number from %d to %d", lo, hi)
		}
		*field(c) = n
		return nil
	}
}

func durKey(field func(*Config) *time.Duration) func(*Config, string) error {
	return func(c *Config, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return errors.New("want a positive Go duration such as 200ms")
		}
		*field(c) = d
		return nil
	}
}

func macKey(field func(*Config) *net.HardwareAddr) func(*Config, string) error {
	return func(c *Config, v string) error {
		m, err := net.ParseMAC(v)
		if err != nil || len(m) != 6 {
			return errors.New("want a MAC such as aa:bb:cc:dd:ee:ff")
		}
		*field(c) = m
		return nil
	}
}

func parseFlag(v string) (bool, error) {
	switch v {
	case "1", "true":
		return true, nil
	case "0", "false":
		return false, nil
	}
	return false, errors.New("want 1 or 0")
}

// QueryKeys returns the keys ParseQuery knows, in the order of docs/DPDK.md.
func QueryKeys() []string {
	names := make([]string, len(queryKeys))
	for i, k := range queryKeys {
		names[i] = k.name
	}
	return names
}

// ParseQuery maps the query of a raptor+dpdk:// URL (without "?") onto a
// Config, one key a field (docs/DPDK.md, URL form). The key dev is required;
// local sets LocalAddr. It checks each value's form and range; Open checks
// the Config as a whole. A bad key is a *QueryError.
func ParseQuery(rawQuery string) (Config, error) {
	var cfg Config
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return cfg, &QueryError{Reason: "malformed query: " + err.Error()}
	}
	for _, k := range queryKeys { // in table order: errors do not depend on map order
		vals, ok := q[k.name]
		if !ok {
			continue
		}
		delete(q, k.name)
		if len(vals) > 1 && !k.repeat {
			return cfg, &QueryError{Key: k.name, Value: vals[1], Reason: "given more than once"}
		}
		for _, v := range vals {
			if err := k.set(&cfg, v); err != nil {
				return cfg, &QueryError{Key: k.name, Value: v, Reason: err.Error()}
			}
		}
	}
	if len(q) > 0 {
		key := slices.Min(slices.Collect(maps.Keys(q)))
		return cfg, &QueryError{Key: key, Value: q[key][0], Reason: "unknown key; known: " + strings.Join(QueryKeys(), ", ")}
	}
	if cfg.Device == "" {
		return cfg, &QueryError{Key: "dev", Reason: "required: the DPDK device, such as net_af_packet0,iface=veth0"}
	}
	return cfg, nil
}
