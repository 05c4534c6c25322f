package reliable

import (
	"context"
	"fmt"
	"net"
	"sync"

	"github.com/raptormq/raptor/internal/udpio"
)

// Listener accepts Raptor sessions on one or more PacketConns and yields
// every stream their peers open. It implements net.Listener, so it can be
// handed to kfake.ListenFn, grpc.Server.Serve or http.Serve.
//
// With several PacketConns (Config.ReceiveLoops, ListenPackets) each has its
// own endpoint and receive loop; a session lives on the endpoint whose
// socket received its Initial and sends from that socket, and all of them
// feed one accept queue.
type Listener struct {
	e         *endpoint   // eps[0]: its address is the listener's
	eps       []*endpoint // one per PacketConn, each with its receive loop
	acceptQ   chan *Stream
	closed    chan struct{}
	closeOnce sync.Once
}

// Listen listens for Raptor sessions on the kernel UDP address addr
// ("host:port"; port 0 picks one). With Config.ReceiveLoops = N > 1 it opens
// N sockets on that address with SO_REUSEPORT, one receive loop each: the
// kernel spreads peers over them by a hash of their address, so sessions use
// up to N cores.
func Listen(addr string, cfg *Config) (*Listener, error) {
	c, err := cfg.populate()
	if err != nil {
		return nil, err
	}
	if c.ReceiveLoops > 1 {
		conns, err := udpio.ListenReusePort(addr, c.ReceiveLoops)
		if err != nil {
			return nil, fmt.Errorf("raptor: listen on %s with %d receive loops: %w", addr, c.ReceiveLoops, err)
		}
		pcs := make([]PacketConn, len(conns))
		for i, pc := range conns {
			pcs[i] = pc
		}
		return listenPackets(pcs, c)
	}
	pc, err := udpio.Listen(addr)
	if err != nil {
		return nil, fmt.Errorf("raptor: listen on %s: %w", addr, err)
	}
	return listenPacket(pc, c)
}

// ListenPackets listens for Raptor sessions on several packet paths at once,
// each with its own receive loop, feeding one accept queue (for example
// sockets sharing a port with SO_REUSEPORT, or one per DPDK queue). A
// session stays on the PacketConn that received its Initial, so the path
// must deliver all of a peer's datagrams to the same PacketConn. The
// listener owns pcs; its Addr is that of pcs[0]. Config.ReceiveLoops is
// ignored.
func ListenPackets(pcs []PacketConn, cfg *Config) (*Listener, error) {
	if len(pcs) == 0 {
		return nil, fmt.Errorf("raptor: ListenPackets: no PacketConn")
	}
	c, err := cfg.populate()
	if err != nil {
		return nil, err
	}
	return listenPackets(pcs, c)
}

// ListenPacket listens for Raptor sessions on any packet path (DPDK, a
// simulated network, a loss-injecting wrapper). The listener owns pc and
// closes it on Close.
func ListenPacket(pc PacketConn, cfg *Config) (*Listener, error) {
	c, err := cfg.populate()
	if err != nil {
		return nil, err
	}
	return listenPacket(pc, c)
}

func listenPacket(pc PacketConn, cfg *Config) (*Listener, error) {
	return listenPackets([]PacketConn{pc}, cfg)
}

func listenPackets(pcs []PacketConn, cfg *Config) (*Listener, error) {
	tc, fp, err := serverTLSConfig(cfg)
	if err != nil {
		for _, pc := range pcs {
			pc.Close()
		}
		return nil, err
	}
	l := &Listener{acceptQ: make(chan *Stream, cfg.AcceptBacklog), closed: make(chan struct{})}
	for i, pc := range pcs {
		e := newEndpoint(pc, cfg, readBatch)
		if i > 0 {
			// One cookie secret: a Retry minted by one loop verifies on any.
			// One admission state: per-address limits and used cookies hold
			// for the listener, not per loop.
			e.secret = l.eps[0].secret
			e.budget = l.eps[0].budget // one ceiling and one accept queue for all
			e.adm = l.eps[0].adm
		}
		e.tlsServer, e.certSHA256 = tc, fp // one certificate for all loops
		e.listener = l
		l.eps = append(l.eps, e)
	}
	l.e = l.eps[0]
	registerLocalListener(l.e.pc.LocalAddr(), fp)
	for _, e := range l.eps {
		e.start()
	}
	return l, nil
}

// Accept returns the next stream opened by any peer, as a net.Conn.
func (l *Listener) Accept() (net.Conn, error) {
	st, err := l.AcceptStream(context.Background())
	if err != nil {
		return nil, err
	}
	return st, nil
}

// AcceptStream returns the next stream opened by any peer.
func (l *Listener) AcceptStream(ctx context.Context) (*Stream, error) {
	select {
	case st := <-l.acceptQ:
		st.onAcceptedFromQueue()
		return st, nil
	case <-l.closed:
		return nil, ErrListenerClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Addr is the local UDP address.
func (l *Listener) Addr() net.Addr { return net.UDPAddrFromAddrPort(l.e.pc.LocalAddr()) }

// Close stops accepting, closes every session gracefully (each waits at most
// Config.CloseTimeout for its data to be acknowledged) and releases the socket.
// It is idempotent.
func (l *Listener) Close() error {
	l.closeOnce.Do(func() {
		close(l.closed)
		var wg sync.WaitGroup
		for _, e := range l.eps {
			wg.Add(1)
			go func() {
				defer wg.Done()
				e.shutdown()
			}()
		}
		wg.Wait()
		// Streams nobody accepted are reset.
		for {
			select {
			case st := <-l.acceptQ:
				st.onAcceptedFromQueue()
				st.Close()
			default:
				return
			}
		}
	})
	return nil
}

// Stats returns the listener's counters: endpoint drops plus the sum over its
// sessions, live and finished.
func (l *Listener) Stats() Stats {
	var st Stats
	for _, e := range l.eps {
		e.snapshotInto(&st)
	}
	return st
}

// StatsPerLoop returns the counters of each receive loop (its endpoint's
// drops plus its sessions, live and finished), in the order of the
// PacketConns: with Config.ReceiveLoops it shows how the kernel spread the
// traffic. Their sum is Stats.
func (l *Listener) StatsPerLoop() []Stats {
	out := make([]Stats, len(l.eps))
	for i, e := range l.eps {
		e.snapshotInto(&out[i])
	}
	return out
}

// MemoryInUse is how many bytes of stream buffers the listener's sessions
// hold, the sum charged against Config.MaxMemory; it never exceeds it.
func (l *Listener) MemoryInUse() int64 { return l.eps[0].mem.Load() }

// SessionCount is the number of live sessions.
func (l *Listener) SessionCount() int {
	n := 0
	for _, c := range l.SessionsPerLoop() {
		n += c
	}
	return n
}

// SessionsPerLoop is the number of live sessions on each receive loop, in
// the order of the PacketConns (one entry for a single-socket listener).
func (l *Listener) SessionsPerLoop() []int {
	out := make([]int, len(l.eps))
	for i, e := range l.eps {
		e.mu.Lock()
		out[i] = len(e.sessions)
		e.mu.Unlock()
	}
	return out
}
