//go:build dpdk && linux && cgo

package integration

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/raptormq/raptor/compat/kafka"
	"github.com/raptormq/raptor/dpdk"
	"github.com/raptormq/raptor/internal/udpio"
	"github.com/raptormq/raptor/plugin"
	"github.com/raptormq/raptor/reliable"
)

// TestKafkaOverDPDK: the embedded broker also listens on a
// raptor+dpdk:// URL (net_af_packet on a veth, in its own network
// namespace); a franz-go producer and consumer group in the other
// namespace reach it over kernel UDP Raptor.
func TestKafkaOverDPDK(t *testing.T) {
	v := newDPVeth(t)
	if err := dpdk.InitEAL(nil); err != nil { // from this thread: EAL threads stay in the root namespace
		t.Fatalf("EAL: %v", err)
	}
	dpdkURL := fmt.Sprintf("raptor+dpdk://%s:9092?dev=net_af_packet%d,iface=%s&subnet=%s",
		v.dpdkIP, v.seq, v.dev, netip.PrefixFrom(v.dpdkIP, 24).Masked())
	t.Logf("broker's DPDK endpoint: %s", dpdkURL)
	tr := plugin.New()
	defer tr.Close()
	var dln net.Listener
	if err := dpInNetns(v.nsD, func() (err error) { dln, err = tr.Listen(dpdkURL); return err }); err != nil {
		t.Fatalf("listen %s: %v", dpdkURL, err)
	}
	b, err := kafka.NewBroker(kafka.BrokerConfig{Topics: []string{"dpdk"}, Partitions: 6, Listeners: []net.Listener{dln}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	// The clients live in the kernel namespace: their UDP sockets are made
	// there.
	inK := func(laddr string) (reliable.PacketConn, error) {
		var c *udpio.Conn
		err := dpInNetns(v.nsK, func() (err error) { c, err = udpio.Listen(laddr); return err })
		return c, err
	}
	d, err := kafka.NewDialer(
		kafka.WithBrokerMap(map[string]string{b.Addr(): fmt.Sprintf("raptor://%s:9092", v.dpdkIP)}),
		kafka.WithTransportOptions(plugin.WithPacketConn(inK)),
	)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	const n = 20000
	kxWorkload{Seed: b.Addr(), Topic: "dpdk", Partitions: 6, N: n, Opts: []kgo.Opt{d.Opt()}}.run(t, ctx).check(t, n)
	if rl, ok := dln.(*reliable.Listener); !ok || rl.SessionCount() == 0 {
		t.Fatal("no session on the DPDK listener: the clients did not use it")
	}
}
