// Package benchkit is the harness behind `raptor-bench` (`raptor bench`): it runs the same
// suites (rtt, throughput, kafka) over interchangeable transports — Raptor,
// TCP, raw UDP here, and kcp-go and quic-go from the separate bench/ module —
// and reports latency percentiles, message rates and CPU cost in one format
// (aligned table, JSON lines, PNG chart).
//
// A stream transport implements [Transport] (a listener of net.Conns and a
// dialer); raw UDP, the floor of the machine, implements [DatagramTransport]
// and is measured without reliability, its losses counted. Every run is
// bounded in time and in count.
package benchkit

import (
	"context"
	"fmt"
	"net"
	"sort"
	"strings"
	"time"
)

// Transport is a reliable stream transport under test: tcp, raptor, kcp,
// quic. Each Write on a dialled conn is one message of the benchmark.
type Transport interface {
	// Name is the short name used on the command line ("tcp").
	Name() string
	// Listen starts accepting conns on addr ("host:port").
	Listen(ctx context.Context, addr string) (net.Listener, error)
	// Dial opens one conn to a listener of the same transport at addr.
	Dial(ctx context.Context, addr string) (net.Conn, error)
}

// DatagramTransport is an unreliable message transport (raw UDP): one
// datagram per message, nothing retransmitted, losses counted.
type DatagramTransport interface {
	// Name is the short name used on the command line ("udp").
	Name() string
	// ListenPacket opens the server socket on addr.
	ListenPacket(ctx context.Context, addr string) (net.PacketConn, error)
	// DialPacket opens a client socket connected to addr.
	DialPacket(ctx context.Context, addr string) (net.Conn, error)
}

// Named is a [Transport] or a [DatagramTransport].
type Named interface{ Name() string }

// PortOffsets fixes, per transport name, the offset from the base port at
// which `bench serve` listens and `--remote` connects, so that server and
// client agree on ports without talking first. Unknown names get 10+.
var PortOffsets = map[string]int{"udp": 0, "tcp": 1, "raptor": 2, "kcp": 3, "quic": 4, "raptor-plaintext": 5, "tcp-buffered": 6, "tcp+tls": 7, "raptor-newreno": 8, "tcp+tls-buffered": 9}

// Registry is an ordered set of transports selectable by name, and what
// else a command links in for its bench (the chart writer).
type Registry struct {
	list []Named
	plot PlotFunc
	via  map[string]Named // paths run only when --via names them
}

// AddVia registers t as the path `--via name` adds to the kafka suite (for
// example "proxy": TCP to a Kafka-aware raptor proxy, Raptor behind it).
// It is not among the default transports.
func (r *Registry) AddVia(name string, t Named) {
	if r.via == nil {
		r.via = map[string]Named{}
	}
	r.via[name] = t
}

// lookupVia returns the path registered as name, and the names known.
func (r *Registry) lookupVia(name string) (Named, []string) {
	var known []string
	for k := range r.via {
		known = append(known, k)
	}
	sort.Strings(known)
	return r.via[name], known
}

// PlotFunc draws results into a PNG file at path (package
// internal/benchkit/plot).
type PlotFunc func(path, title string, rs []Result) error

// SetPlotter lets --plot draw charts with f. Without one, --plot is refused:
// the raptor binary links no chart writer (gonum/plot would triple its
// size); bench/cmd/raptor-bench-all does.
func (r *Registry) SetPlotter(f PlotFunc) { r.plot = f }

// Add registers t; a later transport with the same name replaces it.
func (r *Registry) Add(t Named) {
	switch t.(type) {
	case Transport, DatagramTransport:
	default:
		panic(fmt.Sprintf("benchkit: %T is neither a Transport nor a DatagramTransport", t))
	}
	for i, old := range r.list {
		if old.Name() == t.Name() {
			r.list[i] = t
			return
		}
	}
	r.list = append(r.list, t)
}

// Names lists the registered transport names in registration order.
func (r *Registry) Names() []string {
	out := make([]string, len(r.list))
	for i, t := range r.list {
		out[i] = t.Name()
	}
	return out
}

// Lookup returns the transports named, in the order given.
func (r *Registry) Lookup(names []string) ([]Named, error) {
	var out []Named
	for _, n := range names {
		var found Named
		for _, t := range r.list {
			if t.Name() == n {
				found = t
			}
		}
		if found == nil {
			return nil, &UnknownTransportError{Name: n, Known: r.Names()}
		}
		out = append(out, found)
	}
	return out, nil
}

