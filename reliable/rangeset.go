package reliable

// span is a half-open interval [lo, hi) of stream offsets or packet numbers.
type span struct{ lo, hi uint64 }

// rangeSet is a sorted set of disjoint, non-adjacent spans. It is small in
// practice (one span per hole), so a slice with linear merges is fastest.
type rangeSet struct{ s []span }

// add inserts [lo, hi), merging with neighbours. It returns how many of the
// bytes were not already present.
func (r *rangeSet) add(lo, hi uint64) (added uint64) {
	if lo >= hi {
		return 0
	}
	s := r.s
	// first span whose hi >= lo (may touch or overlap)
	i := 0
	for i < len(s) && s[i].hi < lo {
		i++
	}
	j := i
	added = hi - lo
	nlo, nhi := lo, hi
	for j < len(s) && s[j].lo <= hi {
		// overlap of [lo,hi) with s[j]
		olo, ohi := max(lo, s[j].lo), min(hi, s[j].hi)
		if ohi > olo {
			added -= ohi - olo
		}
		nlo, nhi = min(nlo, s[j].lo), max(nhi, s[j].hi)
		j++
	}
	switch {
	case i == j:
		s = append(s, span{})
		copy(s[i+1:], s[i:])
		s[i] = span{nlo, nhi}
	default:
		s[i] = span{nlo, nhi}
		s = append(s[:i+1], s[j:]...)
	}
	r.s = s
	return added
}

// remove deletes [lo, hi) from the set.
func (r *rangeSet) remove(lo, hi uint64) {
	if lo >= hi {
		return
	}
	s := r.s
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c.hi <= lo || c.lo >= hi {
			continue
		}
		switch {
		case c.lo < lo && c.hi > hi: // split
			s = append(s, span{})
			copy(s[i+2:], s[i+1:])
			s[i] = span{c.lo, lo}
			s[i+1] = span{hi, c.hi}
			r.s = s
			return
		case c.lo < lo:
			s[i].hi = lo
		case c.hi > hi:
			s[i].lo = hi
		default:
			s = append(s[:i], s[i+1:]...)
			i--
		}
	}
	r.s = s
}

// contains reports whether all of [lo, hi) is in the set.
func (r *rangeSet) contains(lo, hi uint64) bool {
	for _, c := range r.s {
		if c.lo <= lo && c.hi >= hi {
			return true
		}
		if c.lo > lo {
			return false
		}
	}
	return false
}

// first returns the lowest span.
func (r *rangeSet) first() (span, bool) {
	if len(r.s) == 0 {
		return span{}, false
	}
	return r.s[0], true
}

// trimBelow removes everything below x.
func (r *rangeSet) trimBelow(x uint64) { r.remove(0, x) }

func (r *rangeSet) empty() bool { return len(r.s) == 0 }

func (r *rangeSet) clear() { r.s = r.s[:0] }
