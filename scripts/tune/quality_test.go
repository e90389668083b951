package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/citecrawl/citecrawl/classify"
)

// TestCrossValidatedQuality guards the README's figures for the corpora
// without a train split: 5-fold cross-validated, the weights of each fold
// fitted without the rows it scores, with the shipped cues and settings.
// The shipped weights were fitted on all these rows, so `citecrawl eval`
// on them is not a quality figure; this is. Skipped without ../shared/data;
// the role and polarity folds (about a minute of fitting) also under -short
// and -race.
func TestCrossValidatedQuality(t *testing.T) {
	data := filepath.Join("..", "..", "..", "shared", "data")
	if _, err := os.Stat(data); err != nil {
		t.Skip("labelled data ../shared/data is absent: this test reads it there, never a copy")
	}
	rules, err := classify.LoadRules(filepath.Join("..", "..", "configs", "rules"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		task           string
		ls             *classify.LabelSet
		o              options
		train, dev, cv []string
		min            map[string]float64 // macro-F1 floor per scored corpus
		heavy          bool
	}{
		{classify.TaskPluralism, rules.Pluralism, options{lambda: 0.01, balance: 1, size: 0.75, iters: 1500, folds: 5, seed: 1, minWeight: 0.1, byLabel: true, maxSlope: 0.15},
			nil, nil, []string{"pluralism/dev.jsonl"}, map[string]float64{"pluralism/dev": minPluralism}, false},
		{classify.TaskPolarity, rules.Polarity, options{lambda: 0.001, balance: 0.85, size: 0.75, iters: 1500, folds: 5, seed: 1, minWeight: 0.1, byLabel: true, maxSlope: 2},
			nil, nil, []string{"athar/dev.tsv", "clinical/dev.jsonl"}, map[string]float64{"athar/dev": minAthar, "clinical/dev": minClinical}, true},
		{classify.TaskRole, rules.Role, options{lambda: 0.0001, balance: 1, size: 0.75, iters: 1500, folds: 5, seed: 1, minWeight: 0.1, maxSlope: 2},
			[]string{"scicite/train.jsonl", "acl-arc/train.jsonl"}, []string{"scicite/dev.jsonl", "acl-arc/dev.jsonl"}, []string{"act-3c/dev.csv"},
			map[string]float64{"act-3c/dev": minACT, "scicite/dev": 0.70, "acl-arc/dev": 0.55}, true},
	} {
		if tc.heavy && (testing.Short() || raceDetector) {
			t.Logf("%s: cross-validation skipped under -short and -race (run go test ./scripts/tune)", tc.task)
			continue
		}
		m := newModel(tc.ls)
		var sets []dataset
		for use, files := range map[string][]string{useTrain: tc.train, useDev: tc.dev, useCV: tc.cv} {
			for _, f := range files {
				d, err := m.load(rules, tc.task, use, filepath.Join(data, f))
				if err != nil {
					t.Fatal(err)
				}
				sets = append(sets, d)
			}
		}
		res := m.evaluate(sets, tc.o)
		for _, line := range res.lines {
			t.Log(line)
		}
		for _, f := range res.figures {
			if f.macroF1 < tc.min[f.name] {
				t.Errorf("%s: cross-validated macro-F1 %.3f fell below %.3f", f.name, f.macroF1, tc.min[f.name])
			}
			if f.ece > maxECE[f.name] {
				t.Errorf("%s: cross-validated ECE %.3f above %.3f", f.name, f.ece, maxECE[f.name])
			}
			if tc.task == classify.TaskPluralism && (f.vsNone < minVsNone || f.microF1 < minMicroF1) {
				t.Errorf("%s: pluralism versus none %.3f (floor %.3f), label-set micro-F1 %.3f (floor %.3f)",
					f.name, f.vsNone, minVsNone, f.microF1, minMicroF1)
			}
		}
	}
}

// The floors the test holds, a little under the figures measured with the
// shipped cues and settings (README, "Tagging files and measuring
// quality"). The issue's targets are pluralism 0.70 / 0.88 / 0.70, Athar
// 0.60, clinical 0.66, ACT 0.30 and ECE 0.05: where a floor is under its
// target, the target is not met, and the README says by how much.
const (
	minPluralism = 0.72 // measured 0.744 (seeds 2, 3: 0.724, 0.724)
	minVsNone    = 0.88 // 0.893 (0.888, 0.893)
	minMicroF1   = 0.71 // 0.729 (0.721, 0.721)
	minAthar     = 0.53 // 0.543 (0.549, 0.552)
	minClinical  = 0.60 // 0.612 (0.612, 0.623)
	minACT       = 0.24 // 0.253 (0.246, 0.249)
)

// maxECE per corpus, seed 1, cross-fitted (each row's confidence from the
// temperature and maps fitted without its fold): measured pluralism 0.042,
// Athar 0.039, clinical 0.033; ACT 0.056, SciCite
// dev 0.107 and ACL-ARC dev 0.139 (one map for all the role corpora).
var maxECE = map[string]float64{"pluralism/dev": 0.05, "athar/dev": 0.045, "clinical/dev": 0.045, "act-3c/dev": 0.06,
	"scicite/dev": 0.12, "acl-arc/dev": 0.15}