// UnknownTransportError names a transport that is not registered.
type UnknownTransportError struct {
	Name  string
	Known []string
}

func (e *UnknownTransportError) Error() string {
	k := append([]string(nil), e.Known...)
	sort.Strings(k)
	return fmt.Sprintf("unknown transport %q (known: %s)", e.Name, strings.Join(k, ", "))
}

// Result is one measurement: one suite, one transport, one message size.
// The JSON form has exactly the fields tagged below; the others are for the
// table and the chart.
type Result struct {
	Suite     string  `json:"suite"`
	Transport string  `json:"transport"`
	Size      int     `json:"size"`
	P50us     float64 `json:"p50_us"`
	P90us     float64 `json:"p90_us"`
	P99us     float64 `json:"p99_us"`
	P999us    float64 `json:"p999_us"`
	MaxUs     float64 `json:"max_us"`
	MsgsPerS  float64 `json:"msgs_per_s"`
	MBPerS    float64 `json:"mb_per_s"`
	// CPUSPerMMsg is the process CPU time (both ends on loopback) in
	// seconds per million messages received: microseconds per message.
	CPUSPerMMsg float64 `json:"cpu_s_per_mmsg"`
	LossPct     float64 `json:"loss_pct"`
	// Duplicated is the number of messages received more than once (kafka:
	// records consumed again with a sequence number already seen).
	Duplicated int64 `json:"duplicated"`
	// SyscallsPerMsg is the system calls of the whole process (both ends on
	// loopback) per message received, counted by the kernel (see
	// [SyscallCounter]); 0 when the kernel does not let this process count.
	SyscallsPerMsg float64 `json:"syscalls_per_msg"`

	// Sent is the number of messages the client sent (after warm-up).
	Sent int64 `json:"-"`
	// Received is the number of messages counted where they were received.
	Received int64 `json:"-"`
	// GCs is the number of GC cycles during the measurement (this process).
	GCs uint64 `json:"-"`
	// AllocsPerMsg is heap objects allocated in this process (both ends on
	// loopback, and the harness) per message received.
	AllocsPerMsg float64 `json:"-"`
	// Elapsed is the measured interval.
	Elapsed time.Duration `json:"-"`
	// Reply is the reply size of an rtt run, when it differs from Size.
	Reply int `json:"-"`
	// IdleCPUPct is the idle suite's process CPU time while the conns
	// idled, in percent of one core.
	IdleCPUPct float64 `json:"-"`
	// IdleBytesPerConn is the idle suite's live heap per idle conn, client
	// and server ends together.
	IdleBytesPerConn float64 `json:"-"`
	// Condition names the network conditions ("1% loss, 1ms delay") when
	// they are not clean loopback.
	Condition string `json:"-"`
	// ReceiveLoops is the loops suite's listener receive loop count.
	ReceiveLoops int `json:"-"`
	// Sessions is the loops suite's number of client sessions.
	Sessions int `json:"-"`
	// LoopSessions is the loops suite's sessions on each receive loop.
	LoopSessions []int `json:"-"`
	// LoopPackets is the loops suite's packets received by each receive
	// loop during the measurement.
	LoopPackets []uint64 `json:"-"`
	// Notes are the transport's own counters of a loops run (retransmits,
	// timeouts, packets held over a budget) during the measurement.
	Notes string `json:"-"`
}

// Suite names as they appear in results.
const (
	SuiteRTT        = "rtt"
	SuiteThroughput = "throughput"
	SuiteKafka      = "kafka"     // fixed offered rate
	SuiteKafkaMax   = "kafka-max" // as fast as the producer goes
	SuiteIdle       = "idle"      // CPU and memory of idle conns
)

// Default returns the transports of the main module: raw udp (the floor),
// tcp, tcp behind a write buffer, tcp with TLS 1.3 (also behind a write
// buffer) and, once built in, raptor.
func Default() *Registry {
	r := &Registry{}
	r.Add(UDP{})
	r.Add(TCP{})
	r.Add(TCPBuffered{})
	r.Add(TCPTLS{})
	r.Add(TCPTLSBuffered{})
	for _, t := range builtin {
		r.Add(t)
	}
	return r
}

// builtin holds transports that add themselves from their own file (raptor).
var builtin []Named
