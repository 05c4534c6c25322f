package dpdk

import (
	"errors"
	"net/netip"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseQuery(t *testing.T) {
	cfg, err := ParseQuery("dev=net_af_packet0,iface=veth0&local=10.0.0.1:4001&subnet=10.0.0.0/24&gw=10.0.0.254&gwmac=02:00:00:00:00:01" +
		"&eal=-l+2+--no-pci&arp=10.0.0.2@aa:bb:cc:dd:ee:ff&arp=10.0.0.3@aa:bb:cc:dd:ee:00&mac=02:00:00:00:00:02&mtu=9000&mbufs=4096" +
		"&mbufcache=128&burst=64&rxring=512&txring=256&rxqueue=100&arpqueue=10&arptimeout=1m&arpretry=50ms&arpretries=3" +
		"&spin=1us&sleepmin=2us&sleepmax=3us&sleepdeep=4ms&deepafter=5ms&txwait=6us&nocsumoffload=1")
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		Device: "net_af_packet0,iface=veth0", LocalAddr: netip.MustParseAddrPort("10.0.0.1:4001"),
		Subnet: netip.MustParsePrefix("10.0.0.0/24"), Gateway: netip.MustParseAddr("10.0.0.254"),
		EALArgs: []string{"-l", "2", "--no-pci"}, MTU: 9000, MempoolSize: 4096, MempoolCache: 128, Burst: 64,
		RxRing: 512, TxRing: 256, RxQueue: 100, ARPQueue: 10, ARPTimeout: time.Minute, ARPRetry: 50 * time.Millisecond,
		ARPRetries: 3, IdleSpin: time.Microsecond, IdleSleepMin: 2 * time.Microsecond, IdleSleepMax: 3 * time.Microsecond,
		IdleSleepDeep: 4 * time.Millisecond, IdleDeepAfter: 5 * time.Millisecond, TxWait: 6 * time.Microsecond, NoChecksumOffload: true,
	}
	if cfg.GatewayMAC.String() != "02:00:00:00:00:01" || cfg.MAC.String() != "02:00:00:00:00:02" || len(cfg.StaticARP) != 2 ||
		cfg.StaticARP[netip.MustParseAddr("10.0.0.3")].String() != "aa:bb:cc:dd:ee:00" {
		t.Fatalf("MACs %v %v %v", cfg.GatewayMAC, cfg.MAC, cfg.StaticARP)
	}
	cfg.GatewayMAC, cfg.MAC, cfg.StaticARP = nil, nil, nil
	if strings.Join(cfg.EALArgs, " ") != strings.Join(want.EALArgs, " ") {
		t.Fatalf("EALArgs %q, want %q", cfg.EALArgs, want.EALArgs)
	}
	cfg.EALArgs, want.EALArgs = nil, nil
	if !reflect.DeepEqual(cfg, want) {
		t.Fatalf("config\n %+v\nwant\n %+v", cfg, want)
	}
	if cfg, err := ParseQuery("dev=x&busypoll=1"); err != nil || cfg.IdleSleepMax != -1 {
		t.Fatalf("busypoll=1: IdleSleepMax %v, %v; want -1", cfg.IdleSleepMax, err)
	}
}

func TestParseQueryErrors(t *testing.T) {
	for _, tc := range []struct {
		query, key, value, reason string
	}{
		{"", "dev", "", "required"},
		{"dev=", "dev", "", "empty device"},
		{"dev=x&speed=fast&alpha=1", "alpha", "1", "unknown key; known: dev, local, eal"},
		{"dev=x&dev=y", "dev", "y", "more than once"},
		{"dev=x&local=[::1]:9", "local", "[::1]:9", "IPv4 ip:port"},
		{"dev=x&subnet=10.0.0.0", "subnet", "10.0.0.0", "CIDR"},
		{"dev=x&gw=gateway", "gw", "gateway", "IPv4 address"},
		{"dev=x&mac=zz", "mac", "zz", "want a MAC"},
		{"dev=x&gwmac=00:00:5e:00:53:01:02:03", "gwmac", "00:00:5e:00:53:01:02:03", "want a MAC"},
		{"dev=x&arp=10.0.0.2", "arp", "10.0.0.2", "ip@mac"},
		{"dev=x&arp=10.0.0.2@zz", "arp", "10.0.0.2@zz", "ip@mac"},
		{"dev=x&mtu=100", "mtu", "100", "from 576 to 9000"},
		{"dev=x&burst=513", "burst", "513", "from 1 to 512"},
		{"dev=x&txwait=soon", "txwait", "soon", "Go duration"},
		{"dev=x&spin=-1ms", "spin", "-1ms", "positive"},
		{"dev=x&busypoll=yes", "busypoll", "yes", "1 or 0"},
		{"dev=x;y", "", "", "malformed query"},
	} {
		_, err := ParseQuery(tc.query)
		var qe *QueryError
		if !errors.As(err, &qe) || qe.Key != tc.key || qe.Value != tc.value || !strings.Contains(qe.Reason, tc.reason) {
			t.Errorf("ParseQuery(%q) = %v; want key %q, value %q, reason with %q", tc.query, err, tc.key, tc.value, tc.reason)
		}
	}
}

// TestQueryKeysDocumented: every key is in docs/DPDK.md's URL table.
func TestQueryKeysDocumented(t *testing.T) {
	doc, err := os.ReadFile("../docs/DPDK.md")
	if err != nil {
		t.Fatal(err)
	}
	_, table, _ := strings.Cut(string(doc), "## URL form")
	table, _, _ = strings.Cut(table, "\n## ")
	for _, k := range QueryKeys() {
		if !strings.Contains(table, "`"+k+"`") && !strings.Contains(table, "`"+k+"=") {
			t.Errorf("query key %q is not in docs/DPDK.md, URL form", k)
		}
	}
}

func FuzzParseQuery(f *testing.F) {
	for _, s := range []string{
		"dev=net_af_packet0,iface=veth0&subnet=10.0.0.0/24&gw=10.0.0.254",
		"local=10.0.0.1:4001&dev=0000:3b:00.0&eal=-l+2&busypoll=1&mtu=1500&txwait=200us",
		"dev=x&arp=1.2.3.4@aa:bb:cc:dd:ee:ff&arp=5.6.7.8@aa:bb:cc:dd:ee:00&mac=02:00:00:00:00:01",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		cfg, err := ParseQuery(s)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		if cfg.Device == "" {
			t.Fatalf("%q accepted without a device", s)
		}
	})
}
