package benchkit

import (
	"context"
	"encoding/binary"
	"net"
	"net/netip"
	"sync"
	"time"
)

// UDP is the raw datagram floor: one datagram per message, no reliability.
type UDP struct{}

// Name returns "udp".
func (UDP) Name() string { return "udp" }

// ListenPacket opens a UDP socket on addr.
func (UDP) ListenPacket(ctx context.Context, addr string) (net.PacketConn, error) {
	var lc net.ListenConfig
	return lc.ListenPacket(ctx, "udp", addr)
}

// DialPacket opens a UDP socket connected to addr.
func (UDP) DialPacket(ctx context.Context, addr string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, "udp", addr)
}

// Datagram layout of the UDP suites: type [0] | sequence u64 [1:9] |
// reply size u32 [9:13] | padding to the message size.
const (
	dgEcho     = 'E' // request; answered by dgEchoed of the asked reply size
	dgEchoed   = 'e'
	dgStart    = 'S' // reset this peer's tally; answered by dgStarted
	dgStarted  = 'A'
	dgData     = 'D' // counted
	dgFinish   = 'F' // answered by dgTally
	dgTally    = 'R' // type | count u64 [1:9] | elapsed ns u64 [9:17]
	dgTallyLen = 17
)

type peerTally struct {
	n     uint64
	first time.Time
	done  bool
	el    time.Duration
}

type datagramServer struct {
	pc   net.PacketConn
	wg   sync.WaitGroup
	once sync.Once
}

func (s *datagramServer) Addr() string { return s.pc.LocalAddr().String() }

func (s *datagramServer) Close() error {
	var err error
	s.once.Do(func() {
		err = s.pc.Close()
		s.wg.Wait()
	})
	return err
}

func (s *datagramServer) loop() {
	defer s.wg.Done()
	uc, _ := s.pc.(*net.UDPConn)
	buf := make([]byte, 64<<10)
	out := make([]byte, 64<<10)
	peers := map[netip.AddrPort]*peerTally{}
	for {
		var n int
		var from netip.AddrPort
		var fromAddr net.Addr
		var err error
		if uc != nil {
			n, from, err = uc.ReadFromUDPAddrPort(buf)
		} else {
			n, fromAddr, err = s.pc.ReadFrom(buf)
			if err == nil {
				from, _ = netip.ParseAddrPort(fromAddr.String())
			}
		}
		if err != nil {
			return
		}
		if n < 13 {
			continue
		}
		reply := func(b []byte) {
			if uc != nil {
				uc.WriteToUDPAddrPort(b, from)
			} else {
				s.pc.WriteTo(b, fromAddr)
			}
		}
		switch buf[0] {
		case dgEcho:
			size := int(binary.BigEndian.Uint32(buf[9:13]))
			if size < dgTallyLen || size > len(out) {
				continue
			}
			out[0] = dgEchoed
			copy(out[1:9], buf[1:9])
			reply(out[:size])
		case dgStart:
			if len(peers) >= 1024 { // bounded: forget old peers
				clear(peers)
			}
			peers[from] = &peerTally{}
			out[0] = dgStarted
			copy(out[1:9], buf[1:9])
			reply(out[:minSize])
		case dgData:
			p := peers[from]
			if p == nil || p.done {
				continue
			}
			if p.n == 0 {
				p.first = time.Now()
			}
			p.n++
		case dgFinish:
			p := peers[from]
			if p == nil {
				continue
			}
			if !p.done {
				p.done = true
				if p.n > 0 {
					p.el = time.Since(p.first)
				}
			}
			// A lost tally is answered again on the next dgFinish; the
			// entry goes on the next dgStart from this peer.
			out[0] = dgTally
			binary.BigEndian.PutUint64(out[1:9], p.n)
			binary.BigEndian.PutUint64(out[9:17], uint64(p.el))
			reply(out[:dgTallyLen])
		}
	}
}
