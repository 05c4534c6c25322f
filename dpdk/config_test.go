package dpdk

import (
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
)

func TestConfigValidation(t *testing.T) {
	good := Config{Device: "net_ring0", LocalAddr: netip.MustParseAddrPort("10.0.0.1:7000")}
	r, err := good.resolve(true)
	if err != nil {
		t.Fatalf("valid config: %v", err)
	}
	if r.MTU != DefaultMTU || r.Burst != DefaultBurst || r.maxPayload != 1472 || r.IdleSleepMax != DefaultIdleSleepMax {
		t.Fatalf("defaults not applied: %+v", r.Config)
	}
	bad := []struct {
		field string
		mod   func(c *Config)
	}{
		{"Device", func(c *Config) { c.Device = "" }},
		{"LocalAddr", func(c *Config) { c.LocalAddr = netip.AddrPort{} }},
		{"LocalAddr", func(c *Config) { c.LocalAddr = netip.MustParseAddrPort("[::1]:7000") }},
		{"LocalAddr", func(c *Config) { c.LocalAddr = netip.MustParseAddrPort("10.0.0.1:0") }},
		{"MTU", func(c *Config) { c.MTU = 100 }},
		{"Burst", func(c *Config) { c.Burst = 1000 }},
		{"MAC", func(c *Config) { c.MAC = net.HardwareAddr{1, 2, 3} }},
		{"Gateway", func(c *Config) { c.Gateway = netip.MustParseAddr("10.0.0.254") }},
		{"MempoolSize", func(c *Config) { c.MempoolSize = 100 }},
		{"StaticARP", func(c *Config) {
			c.StaticARP = map[netip.Addr]net.HardwareAddr{netip.MustParseAddr("::1"): {1, 2, 3, 4, 5, 6}}
		}},
	}
	for _, b := range bad {
		c := good
		b.mod(&c)
		_, err := c.resolve(true)
		var ce *ConfigError
		if !errors.As(err, &ce) || ce.Field != b.field || !strings.Contains(err.Error(), b.field) {
			t.Errorf("%s: got %v, want a *ConfigError naming %s", b.field, err, b.field)
		}
	}
	c := good
	c.LocalAddr = netip.MustParseAddrPort("[::1]:7000")
	if _, err := c.resolve(true); !errors.Is(err, ErrIPv6) {
		t.Errorf("IPv6 local address: %v, want ErrIPv6", err)
	}
}
