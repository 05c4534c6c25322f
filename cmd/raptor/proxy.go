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
	upstream: "raptor://127.0.0.1:19092",
	kafka:    true,
	usage: `Usage: raptor proxy [flags]

Accepts TCP connections on this host and forwards each over Raptor, so any
Kafka client (librdkafka, kcat, Java, Python) gets Raptor on the network
path. Kafka-aware by default: one proxy fronts a whole cluster. The client's
bootstrap address is the proxy (--listen); every broker the cluster's
metadata names gets its own TCP listener here (--broker-ports), which the
proxy puts in the responses instead of the broker's address, so the client
never connects to a broker directly. With the defaults it runs next to
'raptor broker' with no flags:
  raptor broker &
  raptor proxy &
  kcat -b 127.0.0.1:9092 -L

--upstream is the cluster's bootstrap Raptor endpoint (a raptor broker, or a
raptor gateway in front of a real cluster); give it more than once (or comma
separated) to fail over; each has its own circuit breaker. Brokers are
reached over Raptor at the host:port their metadata names. --kafka=false
passes bytes unchanged (any TCP protocol, one proxy per upstream).

A client the proxy cannot serve (upstream unreachable, over a stream limit,
draining, idle) has its connection closed; nothing is written into it.
Limits and drain are as for raptor gateway.

Flags:
`,
}
