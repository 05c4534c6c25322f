package kafkarelay

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"sync"
)

// MaxRewriteFrame is the largest response this package buffers to rewrite;
// a larger one (a huge Fetch) is forwarded as it came. It is above the
// default fetch.max.bytes of librdkafka and franz-go (50 MiB).
const MaxRewriteFrame = 128 << 20

// maxFrame is the largest length prefix believed at all; beyond it the
// connection is not Kafka framing and passes unparsed.
const maxFrame = 1 << 30

// maxPending bounds the requests remembered per connection while their
// responses are outstanding (Produce with acks=0 never gets one).
const maxPending = 4096

type reqInfo struct {
	key, version int16
}

// conn wraps one upstream connection of the relay: Write follows the
// requests the client sends (their key, version and correlation ID, bytes
// unchanged), Read returns the upstream's responses with broker addresses
// rewritten. The relay calls Write from one goroutine and Read from
// another.
type conn struct {
	net.Conn
	m         mapper
	onFail    func(err error) // a response that did not parse
	onRewrite func(key int16) // a response rewritten

	// request side, used by Write only
	reqHdr  [12]byte // length, key, version, correlation ID
	reqHdrN int
	reqLeft int64 // bytes of the current request still to pass
	reqBad  bool  // not Kafka framing: stop following

	mu      sync.Mutex
	pending map[int32]reqInfo
	order   []int32 // correlation IDs in the order sent, for the bound

	// response side, used by Read only
	out     []byte // bytes ready for the client
	pass    int64  // bytes of the current response to copy unparsed
	raw     bool   // not Kafka framing: copy everything unparsed
	buf     []byte // frame being assembled
	readErr error  // sticky error after out drains
}

func newConn(up net.Conn, m mapper, onFail func(error)) *conn {
	return &conn{Conn: up, m: m, onFail: onFail, pending: map[int32]reqInfo{}}
}

// Write forwards p unchanged, noting each request whose response needs
// rewriting.
func (c *conn) Write(p []byte) (int, error) {
	c.follow(p)
	return c.Conn.Write(p)
}

func (c *conn) follow(b []byte) {
	for len(b) > 0 && !c.reqBad {
		if c.reqLeft > 0 {
			n := min(int64(len(b)), c.reqLeft)
			c.reqLeft -= n
			b = b[n:]
			continue
		}
		n := copy(c.reqHdr[c.reqHdrN:], b)
		c.reqHdrN += n
		b = b[n:]
		if c.reqHdrN < len(c.reqHdr) {
			return
		}
		c.reqHdrN = 0
		size := int32(binary.BigEndian.Uint32(c.reqHdr[0:]))
		if size < 8 || size > maxFrame {
			c.reqBad = true
			return
		}
		c.reqLeft = int64(size) - 8
		key := int16(binary.BigEndian.Uint16(c.reqHdr[4:]))
		version := int16(binary.BigEndian.Uint16(c.reqHdr[6:]))
		corr := int32(binary.BigEndian.Uint32(c.reqHdr[8:]))
		if tracked(key, version) {
			c.remember(corr, reqInfo{key, version})
		}
	}
}

func (c *conn) remember(corr int32, ri reqInfo) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pending[corr] = ri
	c.order = append(c.order, corr)
	if len(c.order) > 2*maxPending { // answered IDs behind an unanswered one
		live := c.order[:0]
		for _, id := range c.order {
			if _, ok := c.pending[id]; ok {
				live = append(live, id)
			}
		}
		c.order = live
	}
	for len(c.pending) > maxPending { // forget the oldest: never answered
		delete(c.pending, c.order[0])
		c.order = c.order[1:]
	}
}

func (c *conn) take(corr int32) (reqInfo, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ri, ok := c.pending[corr]
	if ok {
		delete(c.pending, corr)
	}
	// Drop answered IDs from the front so order stays short when responses
	// come in order, as Kafka sends them.
	for len(c.order) > 0 {
		if _, live := c.pending[c.order[0]]; live {
			break
		}
		c.order = c.order[1:]
	}
	return ri, ok
}

// Read returns response bytes, rewritten where they name brokers.
func (c *conn) Read(p []byte) (int, error) {
	for len(c.out) == 0 {
		if c.readErr != nil {
			return 0, c.readErr
		}
		if c.raw {
			return c.Conn.Read(p)
		}
		if c.pass > 0 {
			n, err := c.Conn.Read(p[:min(int64(len(p)), c.pass)])
			c.pass -= int64(n)
			if err == io.EOF && c.pass > 0 {
				err = io.ErrUnexpectedEOF
			}
			return n, err
		}
		c.next()
	}
	n := copy(p, c.out)
	c.out = c.out[n:]
	return n, nil
}

// next reads the next response header and either assembles and rewrites
// the response into out, or queues its header in out and the rest as
// pass-through bytes.
func (c *conn) next() {
	var hdr [8]byte // length, correlation ID
	n, err := io.ReadFull(c.Conn, hdr[:])
	if err != nil {
		c.out = append(c.buf[:0], hdr[:n]...)
		if err == io.ErrUnexpectedEOF || n == 0 {
			err = eofOr(err, n)
		}
		c.readErr = err
		return
	}
	size := int32(binary.BigEndian.Uint32(hdr[0:]))
	if size < 4 || size > maxFrame {
		c.raw = true
		c.out = append(c.buf[:0], hdr[:]...)
		return
	}
	corr := int32(binary.BigEndian.Uint32(hdr[4:]))
	ri, ok := c.take(corr)
	bodyLen := int64(size) - 4
	if !ok || size > MaxRewriteFrame {
		c.out = append(c.buf[:0], hdr[:]...)
		c.pass = bodyLen
		return
	}
	frame := append(c.buf[:0], hdr[:]...)
	frame = append(frame, make([]byte, bodyLen)...)
	if _, err := io.ReadFull(c.Conn, frame[8:]); err != nil {
		c.readErr = fmt.Errorf("kafkarelay: upstream ended inside a response of %d bytes: %w", size, err)
		return
	}
	body, rerr := rewriteResponse(c.m, ri.key, ri.version, frame[8:])
	switch {
	case rerr != nil:
		if c.onFail != nil {
			c.onFail(rerr)
		}
	case body != nil:
		if c.onRewrite != nil {
			c.onRewrite(ri.key)
		}
		binary.BigEndian.PutUint32(frame[0:], uint32(len(body)+4))
		frame = append(frame[:8], body...)
	}
	c.out = frame
	if cap(frame) <= 1<<20 {
		c.buf = frame[:0] // reuse small buffers; let big ones go
	} else {
		c.buf = nil
	}
}

func eofOr(err error, n int) error {
	if n == 0 {
		return err // io.EOF at a frame boundary: a clean end
	}
	return io.ErrUnexpectedEOF
}

// CloseWrite half-closes the upstream connection.
func (c *conn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return fmt.Errorf("kafkarelay: %T cannot half-close", c.Conn)
}
