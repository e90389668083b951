package main

import (
	"fmt"
	"testing"

	"github.com/citecrawl/citecrawl/classify"
)

// Rows of one sentence land in one fold, on every seed: copies of a
// sentence that differ only in case, spacing, punctuation or citation
// numbers too. Dealt row by row at random, some of the 40 pairs would be
// split on every seed.
func TestGroupedFoldsKeepASentenceTogether(t *testing.T) {
	d := dataset{name: "hand/train", use: useTrain, task: classify.TaskRole}
	for i := range 40 {
		d.rows = append(d.rows,
			row{text: fmt.Sprintf("We use the parser of sentence %c%c [1].", 'a'+i%26, 'a'+i/26)},
			row{text: fmt.Sprintf("we use  the Parser of sentence %c%c (2) ", 'a'+i%26, 'a'+i/26)})
	}
	for i := range 20 {
		d.rows = append(d.rows, row{text: fmt.Sprintf("A sentence of its own, number %c.", 'a'+i)})
	}
	other := dataset{name: "hand/intents", use: useTrain, task: classify.TaskIntent, rows: []row{{text: "We use the parser of sentence aa [1]."}}}
	for seed := uint64(1); seed <= 10; seed++ {
		o := options{folds: 5, seed: seed}
		fold := groupedFolds([]dataset{d, other}, o)
		if len(fold) != len(d.rows) {
			t.Fatalf("seed %d: %d rows dealt, want the %d of the role train file (not the intents')", seed, len(fold), len(d.rows))
		}
		size := make([]int, o.folds)
		for i := 0; i < 80; i += 2 {
			if a, b := fold[[2]int{0, i}], fold[[2]int{0, i + 1}]; a != b {
				t.Errorf("seed %d: %q in fold %d, %q in fold %d", seed, d.rows[i].text, a, d.rows[i+1].text, b)
			}
		}
		for _, f := range fold {
			size[f]++
		}
		for f, n := range size {
			if n < 18 || n > 22 { // 100 rows in pairs and singles: even within a pair
				t.Errorf("seed %d: fold %d has %d rows, want about 20 (%v)", seed, f, n, size)
			}
		}
	}
}

// The map that gives a cross-validated train row its confidence is fitted
// without the row's fold. Every row has the same scores; fold 0's rows
// are all right and fold 1's all wrong. A map fitted on every row would
// say about 0.5 for all; fitted without the row's own fold it says
// nearly 0 for fold 0 (fitted on fold 1's mistakes) and nearly 1 for
// fold 1, which is what the figure then (rightly) counts as badly
// calibrated.
func TestCrossFitMapsLeaveTheRowsFoldOut(t *testing.T) {
	ls := &classify.LabelSet{Name: "roles.yaml", Labels: []string{"background", "compares", "uses"}}
	m := newModel(ls)
	d := dataset{name: "hand/train", use: useTrain, task: classify.TaskRole, of: func(i int) string { return m.ls.Labels[i] }}
	var heldOut [][]float64
	fold := map[[2]int]int{}
	for i := range 200 {
		gold := 2 // "uses", the label the scores predict
		if i >= 100 {
			gold = 0
		}
		d.rows = append(d.rows, row{gold: []int{gold}, marker: true})
		heldOut = append(heldOut, []float64{0, 0, 1})
		fold[[2]int{0, i}] = i / 100
	}
	tags := m.crossFit([]dataset{d}, [][][]float64{heldOut}, fold, options{folds: 2, maxSlope: 2, calTrain: true})
	for _, i := range []int{0, 99} {
		if tg := tags[[2]int{0, i}]; tg.label != "uses" || tg.conf > 0.1 {
			t.Errorf("row %d (fold 0, right): %s at %.3f, want uses under 0.1 (the map of fold 1's mistakes)", i, tg.label, tg.conf)
		}
	}
	for _, i := range []int{100, 199} {
		if tg := tags[[2]int{0, i}]; tg.label != "uses" || tg.conf < 0.9 {
			t.Errorf("row %d (fold 1, wrong): %s at %.3f, want uses over 0.9 (the map of fold 0's right tags)", i, tg.label, tg.conf)
		}
	}
	all := m.fitCalibration([]dataset{d}, [][][]float64{heldOut}, nil, options{maxSlope: 2})
	if _, p := all.tag(d, d.rows[0], heldOut[0]); p < 0.4 || p > 0.6 {
		t.Errorf("the map fitted on every row: %.3f, want about 0.5", p)
	}
}
