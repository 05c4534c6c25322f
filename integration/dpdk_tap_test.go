//go:build dpdk && linux && cgo

package integration

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/raptormq/raptor/dpdk"
)

// TestDPDKTapChecksumOffload exchanges datagrams between a DPDK net_tap port
// and kernel UDP sockets on the tap interface it creates (in a test
// namespace). The tap PMD offers IPv4/UDP checksum offload, so this covers
// the offload path that af_packet and net_ring lack: the kernel must count
// no checksum errors and DPDK no bad checksums.
func TestDPDKTapChecksumOffload(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("skipped: needs root to create a network namespace and a tap interface")
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		t.Fatalf("/dev/net/tun: %v", err)
	}
	dpRemoveStaleNetns()
	dpVethSeq.Lock()
	dpVethSeq.n++
	seq := dpVethSeq.n
	dpVethSeq.Unlock()
	id := fmt.Sprintf("%d%03d", os.Getpid()%100000, seq)
	ns, tap := "rdpdkT"+id, "rdt"+id
	dpdkIP := netip.AddrFrom4([4]byte{10, 215, byte(seq), 1})
	kernelIP := netip.AddrFrom4([4]byte{10, 215, byte(seq), 2})
	if out, err := dpRunErr("", "ip", "netns", "add", ns); err != nil {
		t.Skipf("skipped: cannot create network namespace %s: %v %s", ns, err, out)
	}
	t.Cleanup(func() { dpRunErr("", "ip", "netns", "del", ns) })
	dpRun(t, "", "ip", "netns", "exec", ns, "sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1")
	dpRun(t, "", "ip", "-n", ns, "link", "set", "lo", "up")
	if err := dpdk.InitEAL(nil); err != nil {
		t.Fatalf("EAL: %v", err)
	}
	var p *dpdk.Port
	if err := dpInNetns(ns, func() error {
		var err error
		p, err = dpdk.Open(dpdk.Config{
			Device:    fmt.Sprintf("net_tap%d,iface=%s", seq, tap),
			LocalAddr: netip.AddrPortFrom(dpdkIP, 4000),
			Logger:    dpQuiet,
		})
		return err
	}); err != nil {
		t.Fatalf("dpdk.Open net_tap in %s: %v", ns, err)
	}
	t.Cleanup(func() { p.Close() })
	txOL, rxOL := p.ChecksumOffload()
	t.Logf("net_tap checksum offload: tx %v rx %v", txOL, rxOL)
	if !txOL {
		t.Errorf("net_tap did not offer tx IPv4+UDP checksum offload; the offload path is untested")
	}
	dpRun(t, "", "ip", "-n", ns, "addr", "add", kernelIP.String()+"/24", "dev", tap)
	dpRun(t, "", "ip", "-n", ns, "link", "set", tap, "up")
	var echo, client *net.UDPConn
	if err := dpInNetns(ns, func() error {
		var err error
		if echo, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(kernelIP, 5000))); err != nil {
			return err
		}
		client, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(kernelIP, 5001)))
		return err
	}); err != nil {
		t.Fatalf("kernel sockets in %s: %v", ns, err)
	}
	t.Cleanup(func() { echo.Close(); client.Close() })
	retries, kretries := dpUDPExchange(t, p, kernelIP, echo, client, 200, nil)
	st := p.Stats()
	t.Logf("retransmissions %d/%d; DPDK port stats: %+v", retries, kretries, st)
	if st.Drops.BadUDPChecksum != 0 || st.Drops.BadIPChecksum != 0 {
		t.Errorf("DPDK dropped frames with bad checksums: UDP %d, IP %d", st.Drops.BadUDPChecksum, st.Drops.BadIPChecksum)
	}
	if c := dpKernelUDPCounter(t, ns, "InCsumErrors"); c != 0 {
		t.Errorf("kernel counted %d UDP checksum errors on frames from DPDK", c)
	}
}

// dpKernelUDPCounter reads one Udp counter of /proc/net/snmp in namespace ns.
func dpKernelUDPCounter(t *testing.T, ns, name string) int {
	t.Helper()
	var names, vals []string
	for _, line := range strings.Split(dpRun(t, "", "ip", "netns", "exec", ns, "cat", "/proc/net/snmp"), "\n") {
		if strings.HasPrefix(line, "Udp: ") {
			if names == nil {
				names = strings.Fields(line)[1:]
			} else {
				vals = strings.Fields(line)[1:]
			}
		}
	}
	for i := range min(len(names), len(vals)) {
		if names[i] == name {
			v, _ := strconv.Atoi(vals[i])
			return v
		}
	}
	t.Fatalf("Udp counter %s not found in %s's /proc/net/snmp", name, ns)
	return 0
}
