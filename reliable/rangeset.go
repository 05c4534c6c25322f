package reliable

// span is a half-open interval [lo, hi) of stream offsets or packet numbers.
type span struct{ lo, hi uint64 }

// rangeSet is a sorted set of disjoint, non-adjacent spans in a slice. It is
// small in practice (one span per hole); a peer can make it large (up to
// the limits that the callers enforce), so lookups are binary searches and
// only inserting or deleting a span moves memory.
type rangeSet struct{ s []span }

// firstEnding returns the index of the first span whose hi >= x.
func (r *rangeSet) firstEnding(x uint64) int {
	lo, hi := 0, len(r.s)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if r.s[m].hi < x {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

// add inserts [lo, hi), merging with neighbours. It returns how many of the
// bytes were not already present.
func (r *rangeSet) add(lo, hi uint64) (added uint64) {
	if lo >= hi {
		return 0
	}
	s := r.s
	i := r.firstEnding(lo) // first span whose hi >= lo (may touch or overlap)
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
	i := r.firstEnding(lo + 1) // the first span with hi > lo
	if i == len(s) || s[i].lo >= hi {
		return
	}
	if c := s[i]; c.lo < lo && c.hi > hi { // split
		s = append(s, span{})
		copy(s[i+2:], s[i+1:])
		s[i] = span{c.lo, lo}
		s[i+1] = span{hi, c.hi}
		r.s = s
		return
	}
	if s[i].lo < lo {
		s[i].hi = lo
		i++
	}
	j := i
	for j < len(s) && s[j].hi <= hi {
		j++
	}
	if j < len(s) && s[j].lo < hi {
		s[j].lo = hi
	}
	r.s = append(s[:i], s[j:]...)
}

// contains reports whether all of [lo, hi) is in the set.
func (r *rangeSet) contains(lo, hi uint64) bool {
	i := r.firstEnding(hi) // the only span that can hold [lo, hi)
	return i < len(r.s) && r.s[i].lo <= lo
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
