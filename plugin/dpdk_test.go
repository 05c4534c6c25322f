package plugin

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/raptormq/raptor/dpdk"
)

func TestDPDKConfigFromURL(t *testing.T) {
	ep, err := ParseEndpoint("raptor+dpdk://10.0.0.1:4000?dev=net_af_packet0,iface=veth0&subnet=10.0.0.0/24&gw=10.0.0.254&eal=-l+2+--no-pci&arp=10.0.0.2@aa:bb:cc:dd:ee:ff&mtu=9000&busypoll=1&arpretry=50ms")
	if err != nil {
		t.Fatal(err)
	}
	cfg, _, err := DPDKConfig(ep, false)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Device != "net_af_packet0,iface=veth0" || cfg.LocalAddr != netip.MustParseAddrPort("10.0.0.1:4000") ||
		cfg.Subnet.String() != "10.0.0.0/24" || cfg.Gateway.String() != "10.0.0.254" ||
		strings.Join(cfg.EALArgs, " ") != "-l 2 --no-pci" || cfg.MTU != 9000 || cfg.IdleSleepMax != -1 ||
		cfg.ARPRetry != 50*time.Millisecond || cfg.StaticARP[netip.MustParseAddr("10.0.0.2")].String() != "aa:bb:cc:dd:ee:ff" {
		t.Fatalf("config %+v", cfg)
	}
	ep, _ = ParseEndpoint("raptor+dpdk://10.0.0.2:4000?local=10.0.0.1:4001&dev=0000:3b:00.0")
	cfg, raddr, err := DPDKConfig(ep, true)
	if err != nil || raddr.String() != "10.0.0.2:4000" || cfg.LocalAddr.String() != "10.0.0.1:4001" {
		t.Fatalf("dial config %+v %v %v", cfg, raddr, err)
	}
	for _, tc := range []struct {
		url     string
		dial    bool
		errPart string
	}{
		{"raptor+dpdk://10.0.0.1:4000", false, `dev="": required`},
		{"raptor+dpdk://10.0.0.2:4000?dev=x", true, `local="": required to dial`},
		{"raptor+dpdk://10.0.0.1:4000?dev=x&speed=fast", false, `speed="fast": unknown key; known: dev, local`},
		{"raptor+dpdk://10.0.0.1:4000?dev=x&mtu=100", false, "from 576 to 9000"},
		{"raptor+dpdk://10.0.0.1:4000?dev=x&txwait=soon", false, "Go duration"},
		{"raptor+dpdk://10.0.0.1:4000?dev=x&mac=zz", false, "want a MAC"},
		{"raptor+dpdk://10.0.0.1:4000?dev=x&dev=y", false, "more than once"},
		{"raptor+dpdk://host:4000?dev=x", false, "IPv4 address literal"},
		{"raptor+dpdk://[::1]:4000?dev=x", false, "IPv4 address literal"},
	} {
		ep, err := ParseEndpoint(tc.url)
		if err == nil {
			_, _, err = DPDKConfig(ep, tc.dial)
		}
		if err == nil || !strings.Contains(err.Error(), tc.errPart) {
			t.Errorf("%s: %v; want %q", tc.url, err, tc.errPart)
		}
	}
	if _, err := ParseEndpoint("raptor://h:1?dev=x"); err == nil || !strings.Contains(err.Error(), "only raptor+dpdk:// takes a query") {
		t.Errorf("query on raptor://: %v", err)
	}
}

func TestDPDKSchemeNeedsBuildTag(t *testing.T) {
	if dpdk.Built {
		t.Skip("built with DPDK support")
	}
	tr := New()
	defer tr.Close()
	_, err := tr.Dial(t.Context(), "raptor+dpdk://10.0.0.2:4000?local=10.0.0.1:4001&dev=net_ring0")
	if !errors.Is(err, ErrDPDKUnavailable) || !strings.Contains(err.Error(), "-tags dpdk") {
		t.Fatalf("raptor+dpdk dial: %v", err)
	}
	_, err = tr.Listen("raptor+dpdk://10.0.0.1:4000?dev=net_ring0")
	if !errors.Is(err, ErrDPDKUnavailable) {
		t.Fatalf("raptor+dpdk listen: %v", err)
	}
}

func FuzzDPDKConfig(f *testing.F) {
	for _, s := range []string{
		"raptor+dpdk://10.0.0.1:4000?dev=net_af_packet0,iface=veth0&subnet=10.0.0.0/24&gw=10.0.0.254",
		"raptor+dpdk://10.0.0.2:4000?local=10.0.0.1:4001&dev=0000:3b:00.0&eal=-l+2&busypoll=1",
		"raptor+dpdk://10.0.0.1:1?dev=x&arp=1.2.3.4@aa:bb:cc:dd:ee:ff&arp=bad&mtu=1500",
	} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, s string, dial bool) {
		ep, err := ParseEndpoint(s)
		if err != nil {
			return
		}
		cfg, raddr, err := DPDKConfig(ep, dial)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		if cfg.Device == "" || (dial && (!cfg.LocalAddr.IsValid() || !raddr.IsValid())) || (!dial && !cfg.LocalAddr.IsValid()) {
			t.Fatalf("%q accepted with an incomplete config %+v", s, cfg)
		}
	})
}
