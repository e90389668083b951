package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/citecrawl/citecrawl/classify"
)

// TestCrossValidatedQuality guards the README's figures for the corpora
// without a train split: 5-fold cross-validated, the weights of each fold
// fitted without the rows it scores, with the shipped cues and settings
// (the induced cues of the rule file are not read: each fold picks its
// own from its training rows, as the command does).
// The shipped weights were fitted on all these rows, so `citecrawl eval`
// on them is not a quality figure; this is. Skipped without ../shared/data;
// the role and polarity folds (about a minute of fitting) also under -short
// and -race.
func TestCrossValidatedQuality(t *testing.T) {
	data := filepath.Join("..", "..", "..", "shared", "data")
	if _, err := os.Stat(data); err != nil {
		t.Skip("labelled data ../shared/data is absent: this test reads it there, never a copy")
	}
	rules := filepath.Join("..", "..", "configs", "rules")
	for _, tc := range []struct {
		task           string
		o              options
		train, dev, cv []string
		min            map[string]float64 // macro-F1 floor per scored corpus
		heavy          bool
	}{
		{classify.TaskPluralism, options{lambda: 0.01, balance: 1, size: 0.75, iters: 1500, folds: 5, seed: 1, minWeight: 0.1, byLabel: true, minPerLabel: 50, maxSlope: 0.15},
			nil, nil, []string{"pluralism/dev.jsonl"}, map[string]float64{"pluralism/dev": minPluralism}, false},
		{classify.TaskPolarity, options{lambda: 0.001, balance: 0.85, size: 0.75, iters: 1500, folds: 5, seed: 1, minWeight: 0.1, byLabel: true, maxSlope: 2,
			induce: 100, induceMinRows: 8, induceLambda: 0.01},
			nil, nil, []string{"athar/dev.tsv", "clinical/dev.jsonl"}, map[string]float64{"athar/dev": minAthar, "clinical/dev": minClinical}, true},
		{classify.TaskRole, options{lambda: 0.0001, balance: 0.5, size: 0.75, iters: 1500, folds: 5, seed: 1, minWeight: 0.1, maxSlope: 2, maxSlopeNoMarker: 0.2, calTrain: true, cvTrain: true},
			[]string{"scicite/train.jsonl", "acl-arc/train.jsonl"}, []string{"acl-arc/dev.jsonl"}, []string{"act-3c/dev.csv", "scicite/dev.jsonl"},
			map[string]float64{"act-3c/dev": minACT, "scicite/dev": minSciCite, "acl-arc/dev": minACLARC, "acl-arc/dev/unseen": minACLARCUnseen, "acl-arc/train": minACLARCTrain}, true},
	} {
		if tc.heavy && (testing.Short() || raceDetector) {
			t.Logf("%s: cross-validation skipped under -short and -race (run go test ./scripts/tune)", tc.task)
			continue
		}
		var sources []source
		for _, u := range []struct {
			use   string
			files []string
		}{{useTrain, tc.train}, {useDev, tc.dev}, {useCV, tc.cv}} { // in the command's order: the folds depend on it
			for _, f := range u.files {
				sources = append(sources, source{u.use, filepath.Join(data, f)})
			}
		}
		m, sets, err := setup(rules, tc.task, sources, tc.o)
		if err != nil {
			t.Fatal(err)
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
	minPluralism    = 0.73  // measured 0.742 (seeds 2, 3: 0.735, 0.729), rules 2026.11.12
	minVsNone       = 0.90  // 0.906 (0.902, 0.893)
	minMicroF1      = 0.72  // 0.732 (0.731, 0.709)
	minAthar        = 0.545 // 0.555 (0.545, 0.554), rules 2026.11.14 (contrast scope)
	minClinical     = 0.615 // 0.626 (0.627, 0.619), rules 2026.11.14
	minACT          = 0.26  // 0.264 (0.255, 0.260)
	minSciCite      = 0.80  // 0.804 (0.797, 0.795), SciCite dev cross-validated (its rows fit the section weights)
	minACLARC       = 0.55  // 0.559, ACL-ARC dev, never fitted on
	minACLARCUnseen = 0.42  // 0.432, the 76 ACL-ARC dev rows whose sentence no train row has
	minACLARCTrain  = 0.41  // 0.423 (0.412, 0.431), ACL-ARC train cross-validated, grouped by sentence (-cv-train)
)

// maxECE per corpus, seed 1, cross-fitted (each row's tag and confidence
// from the temperature and maps fitted without its fold): measured
// pluralism 0.033 (none's own map), Athar 0.028, clinical 0.028 (2026.11.14), ACT
// 0.013, SciCite (its own intent map) 0.028, and ACL-ARC (its own map for
// sentences without a marker, fitted with the train rows' held-out scores
// of folds grouped by sentence, slope at most 0.2; 2026.11.15) 0.009 on
// its 1,588 train rows cross-validated ("acl-arc/train", the target's
// measure), 0.031 on the 76 dev rows whose sentence no train row has
// ("acl-arc/dev/unseen") and 0.066 on all 114 dev rows (over 0.05 on the
// 38 whose sentence the train file has: not met, and within the noise of
// 114 rows, see the README).
var maxECE = map[string]float64{"pluralism/dev": 0.04, "athar/dev": 0.04, "clinical/dev": 0.04, "act-3c/dev": 0.02,
	"scicite/dev": 0.035, "acl-arc/dev": 0.075, "acl-arc/dev/unseen": 0.04, "acl-arc/train": 0.05}
