//go:build dpdk && linux && cgo

package integration

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/raptormq/raptor/dpdk"
	"github.com/raptormq/raptor/plugin"
	"github.com/raptormq/raptor/reliable"
)

// TestPluginDialsOverDPDK: plugin.Transport dials a raptor+dpdk:// URL
// (net_af_packet on a veth in its own namespace) to a kernel-UDP Raptor
// listener in the other namespace, through the same reliable.Dialer session
// cache as raptor://: a second dial reuses the session, and the transport's
// counters include it.
func TestPluginDialsOverDPDK(t *testing.T) {
	v := newDPVeth(t)
	if err := dpdk.InitEAL(nil); err != nil { // from this thread: EAL threads stay in the root namespace
		t.Fatalf("EAL: %v", err)
	}
	kaddr := netip.AddrPortFrom(v.kernelIP, 5000)
	var l *reliable.Listener
	if err := dpInNetns(v.nsK, func() (err error) {
		l, err = reliable.Listen(kaddr.String(), &reliable.Config{Logger: dpQuiet})
		return err
	}); err != nil {
		t.Fatalf("listen on kernel UDP %v in %s: %v", kaddr, v.nsK, err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	url := fmt.Sprintf("raptor+dpdk://%s?local=%s:4000&dev=net_af_packet%d,iface=%s&subnet=%s",
		kaddr, v.dpdkIP, v.seq, v.dev, netip.PrefixFrom(v.dpdkIP, 24).Masked())
	tr := plugin.New()
	defer tr.Close()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	var conns [2]net.Conn
	for i := range conns {
		// The PMD opens its packet socket in the namespace of the thread that
		// probes it: dial from nsD.
		if err := dpInNetns(v.nsD, func() (err error) { conns[i], err = tr.Dial(ctx, url); return err }); err != nil {
			t.Fatalf("dial %d to %s: %v", i, url, err)
		}
		defer conns[i].Close()
		conns[i].SetDeadline(time.Now().Add(30 * time.Second))
		msg := []byte(fmt.Sprintf("over dpdk %d", i))
		if _, err := conns[i].Write(msg); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(conns[i], got); err != nil || string(got) != string(msg) {
			t.Fatalf("echo %d: %q, %v", i, got, err)
		}
	}
	if a, b := conns[0].(*reliable.Stream).Session(), conns[1].(*reliable.Stream).Session(); a != b {
		t.Fatal("the second dial to the same raptor+dpdk:// URL opened a second session")
	}
	if conns[0].RemoteAddr().String() != kaddr.String() {
		t.Fatalf("remote %v, want %v", conns[0].RemoteAddr(), kaddr)
	}
	if st := tr.Stats(); st.Get(reliable.CounterSessionsOpened) != 1 || st.Get(reliable.CounterPacketsSent) == 0 {
		t.Fatalf("transport counters %+v, want the one DPDK session", st)
	}
}
