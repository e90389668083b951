// Package kmerge reads sorted streams as one, in order: the k-way merge
// (on a heap) of the external sorts that keep memory flat in the record
// count, reprocess's label logs and the sink's index runs.
package kmerge

import "container/heap"

// Reader is one sorted stream, positioned on its current item: Next moves
// it to the next one, false at its end.
type Reader interface {
	Next() (bool, error)
	Close() error
}

// Merge reads its readers as one: Top is the reader whose current item
// comes next by less, Advance moves past that item.
type Merge[R Reader] struct {
	h readers[R]
}

// New merges readers, each moved to its first item here; one that is
// empty is closed. On an error every reader is closed.
func New[R Reader](rs []R, less func(a, b R) bool) (*Merge[R], error) {
	m := &Merge[R]{h: readers[R]{less: less}}
	for i, r := range rs {
		ok, err := r.Next()
		if err != nil {
			m.Close()
			for _, r := range rs[i:] {
				_ = r.Close()
			}
			return nil, err
		}
		if !ok {
			_ = r.Close()
			continue
		}
		m.h.rs = append(m.h.rs, r)
	}
	heap.Init(&m.h)
	return m, nil
}

// Top is the reader whose current item comes next; false when every
// reader is at its end.
func (m *Merge[R]) Top() (R, bool) {
	if len(m.h.rs) == 0 {
		var none R
		return none, false
	}
	return m.h.rs[0], true
}

// Advance moves Top's reader to its next item, closing it at its end.
func (m *Merge[R]) Advance() error {
	ok, err := m.h.rs[0].Next()
	if err != nil {
		return err
	}
	if ok {
		heap.Fix(&m.h, 0)
		return nil
	}
	return heap.Pop(&m.h).(R).Close()
}

// Close closes the readers not at their end yet.
func (m *Merge[R]) Close() {
	for _, r := range m.h.rs {
		_ = r.Close()
	}
	m.h.rs = nil
}

// readers is the heap of a Merge.
type readers[R Reader] struct {
	rs   []R
	less func(a, b R) bool
}

func (h readers[R]) Len() int           { return len(h.rs) }
func (h readers[R]) Less(i, j int) bool { return h.less(h.rs[i], h.rs[j]) }
func (h readers[R]) Swap(i, j int)      { h.rs[i], h.rs[j] = h.rs[j], h.rs[i] }
func (h *readers[R]) Push(x any)        { h.rs = append(h.rs, x.(R)) }
func (h *readers[R]) Pop() any {
	x := h.rs[len(h.rs)-1]
	h.rs = h.rs[:len(h.rs)-1]
	return x
}
