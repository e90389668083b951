package main

import (
	"fmt"
	"path/filepath"
	"slices"
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

// -cal-train's held-out scores of the train rows come from the folds
// grouped by sentence, the very scores -cv-train then measures (it uses
// them as they are): each row scored by the weights fitted without its
// fold, which holds its sentence's twins too. Dealt row by row, as they
// were, a row's twin would be fitted on and the scores would differ.
func TestCalTrainScoresAreTheGroupedFoldsScores(t *testing.T) {
	rules := filepath.Join(t.TempDir(), "rules")
	writeRules(t, rules, map[string]string{
		"rules.yaml":     "version: test\n",
		"roles.yaml":     "prior:\n  background: 0.5\nnegated: drop\nlabels:\n  uses:\n    \"we use\": 1\n  compares:\n    \"than\": 1\n",
		"polarity.yaml":  "prior: {neutral: 1}\nnegated: flip\nlabels: {}\n",
		"pluralism.yaml": "negated: drop\nlabels: {}\n",
	})
	r, err := classify.LoadRules(rules)
	if err != nil {
		t.Fatal(err)
	}
	m := newModel(r.Role)
	var exs []classify.Example
	for i := range 30 {
		// Twins: one sentence citing two works, with the labels of each.
		s := fmt.Sprintf("We use the parser of [1] %c, faster than [2].", 'a'+i%26)
		exs = append(exs, classify.Example{Text: s, Gold: "uses"}, classify.Example{Text: s, Gold: []string{"compares", "background"}[i%2]})
		exs = append(exs, classify.Example{Text: fmt.Sprintf("Parsing was studied in [%d].", i), Gold: "background"})
	}
	sets := []dataset{m.dataset(r, classify.TaskRole, "hand/train", exs)}
	sets[0].use = useTrain
	o := options{lambda: 0.0001, balance: 1, size: 1, iters: 200, folds: 5, seed: 3, maxSlope: 2, calTrain: true}
	all := trainRows(sets, nil, -1)
	calTrain := [][][]float64{make([][]float64, len(exs))}
	m.trainHeldOut(sets, calTrain, all, o)
	grouped := [][][]float64{make([][]float64, len(exs))}
	m.scoreFolds(sets, all, groupedFolds(sets, o), grouped, o)
	for i := range exs {
		if !slices.Equal(calTrain[0][i], grouped[0][i]) {
			t.Fatalf("row %d (%q): -cal-train scores %v, grouped folds' %v", i, exs[i].Text, calTrain[0][i], grouped[0][i])
		}
	}
}
