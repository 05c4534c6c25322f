package reliable

import (
	"context"
	"net"
	"testing"
	"time"

	"golang.org/x/net/nettest"
)

// TestConnConformance runs the standard net.Conn conformance suite over a pair
// of Raptor streams on real loopback UDP.
func TestConnConformance(t *testing.T) {
	nettest.TestConn(t, func() (c1, c2 net.Conn, stop func(), err error) {
		l, err := Listen("127.0.0.1:0", nil)
		if err != nil {
			return nil, nil, nil, err
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s, err := Dial(ctx, l.Addr().String(), pin(l, nil))
		if err != nil {
			l.Close()
			return nil, nil, nil, err
		}
		st, err := s.OpenStream(ctx)
		if err != nil {
			s.CloseWithError(0, "")
			l.Close()
			return nil, nil, nil, err
		}
		acc, err := l.AcceptStream(ctx)
		if err != nil {
			s.CloseWithError(0, "")
			l.Close()
			return nil, nil, nil, err
		}
		stop = func() {
			st.Close()
			acc.Close()
			s.CloseWithError(0, "test done")
			l.Close()
		}
		return st, acc, stop, nil
	})
}
