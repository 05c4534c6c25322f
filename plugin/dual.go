package plugin

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
)

// MultiListener merges several listeners into one: Accept returns the next
// connection from any of them. Addr is the first listener's address unless
// an advertised address was set. It starts one goroutine per listener,
// ended by Close.
type MultiListener struct {
	lns   []net.Listener
	addr  net.Addr
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
	wg    sync.WaitGroup

	mu  sync.Mutex
	err error // first listener failure
}

// NewMultiListener merges lns; it takes ownership of them.
func NewMultiListener(lns ...net.Listener) *MultiListener {
	m := &MultiListener{lns: lns, conns: make(chan net.Conn), done: make(chan struct{})}
	if len(lns) > 0 {
		m.addr = lns[0].Addr()
	}
	for _, ln := range lns {
		m.wg.Add(1)
		go m.acceptLoop(ln)
	}
	return m
}

func (m *MultiListener) acceptLoop(ln net.Listener) {
	defer m.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			m.mu.Lock()
			if m.err == nil {
				m.err = fmt.Errorf("plugin: accept on %s: %w", ln.Addr(), err)
			}
			m.mu.Unlock()
			m.Close() // one side failing ends the listener: no half-served port
			return
		}
		select {
		case m.conns <- c:
		case <-m.done:
			c.Close()
			return
		}
	}
}

// Accept waits for the next connection from any of the listeners. After
// Close it returns an error wrapping net.ErrClosed.
func (m *MultiListener) Accept() (net.Conn, error) {
	select {
	case c := <-m.conns:
		return c, nil
	case <-m.done:
		m.mu.Lock()
		err := m.err
		m.mu.Unlock()
		if err != nil && !errors.Is(err, net.ErrClosed) {
			return nil, errors.Join(net.ErrClosed, err)
		}
		return nil, fmt.Errorf("plugin: listener %s: %w", m.addr, net.ErrClosed)
	}
}

// Addr returns the advertised address (see [MultiListener.SetAdvertised]) or
// the first listener's address.
func (m *MultiListener) Addr() net.Addr { return m.addr }

// SetAdvertised makes Addr return host with the first listener's port.
// Useful when listening on 0.0.0.0 behind a broker that advertises Addr.
func (m *MultiListener) SetAdvertised(host string) {
	if len(m.lns) == 0 || host == "" {
		return
	}
	_, port, err := net.SplitHostPort(m.lns[0].Addr().String())
	if err != nil {
		return
	}
	p, _ := strconv.Atoi(port)
	m.addr = advertisedAddr{hostport: net.JoinHostPort(host, strconv.Itoa(p))}
}

// Listeners returns the merged listeners, in the order given.
func (m *MultiListener) Listeners() []net.Listener { return m.lns }

// Close closes every listener and waits for the accept goroutines to end.
// It is idempotent.
func (m *MultiListener) Close() error {
	var errs []error
	m.once.Do(func() {
		close(m.done)
		for _, ln := range m.lns {
			if err := ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
				errs = append(errs, err)
			}
		}
	})
	return errors.Join(errs...)
}

// Wait blocks until the accept goroutines have ended (after Close).
func (m *MultiListener) Wait() { m.wg.Wait() }

type advertisedAddr struct{ hostport string }

// Network is "tcp".
func (a advertisedAddr) Network() string { return "tcp" }

// String is the advertised host:port.
func (a advertisedAddr) String() string { return a.hostport }

// ListenDual listens on host:port with TCP and with Raptor (UDP) on the same
// port number, and merges the two plus any extra listeners (which it takes
// over, closing them on failure). Port 0 picks a port free in both spaces
// (a few tries). The returned listener's Addr is the TCP address.
func (t *Transport) ListenDual(hostport string, extra ...net.Listener) (*MultiListener, error) {
	fail := func(err error) (*MultiListener, error) {
		for _, ln := range extra {
			ln.Close()
		}
		return nil, err
	}
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return fail(&AddrError{Input: hostport, Reason: "missing or malformed host:port"})
	}
	tries := 1
	if port == "0" || port == "" {
		tries = 20
	}
	var lastErr error
	for i := 0; i < tries; i++ {
		tln, err := t.ListenEndpoint(Endpoint{Scheme: SchemeTCP, Addr: net.JoinHostPort(host, port)})
		if err != nil {
			return fail(err)
		}
		_, p, _ := net.SplitHostPort(tln.Addr().String())
		rln, err := t.ListenEndpoint(Endpoint{Scheme: SchemeRaptor, Addr: net.JoinHostPort(host, p)})
		if err != nil {
			tln.Close()
			lastErr = err
			continue
		}
		return NewMultiListener(append([]net.Listener{tln, rln}, extra...)...), nil
	}
	return fail(fmt.Errorf("plugin: dual listen on %s: %w", hostport, lastErr))
}
