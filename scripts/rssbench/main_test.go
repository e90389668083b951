package main

import "testing"

func TestSpreadGivesLowestMedianHighest(t *testing.T) {
	rate := func(f figures) float64 { return float64(f.records) / f.wall }
	for _, c := range []struct {
		walls []float64
		want  [3]float64
	}{
		{[]float64{2}, [3]float64{50, 50, 50}},
		{[]float64{1, 4, 2}, [3]float64{25, 50, 100}},      // odd: the middle one, whatever the order
		{[]float64{4, 1, 2, 5}, [3]float64{20, 37.5, 100}}, // even: the mean of the middle two (25 and 50)
	} {
		runs := make([]figures, len(c.walls))
		for i, w := range c.walls {
			runs[i] = figures{records: 100, wall: w}
		}
		if got := spread(runs, rate); got != c.want {
			t.Errorf("spread of walls %v = %v, want %v", c.walls, got, c.want)
		}
	}
}
