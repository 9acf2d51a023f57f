package validate

import "math"

// idList maps service points (by hash of the id) to a small value and
// keeps their ids, for lists that may hold every service point of a large
// file (those short of history). The ids live in one byte buffer and the
// map's values hold no pointer, so the collector has nothing to scan: a
// map of 400,000 strings cost a 5-million-row run a tenth more CPU in
// garbage collection.
type idList struct {
	buf []byte
	m   *hashTab[idRef]
}

type idRef struct {
	off uint32
	n   uint16
	v   int16
}

func newIDList() *idList { return &idList{m: newHashTab[idRef]()} }

// put sets the value of id. An id kept again is not copied again.
func (l *idList) put(h uint64, id string, v int) {
	v16 := int16(max(min(v, math.MaxInt16), math.MinInt16))
	if ref, ok := l.m.get(h); ok {
		ref.v = v16
		l.m.put(h, ref)
		return
	}
	if len(id) > math.MaxUint16 {
		id = id[:math.MaxUint16]
	}
	l.m.put(h, idRef{off: uint32(len(l.buf)), n: uint16(len(id)), v: v16})
	l.buf = append(l.buf, id...)
}

func (l *idList) del(h uint64) { l.m.del(h) }

func (l *idList) len() int { return l.m.len() }

// each calls fn for every id and value, in no particular order.
func (l *idList) each(fn func(id string, v int)) {
	l.m.each(func(_ uint64, ref idRef) {
		fn(string(l.buf[ref.off:ref.off+uint32(ref.n)]), int(ref.v))
	})
}
