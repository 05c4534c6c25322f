package reliable

import (
	"context"
	"fmt"
	"net"
	"sync"

	"github.com/raptormq/raptor/internal/udpio"
)

// Listener accepts Raptor sessions on one PacketConn and yields every stream
// their peers open. It implements net.Listener, so it can be handed to
// kfake.ListenFn, grpc.Server.Serve or http.Serve.
type Listener struct {
	e         *endpoint
	acceptQ   chan *Stream
	closed    chan struct{}
	closeOnce sync.Once
}

// Listen listens for Raptor sessions on the kernel UDP address addr
// ("host:port"; port 0 picks one).
func Listen(addr string, cfg *Config) (*Listener, error) {
	c, err := cfg.populate()
	if err != nil {
		return nil, err
	}
	pc, err := udpio.Listen(addr)
	if err != nil {
		return nil, fmt.Errorf("raptor: listen on %s: %w", addr, err)
	}
	return listenPacket(pc, c), nil
}

// ListenPacket listens for Raptor sessions on any packet path (DPDK, a
// simulated network, a loss-injecting wrapper). The listener owns pc and
// closes it on Close.
func ListenPacket(pc PacketConn, cfg *Config) (*Listener, error) {
	c, err := cfg.populate()
	if err != nil {
		return nil, err
	}
	return listenPacket(pc, c), nil
}

func listenPacket(pc PacketConn, cfg *Config) *Listener {
	e := newEndpoint(pc, cfg, readBatch)
	l := &Listener{e: e, acceptQ: make(chan *Stream, cfg.AcceptBacklog), closed: make(chan struct{})}
	e.listener = l
	e.start()
	return l
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
		l.e.shutdown()
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
func (l *Listener) Stats() Stats { return l.e.snapshot() }

// SessionCount is the number of live sessions.
func (l *Listener) SessionCount() int {
	l.e.mu.Lock()
	defer l.e.mu.Unlock()
	return len(l.e.sessions)
}
