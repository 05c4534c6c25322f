package reliable

import "sync"

// bufPool recycles stream buffers by size class (4 KiB, 8 KiB, 16 KiB, ...,
// up to twice the most a stream holds), so that steady-state streaming
// allocates nothing and idle streams hold no buffer. One pool per endpoint;
// each class keeps at most poolDepth free buffers and lets the rest go.
//
// A stream buffer is linear: live bytes buf[head:] move to the front when
// the end is reached. grow keeps that move cheap by keeping at most half of
// a buffer live (a buffer twice the live bytes), so moving the live bytes
// costs at most one copy per byte written, and usually far less: a buffer
// exactly as big as its live bytes would move nearly all of them for every
// few bytes acknowledged or read.
type bufPool struct {
	mu      sync.Mutex
	classes []int
	free    [][][]byte
	dropped uint64 // buffers released to the garbage collector (class full)
}

const (
	minBufClass = 4 << 10
	poolDepth   = 4 // per class: enough for a stream's send and receive buffers to cycle
)

func newBufPool(maxSize int) *bufPool {
	p := &bufPool{}
	for c := minBufClass; ; c *= 2 { // powers of two, up to twice the most a stream holds (see grow)
		p.classes = append(p.classes, c)
		if c >= 2*maxSize {
			break
		}
	}
	p.free = make([][][]byte, len(p.classes))
	for i := range p.free {
		p.free[i] = make([][]byte, 0, poolDepth)
	}
	return p
}

// get returns an empty buffer with capacity of at least n.
func (p *bufPool) get(n int) []byte {
	for i, c := range p.classes {
		if c < n {
			continue
		}
		p.mu.Lock()
		if f := p.free[i]; len(f) > 0 {
			b := f[len(f)-1]
			f[len(f)-1] = nil
			p.free[i] = f[:len(f)-1]
			p.mu.Unlock()
			return b[:0]
		}
		p.mu.Unlock()
		return make([]byte, 0, c)
	}
	return make([]byte, 0, n)
}

// put returns b for reuse. Buffers not of a class size are dropped.
func (p *bufPool) put(b []byte) {
	c := cap(b)
	for i, cc := range p.classes {
		if cc != c {
			continue
		}
		p.mu.Lock()
		if len(p.free[i]) < poolDepth {
			p.free[i] = append(p.free[i], b[:0])
		} else {
			p.dropped++
		}
		p.mu.Unlock()
		return
	}
}

// grow returns buf with room for n more bytes: the live bytes buf[head:] move
// to the start of buf if they and the n bytes take at most half of it (or
// it is of the largest class), else to a buffer from the pool of twice
// that size.
func (p *bufPool) grow(buf []byte, head, n int) ([]byte, int) {
	live := len(buf) - head
	if cap(buf)-len(buf) >= n {
		return buf, head
	}
	if p.compacts(buf, live+n) {
		copy(buf, buf[head:])
		return buf[:live], 0
	}
	nb := p.get(p.growTo(live + n))
	nb = append(nb, buf[head:]...)
	if buf != nil {
		p.put(buf)
	}
	return nb, 0
}

// growCost is how many bytes of capacity grow(buf, head, n) would add (the
// new buffer's minus the old one's): 0 when buf has room.
func (p *bufPool) growCost(buf []byte, head, n int) int {
	live := len(buf) - head
	if cap(buf)-len(buf) >= n || p.compacts(buf, live+n) {
		return 0
	}
	want := p.growTo(live + n)
	for _, c := range p.classes {
		if c >= want {
			return c - cap(buf)
		}
	}
	return want - cap(buf)
}

// compacts reports whether grow moves want bytes to the start of buf
// rather than to a new buffer.
func (p *bufPool) compacts(buf []byte, want int) bool {
	return buf != nil && want <= cap(buf) && (2*want <= cap(buf) || cap(buf) >= p.classes[len(p.classes)-1])
}

// growTo is the size grow asks of the pool for want bytes: twice them,
// within the largest class (but never less than want).
func (p *bufPool) growTo(want int) int {
	return max(want, min(2*want, p.classes[len(p.classes)-1]))
}

// getOut returns a pooled datagram buffer with room for size bytes: a
// base-size one (Config.MaxDatagramSize) when that is enough, so that ACKs
// and small packets do not hold the large buffers of datagram size
// discovery (Config.MaxProbedDatagramSize).
func (e *endpoint) getOut(size int) *[]byte {
	if size > e.cfg.MaxDatagramSize && e.bigBufPool.New != nil {
		return e.bigBufPool.Get().(*[]byte)
	}
	return e.getBuf()
}

// putOut returns a buffer from getOut to its pool.
func (e *endpoint) putOut(b *[]byte) {
	if cap(*b) >= e.cfg.MaxProbedDatagramSize && e.bigBufPool.New != nil {
		*b = (*b)[:0]
		e.bigBufPool.Put(b)
		return
	}
	e.putBuf(b)
}
