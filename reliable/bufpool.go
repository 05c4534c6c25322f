package reliable

import "sync"

// bufPool recycles stream buffers by size class (4 KiB, 8 KiB, 16 KiB, ...,
// up to the most a stream holds), so that steady-state streaming allocates
// nothing and idle streams hold no buffer. One pool per endpoint; each class
// keeps at most poolDepth free buffers, and the pool at most poolMaxFree
// bytes of them; the rest go to the garbage collector.
//
// A stream buffer is a ring (ringPos): the byte at stream offset o is held
// at buf[(o-base) mod len(buf)], len(buf) a power of two, base the lowest
// live offset when the ring was taken (so that a ring the reader empties
// often reuses its first, cache-warm bytes). Held bytes never move:
// acknowledging (send side) or reading (receive side) only moves the lowest
// live offset, and the bytes written next take the place of the ones
// retired. Only growth copies, into a ring at least twice as large, so a
// byte is copied by growth at most once on average over the life of a
// stream and not at all once the ring has reached its steady size.
type bufPool struct {
	mu      sync.Mutex
	classes []int
	free    [][][]byte
	freeLen int    // bytes of capacity held in free
	dropped uint64 // buffers released to the garbage collector (class or pool full)
}

const (
	minBufClass = 4 << 10
	poolDepth   = 4 // per class: enough for a stream's send and receive buffers to cycle
	// poolMaxFree bounds the free bytes an endpoint keeps: a bulk stream's
	// 4 MiB rings cycle, but an endpoint that carried one does not keep
	// poolDepth of every class up to them (30 MiB) once it is idle.
	poolMaxFree = 8 << 20
)

func newBufPool(maxSize int) *bufPool {
	p := &bufPool{}
	for c := minBufClass; ; c *= 2 { // powers of two, up to a ring of the most a stream holds
		p.classes = append(p.classes, c)
		if c >= maxSize {
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
			p.freeLen -= c
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
		if len(p.free[i]) < poolDepth && p.freeLen+c <= poolMaxFree {
			p.free[i] = append(p.free[i], b[:0])
			p.freeLen += c
		} else {
			p.dropped++
		}
		p.mu.Unlock()
		return
	}
}

// ringSize is the length of the ring grown for n bytes: the smallest power
// of two of at least n and minBufClass (a class size within the classes).
func ringSize(n int) int {
	c := minBufClass
	for c < n {
		c *= 2
	}
	return c
}

// growRing returns a ring of at least n bytes, and its base, that holds the
// bytes of ring buf (of base base) at stream offsets [lo, hi) (hi-lo <= n):
// buf itself when it is big enough, else a larger ring from the pool, of
// base lo, buf going back to the pool.
func (p *bufPool) growRing(buf []byte, base, lo, hi uint64, n int) ([]byte, uint64) {
	if len(buf) >= n {
		return buf, base
	}
	nb := p.get(ringSize(n))
	nb = nb[:cap(nb)]
	for off := lo; off < hi && buf != nil; {
		b := ringSpan(buf, off-base, hi-off)
		ringWrite(nb, off-lo, b)
		off += uint64(len(b))
	}
	if buf != nil {
		p.put(buf)
	}
	return nb, lo
}

// growCost is how many bytes of capacity growRing(buf, ..., n) adds (the
// new ring's minus the old one's): 0 when buf has room.
func growCost(buf []byte, n int) int {
	if len(buf) >= n {
		return 0
	}
	return ringSize(n) - len(buf)
}

// The ring helpers below take offsets relative to the ring's base.

// ringPos is where relative offset off is held in ring buf.
func ringPos(buf []byte, off uint64) int { return int(off & uint64(len(buf)-1)) }

// ringSpan returns the bytes of ring buf at offsets [off, off+n) that are
// contiguous in buf: all n of them, or those up to buf's end (the rest start
// at buf[0]).
func ringSpan(buf []byte, off, n uint64) []byte {
	i := ringPos(buf, off)
	return buf[i : i+int(min(n, uint64(len(buf)-i)))]
}

// ringWrite copies p to offsets [off, off+len(p)) of ring buf
// (len(p) <= len(buf)).
func ringWrite(buf []byte, off uint64, p []byte) {
	n := copy(buf[ringPos(buf, off):], p)
	copy(buf, p[n:])
}

// ringRead copies the bytes of ring buf at offsets [off, off+len(p))
// to p (len(p) <= len(buf)).
func ringRead(buf []byte, off uint64, p []byte) {
	n := copy(p, buf[ringPos(buf, off):])
	copy(p[n:], buf)
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
