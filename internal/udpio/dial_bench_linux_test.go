//go:build linux

package udpio

import (
	"syscall"
	"testing"
	"time"
)

// cpuTime is the process's user plus system CPU time so far.
func cpuTime(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkPingPongSocket is BenchmarkPingPong (64 bytes, raw path) with
// the client's socket opened three ways: Listen("0.0.0.0:0"), a dual-stack
// AF_INET6 socket sending to an IPv4-mapped name (what a dialed session used
// before Dial); Listen("127.0.0.1:0"), an AF_INET socket sending with a
// name; and Dial, connected, sending without one. cpu-ns/op is the process's
// CPU time per round trip (both sides), steadier than ns/op on a busy
// machine.
func BenchmarkPingPongSocket(b *testing.B) {
	for _, mode := range []string{"listen-dualstack", "listen-udp4", "dial"} {
		b.Run(mode, func(b *testing.B) {
			srv := listenPath(b, "127.0.0.1:0", path{})
			var cli *Conn
			var err error
			switch mode {
			case "listen-dualstack":
				cli, err = Listen("0.0.0.0:0")
			case "listen-udp4":
				cli, err = Listen("127.0.0.1:0")
			default:
				cli, err = Dial(srv.LocalAddr())
			}
			if err != nil {
				b.Fatal(err)
			}
			defer cli.Close()
			var cpu0 time.Duration
			pingPong64(b, cli, srv, func(after bool) {
				if !after {
					cpu0 = cpuTime(b)
					return
				}
				b.ReportMetric(float64(cpuTime(b)-cpu0)/float64(b.N), "cpu-ns/op")
			})
		})
	}
}
