package main

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/citecrawl/citecrawl/classify"
)

// A fit on a small hand-made gold file must find the cue that tells the
// labels apart, keep a cue the data never shows at 1, and write the
// weights back into the rule file with its comments in place.
func TestFitAndWrite(t *testing.T) {
	dir := t.TempDir()
	rules := filepath.Join(dir, "rules")
	files := map[string]string{
		"rules.yaml": "version: test\n",
		"roles.yaml": `# Roles for the test.
prior:
  background: 0.5

negated: drop

labels:
  uses:
    # What is taken over.
    "we use": 0.1
    "never seen": 0.3
  compares:
    "than": 0.2

sections:
  "method": {uses: 0.5} # methods use things
`,
		"polarity.yaml":  "prior: {neutral: 1}\nnegated: flip\nlabels: {}\n",
		"pluralism.yaml": "negated: drop\nlabels: {}\n",
	}
	if err := os.MkdirAll(rules, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(rules, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Train and dev are different sentences with the same cues: the dev
	// figure says whether what was fitted on train holds on rows it never saw.
	var train, dev strings.Builder
	for i := range 20 {
		fmt.Fprintf(&train, "{\"text\":\"We use the parser of [%d].\",\"label\":\"Uses\"}\n", i)
		fmt.Fprintf(&train, "{\"text\":\"Parsing was studied in [%d].\",\"label\":\"Background\"}\n", i)
		fmt.Fprintf(&train, "{\"text\":\"Ours is faster than [%d].\",\"label\":\"CompareOrContrast\"}\n", i)
	}
	for i := range 5 {
		fmt.Fprintf(&dev, "{\"text\":\"For tagging we use the lexicon of [%d].\",\"label\":\"Uses\"}\n", i)
		fmt.Fprintf(&dev, "{\"text\":\"Morphology is described in [%d].\",\"label\":\"Background\"}\n", i)
		fmt.Fprintf(&dev, "{\"text\":\"The results are better than those of [%d].\",\"label\":\"CompareOrContrast\"}\n", i)
	}
	trainPath := filepath.Join(dir, "acl-arc", "train.jsonl")
	devPath := filepath.Join(dir, "acl-arc", "dev.jsonl")
	if err := os.MkdirAll(filepath.Dir(trainPath), 0o755); err != nil {
		t.Fatal(err)
	}
	for p, text := range map[string]string{trainPath: train.String(), devPath: dev.String()} {
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	r, err := classify.LoadRules(rules)
	if err != nil {
		t.Fatal(err)
	}
	m := newModel(r.Role)
	var sets []dataset
	for use, p := range map[string]string{useTrain: trainPath, useDev: devPath} {
		d, err := m.load(r, classify.TaskRole, use, p)
		if err != nil {
			t.Fatal(err)
		}
		sets = append(sets, d)
	}
	o := options{lambda: 0.0001, balance: 1, size: 1, iters: 300, folds: 5, maxSlope: 2}
	res := m.evaluate(sets, o)
	if len(res.lines) != 1 || !strings.Contains(res.lines[0], "acl-arc/dev") || res.mean < 0.99 {
		t.Errorf("scored %v (mean %.3f), want the dev file alone, all right", res.lines, res.mean)
	}
	if res.cal.temperature <= 0 {
		t.Errorf("temperature %v", res.cal.temperature)
	}
	theta := res.theta
	if err := m.write(filepath.Join(rules, "roles.yaml"), theta, res); err != nil {
		t.Fatal(err)
	}

	written, err := os.ReadFile(filepath.Join(rules, "roles.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, keep := range []string{"# Roles for the test.", "    # What is taken over.", "# methods use things", `"never seen": 1`} {
		if !strings.Contains(string(written), keep) {
			t.Errorf("written file lost %q:\n%s", keep, written)
		}
	}
	r2, err := classify.LoadRules(rules)
	if err != nil {
		t.Fatalf("written rules do not load: %v\n%s", err, written)
	}
	c := classify.New(r2)
	for text, want := range map[string]string{
		"We use the tagger of [7].":  "uses",
		"Tagging was studied in [7]": "background",
		"Ours is better than [7].":   "compares",
	} {
		if got := c.Context(text, "", nil).Role; got != want {
			t.Errorf("%q after the fit: %s, want %s\n%s", text, got, want, written)
		}
	}
	if r2.Role.Temperature != res.cal.temperature {
		t.Errorf("temperature written %v, fitted %v", r2.Role.Temperature, res.cal.temperature)
	}
}

// Calibration by hand: two labels whose tags all have the same softmax
// probability, neutral right 270 times in 300 and supporting 60 times in
// 120. One map can only give them one confidence (330/420); a map per
// label gives each its own rate.
func TestCalibrationByLabelByHand(t *testing.T) {
	ls := &classify.LabelSet{Name: "polarity.yaml", Labels: []string{"neutral", "supporting"}}
	m := newModel(ls)
	d := dataset{name: "hand/made", of: func(i int) string { return ls.Labels[i] }}
	var heldOut [][]float64
	add := func(n, right, predicted int) {
		for i := range n {
			gold := predicted
			if i >= right {
				gold = 1 - predicted
			}
			d.rows = append(d.rows, row{gold: []int{gold}})
			s := []float64{0, 0}
			s[predicted] = 1
			heldOut = append(heldOut, s)
		}
	}
	add(300, 270, 0)
	add(120, 60, 1)
	sets := []dataset{d}
	all := [][][]float64{heldOut}
	near := func(what string, got, want float64) {
		t.Helper()
		if math.Abs(got-want) > 0.01 {
			t.Errorf("%s: confidence %.3f, want %.3f", what, got, want)
		}
	}

	shared := m.fitCalibration(sets, all, nil, options{maxSlope: 2})
	near("one map, neutral", shared.confidence(d, heldOut[0]), 330.0/420)
	near("one map, supporting", shared.confidence(d, heldOut[300]), 330.0/420)

	byLabel := m.fitCalibration(sets, all, nil, options{maxSlope: 2, byLabel: true})
	near("by label, neutral", byLabel.confidence(d, heldOut[0]), 0.9)
	near("by label, supporting", byLabel.confidence(d, heldOut[300]), 0.5)

	// Fitted without the supporting rows, supporting has too few tags for
	// a map of its own and falls back on the shared one, fitted on neutral.
	noSup := m.fitCalibration(sets, all, func(_, i int) bool { return i < 300 }, options{maxSlope: 2, byLabel: true})
	if _, ok := noSup.maps.ByLabel["supporting"]; ok {
		t.Errorf("a map for supporting fitted on no supporting tag: %v", noSup.maps.ByLabel)
	}
	near("cross-fitted, supporting", noSup.confidence(d, heldOut[300]), 0.9)

	// Written into a rule file and read back, the maps give the
	// classifier the confidences the fit measured.
	dir := t.TempDir()
	for name, text := range map[string]string{
		"rules.yaml":     "version: test\n",
		"roles.yaml":     "prior: {background: 1}\nnegated: drop\nlabels: {}\n",
		"polarity.yaml":  "prior:\n  neutral: 1\nnegated: flip\ncalibration_by_label: {contrasting: {slope: 1, intercept: 1}}\nlabels: {}\n",
		"pluralism.yaml": "negated: drop\nlabels: {}\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.write(filepath.Join(dir, "polarity.yaml"), []float64{1, 0.5}, result{cal: byLabel}); err != nil {
		t.Fatal(err)
	}
	r, err := classify.LoadRules(dir)
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range ls.Labels {
		p := rawConfidence(d, heldOut[i*300], byLabel.temperature)
		if got, want := r.Polarity.LabelConfidence(l, p), byLabel.confidence(d, heldOut[i*300]); got != want {
			t.Errorf("%s read back: confidence %v, fitted %v (maps %v)", l, got, want, r.Polarity.ByLabel)
		}
	}
	if _, ok := r.Polarity.ByLabel["contrasting"]; ok {
		t.Errorf("the old calibration_by_label line was kept: %v", r.Polarity.ByLabel)
	}
}
