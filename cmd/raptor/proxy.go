package main

import "io"

func init() {
	register("proxy", command{
		summary: "TCP in, Raptor out: let clients that cannot link Go reach a Raptor endpoint",
		run: func(args []string, stdout, stderr io.Writer) int {
			return runRelayCommand(proxySpec, args, stdout, stderr)
		},
	})
}

var proxySpec = relaySpec{
	name:     "proxy",
	listen:   "tcp://127.0.0.1:9092",
	upstream: "raptor://127.0.0.1:9093",
	usage: `Usage: raptor proxy [flags]

Accepts TCP connections on this host and forwards each over Raptor, so any
Kafka client (librdkafka, Java, kcat) gets Raptor on the network path: point
the client at the proxy, the proxy at a Raptor broker or a raptor gateway.
Give --upstream more than once (or comma separated) to fail over between
gateways; each has its own circuit breaker.

Example:
  raptor proxy --listen tcp://127.0.0.1:9092 --upstream raptor://broker-host:9092

Kafka clients then see the advertised addresses of the broker behind it, so
this suits one-broker clusters, or one proxy per broker with matching ports.
Error lines, limits and drain are as for raptor gateway.

Flags:
`,
}
