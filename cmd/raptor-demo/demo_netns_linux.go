//go:build linux

package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strconv"

	"golang.org/x/sys/unix"
)

// netnsLoss is a lossy link for the demo: two network namespaces made for
// the run (the broker in one, the clients in the other) joined by a veth
// pair, and on the ingress of each end an nftables rule that drops pct% of
// the packets at random (`numgen random mod 100 < pct`, as
// scripts/lossy-bench.sh does). TCP and Raptor cross the same link, so both
// paths meet the same loss. Everything is removed by close.
type netnsLoss struct {
	names            [2]string // broker, client namespace
	fds              [2]*os.File
	brokerIP, client string
}

const (
	netnsBrokerIP = "10.78.0.1"
	netnsClientIP = "10.78.0.2"
	nftTable      = "raptordemo"
)

// lossNetnsUnavailable says why the namespaces cannot be had here, or "".
func lossNetnsUnavailable() string {
	if os.Geteuid() != 0 {
		return "not running as root (network namespaces and nftables need root)"
	}
	for _, tool := range []string{"ip", "nft"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Sprintf("%s is not installed (apt-get install iproute2 nftables)", tool)
		}
	}
	return ""
}

func runTool(name string, args ...string) error {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %v: %w: %s", name, args, err, bytes.TrimSpace(out))
	}
	return nil
}

func newNetnsLoss(pct float64) (_ *netnsLoss, err error) {
	tag := fmt.Sprintf("rdemo%d", os.Getpid())
	n := &netnsLoss{names: [2]string{tag + "b", tag + "c"}, brokerIP: netnsBrokerIP, client: netnsClientIP}
	defer func() {
		if err != nil {
			n.close()
		}
	}()
	devs := [2]string{tag + "vb", tag + "vc"}
	ips := [2]string{netnsBrokerIP, netnsClientIP}
	for _, ns := range n.names {
		if err := runTool("ip", "netns", "add", ns); err != nil {
			return nil, err
		}
	}
	if err := runTool("ip", "link", "add", devs[0], "netns", n.names[0], "type", "veth", "peer", "name", devs[1], "netns", n.names[1]); err != nil {
		return nil, err
	}
	for i, ns := range n.names {
		steps := [][]string{
			{"ip", "-n", ns, "link", "set", "lo", "up"},
			{"ip", "-n", ns, "addr", "add", ips[i] + "/30", "dev", devs[i]},
			{"ip", "-n", ns, "link", "set", devs[i], "up"},
		}
		for _, s := range steps {
			if err := runTool(s[0], s[1:]...); err != nil {
				return nil, err
			}
		}
		rule := fmt.Sprintf(`table netdev %s {
  chain ingress {
    type filter hook ingress device %q priority 0; policy accept;
    numgen random mod 100 < %s counter drop
  }
}
`, nftTable, devs[i], strconv.FormatFloat(pct, 'f', -1, 64))
		cmd := exec.Command("ip", "netns", "exec", ns, "nft", "-f", "-")
		cmd.Stdin = bytes.NewBufferString(rule)
		if out, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("nft in %s: %w: %s", ns, err, bytes.TrimSpace(out))
		}
		f, err := os.Open("/run/netns/" + ns)
		if err != nil {
			return nil, err
		}
		n.fds[i] = f
	}
	return n, nil
}

// in runs fn on an OS thread of its own inside namespace i (0 broker,
// 1 client): sockets fn opens belong to that namespace for their life. The
// thread is not returned to the Go scheduler (its goroutine ends locked), so
// no other goroutine ever runs in the namespace.
func (n *netnsLoss) in(i int, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with this goroutine
		if err := unix.Setns(int(n.fds[i].Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns %s: %w", n.names[i], err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// dial opens a TCP conn from the client namespace.
func (n *netnsLoss) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var c net.Conn
	err := n.in(1, func() error {
		var d net.Dialer
		var err error
		c, err = d.DialContext(ctx, network, addr)
		return err
	})
	return c, err
}

var nftCounter = regexp.MustCompile(`counter packets (\d+) bytes \d+ drop`)

// dropped is the number of packets the nftables rules of both namespaces
// dropped so far.
func (n *netnsLoss) dropped() (uint64, error) {
	var sum uint64
	for _, ns := range n.names {
		out, err := exec.Command("ip", "netns", "exec", ns, "nft", "list", "table", "netdev", nftTable).CombinedOutput()
		if err != nil {
			return 0, fmt.Errorf("nft list table in %s: %w: %s", ns, err, bytes.TrimSpace(out))
		}
		m := nftCounter.FindSubmatch(out)
		if m == nil {
			return 0, fmt.Errorf("nft list table in %s: no drop counter in %q", ns, out)
		}
		v, _ := strconv.ParseUint(string(m[1]), 10, 64)
		sum += v
	}
	return sum, nil
}

func (n *netnsLoss) close() {
	for i, ns := range n.names {
		if n.fds[i] != nil {
			n.fds[i].Close()
		}
		exec.Command("ip", "netns", "del", ns).Run() // removes its end of the veth pair too
	}
}

// tcpRetransmits sums TCP's RetransSegs (/proc/net/snmp) of both
// namespaces: the kernel's count of TCP segments sent again.
func (n *netnsLoss) tcpRetransmits() (uint64, error) {
	var sum uint64
	for _, ns := range n.names {
		out, err := exec.Command("ip", "netns", "exec", ns, "cat", "/proc/net/snmp").CombinedOutput()
		if err != nil {
			return 0, fmt.Errorf("/proc/net/snmp in %s: %w: %s", ns, err, bytes.TrimSpace(out))
		}
		v, err := snmpField(out, "Tcp:", "RetransSegs")
		if err != nil {
			return 0, fmt.Errorf("/proc/net/snmp in %s: %w", ns, err)
		}
		sum += v
	}
	return sum, nil
}
