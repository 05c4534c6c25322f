package benchkit

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// The stream protocol between a bench client and a bench server. The client
// opens a conn and writes a 16-byte hello:
//
//	magic "RB" | version 1 | mode | request size u32 | reply size u32 | 0 u32
//
// In echo mode the server reads whole requests and answers each with one
// reply. In sink mode the server reads whole messages; byte 0 of a message
// is 0 for data and 1 for the end marker; on the end marker it writes back the
// 16-byte tally: data messages received u64 | nanoseconds from the first data
// message to the end marker u64.
const (
	helloLen    = 16
	tallyLen    = 16
	modeEcho    = 'E'
	modeSink    = 'S'
	msgData     = 0
	msgEnd      = 1
	minSize     = 16
	maxSize     = 1 << 20
	helloMagic0 = 'R'
	helloMagic1 = 'B'
	helloVer    = 1
)

func appendHello(b []byte, mode byte, req, reply int) []byte {
	b = append(b, helloMagic0, helloMagic1, helloVer, mode)
	b = binary.BigEndian.AppendUint32(b, uint32(req))
	b = binary.BigEndian.AppendUint32(b, uint32(reply))
	return binary.BigEndian.AppendUint32(b, 0)
}

// HelloError reports a malformed hello from a bench client.
type HelloError struct {
	Hello  []byte
	Reason string
}

func (e *HelloError) Error() string {
	return fmt.Sprintf("bench: bad hello % x: %s", e.Hello, e.Reason)
}

func parseHello(h []byte) (mode byte, req, reply int, err error) {
	if h[0] != helloMagic0 || h[1] != helloMagic1 || h[2] != helloVer {
		return 0, 0, 0, &HelloError{Hello: h, Reason: "wrong magic or version"}
	}
	mode = h[3]
	req = int(binary.BigEndian.Uint32(h[4:]))
	reply = int(binary.BigEndian.Uint32(h[8:]))
	if mode != modeEcho && mode != modeSink {
		return 0, 0, 0, &HelloError{Hello: h, Reason: fmt.Sprintf("unknown mode %q", mode)}
	}
	if req < minSize || req > maxSize || (mode == modeEcho && (reply < minSize || reply > maxSize)) {
		return 0, 0, 0, &HelloError{Hello: h, Reason: fmt.Sprintf("sizes %d/%d outside [%d, %d]", req, reply, minSize, maxSize)}
	}
	return mode, req, reply, nil
}

// Server is a running bench server for one transport.
type Server interface {
	// Addr is the address clients dial.
	Addr() string
	// Close stops the server and waits for its goroutines.
	Close() error
}

// StartServer starts a bench server for t on addr.
func StartServer(ctx context.Context, t Named, addr string) (Server, error) {
	switch t := t.(type) {
	case Transport:
		ln, err := t.Listen(ctx, addr)
		if err != nil {
			return nil, fmt.Errorf("bench: %s listen on %s: %w", t.Name(), addr, err)
		}
		s := &streamServer{ln: ln, conns: map[net.Conn]struct{}{}}
		s.wg.Add(1)
		go s.acceptLoop()
		return s, nil
	case DatagramTransport:
		pc, err := t.ListenPacket(ctx, addr)
		if err != nil {
			return nil, fmt.Errorf("bench: %s listen on %s: %w", t.Name(), addr, err)
		}
		s := &datagramServer{pc: pc}
		s.wg.Add(1)
		go s.loop()
		return s, nil
	}
	return nil, fmt.Errorf("bench: %T is not a transport", t)
}

type streamServer struct {
	ln     net.Listener
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
	once   sync.Once
}

func (s *streamServer) Addr() string { return s.ln.Addr().String() }

func (s *streamServer) Close() error {
	var err error
	s.once.Do(func() {
		err = s.ln.Close()
		s.mu.Lock()
		s.closed = true
		for c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
		s.wg.Wait()
	})
	return err
}

func (s *streamServer) acceptLoop() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			serveConn(c)
			c.Close()
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
		}()
	}
}

// serveConn answers one bench client until it goes away.
func serveConn(c net.Conn) error {
	setNoDelay(c)
	var h [helloLen]byte
	if _, err := io.ReadFull(c, h[:]); err != nil {
		return err
	}
	mode, req, reply, err := parseHello(h[:])
	if err != nil {
		return err
	}
	buf := make([]byte, req)
	if mode == modeEcho {
		out := make([]byte, reply)
		for {
			if _, err := io.ReadFull(c, buf); err != nil {
				return eofOK(err)
			}
			copy(out[:8], buf[:8]) // sequence number back to the client
			if _, err := c.Write(out); err != nil {
				return err
			}
		}
	}
	var n uint64
	var first time.Time
	for {
		if _, err := io.ReadFull(c, buf); err != nil {
			return eofOK(err)
		}
		if buf[0] == msgEnd {
			var el time.Duration
			if n > 0 {
				el = time.Since(first)
			}
			var t [tallyLen]byte
			binary.BigEndian.PutUint64(t[:], n)
			binary.BigEndian.PutUint64(t[8:], uint64(el))
			if _, err := c.Write(t[:]); err != nil {
				return err
			}
			// Linger until the client has read the tally and closes: some
			// transports (quic) drop unsent data when closed at once.
			c.SetReadDeadline(time.Now().Add(lingerTimeout))
			io.Copy(io.Discard, c)
			return nil
		}
		if n == 0 {
			first = time.Now()
		}
		n++
	}
}

// lingerTimeout bounds how long a sink waits for its client to close.
const lingerTimeout = 10 * time.Second

func eofOK(err error) error {
	if errors.Is(err, io.EOF) {
		return nil
	}
	return err
}

// setNoDelay turns Nagle off on TCP conns (also when wrapped by a listener
// that returns *net.TCPConn); other conns are left alone.
func setNoDelay(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetNoDelay(true)
	}
}
