package kmerge

import (
	"errors"
	"math/rand/v2"
	"slices"
	"testing"
)

// ints is a sorted stream of numbers; each number is tagged with its
// stream, to see ties taken in stream order.
type ints struct {
	id     int
	xs     []int
	at     int
	cur    int
	closed *int
	fail   error
}

func (r *ints) Next() (bool, error) {
	if r.fail != nil && r.at == len(r.xs)/2 {
		return false, r.fail
	}
	if r.at == len(r.xs) {
		return false, nil
	}
	r.cur, r.at = r.xs[r.at], r.at+1
	return true, nil
}

func (r *ints) Close() error { *r.closed++; return nil }

func byValueThenStream(a, b *ints) bool {
	if a.cur != b.cur {
		return a.cur < b.cur
	}
	return a.id < b.id
}

// The merge gives every item of every stream once, in order, ties in
// stream order, and closes every stream.
func TestMergeGivesEveryItemInOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		closed := 0
		var rs []*ints
		var want [][2]int // value, stream
		for id := range rng.IntN(6) {
			xs := make([]int, rng.IntN(20))
			for i := range xs {
				xs[i] = rng.IntN(30)
			}
			slices.Sort(xs)
			for _, x := range xs {
				want = append(want, [2]int{x, id})
			}
			rs = append(rs, &ints{id: id, xs: xs, closed: &closed})
		}
		slices.SortStableFunc(want, func(a, b [2]int) int {
			if a[0] != b[0] {
				return a[0] - b[0]
			}
			return a[1] - b[1]
		})
		m, err := New(rs, byValueThenStream)
		if err != nil {
			t.Fatal(err)
		}
		var got [][2]int
		for r, ok := m.Top(); ok; r, ok = m.Top() {
			got = append(got, [2]int{r.cur, r.id})
			if err := m.Advance(); err != nil {
				t.Fatal(err)
			}
		}
		m.Close()
		if !slices.Equal(got, want) {
			t.Fatalf("merged %v, want %v", got, want)
		}
		if closed != len(rs) {
			t.Fatalf("%d of %d streams closed", closed, len(rs))
		}
	}
}

// A stream that fails gives its error, and every stream is closed.
func TestMergeFailureClosesEveryStream(t *testing.T) {
	boom := errors.New("boom")
	closed := 0
	rs := []*ints{{id: 0, xs: []int{1, 2, 3}, closed: &closed}, {id: 1, xs: []int{1, 5, 6, 7}, fail: boom, closed: &closed}}
	m, err := New(rs, byValueThenStream)
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, ok := m.Top(); !ok {
			t.Fatal("the merge ended without the stream's error")
		}
		if err = m.Advance(); err != nil {
			break
		}
	}
	m.Close()
	if !errors.Is(err, boom) || closed != 2 {
		t.Fatalf("err %v, %d of 2 streams closed", err, closed)
	}
	closed = 0
	rs = []*ints{{id: 0, xs: []int{1}, closed: &closed}, {id: 1, xs: []int{}, fail: boom, closed: &closed}, {id: 2, xs: []int{3}, closed: &closed}}
	if _, err := New(rs, byValueThenStream); !errors.Is(err, boom) || closed != 3 {
		t.Fatalf("New: err %v, %d of 3 streams closed", err, closed)
	}
}
