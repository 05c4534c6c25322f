package reliable

import (
	"context"
	"errors"
	"net"
	"syscall"
	"testing"
	"time"
)

// TestDialClosedLocalListener: a client with no other way to authenticate
// the server pins this process's listener; once that listener has closed, a
// dial to its address fails as a dial to a closed TCP port does (a
// *net.OpError "dial" around ECONNREFUSED, which Kafka clients retry against
// another broker), not with ErrNoServerAuth, a configuration error they give
// up on. A listener opened again at the address is pinned as before.
func TestDialClosedLocalListener(t *testing.T) {
	l, err := Listen("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := Dial(ctx, addr, &Config{HandshakeTimeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("dial of this process's listener: %v", err)
	}
	s.Close()
	l.Close()
	_, err = Dial(ctx, addr, nil)
	var oe *net.OpError
	if !errors.As(err, &oe) || oe.Op != "dial" || !errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, ErrNoServerAuth) {
		t.Fatalf("dial of a closed local listener: %v, want a dial *net.OpError around ECONNREFUSED", err)
	}
	l2, err := Listen(addr, nil)
	if err != nil {
		t.Logf("not checked: a listener opened again (port of %s taken meanwhile: %v)", addr, err)
		return
	}
	defer l2.Close()
	s2, err := Dial(ctx, addr, &Config{HandshakeTimeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("dial of the listener opened again at %s: %v", addr, err)
	}
	s2.Close()
}
