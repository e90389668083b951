package main

import (
	"fmt"
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
	o := options{lambda: 0.0001, balance: 1, size: 1, iters: 300, folds: 5}
	res := m.evaluate(sets, o)
	if len(res.lines) != 1 || !strings.Contains(res.lines[0], "acl-arc/dev") || res.mean < 0.99 {
		t.Errorf("scored %v (mean %.3f), want the dev file alone, all right", res.lines, res.mean)
	}
	if res.temperature <= 0 {
		t.Errorf("temperature %v", res.temperature)
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
	if r2.Role.Temperature != res.temperature {
		t.Errorf("temperature written %v, fitted %v", r2.Role.Temperature, res.temperature)
	}
}

// Rows that name their section fit the section weights, signed, from 0
// (a cross-validated SciCite-like file: the sentences say nothing, the
// section says all), and the intents get their own calibration map, which
// -write puts beside the roles' one.
func TestSectionsFittedFromRowsThatNameThem(t *testing.T) {
	dir := t.TempDir()
	rules := filepath.Join(dir, "rules")
	files := map[string]string{
		"rules.yaml": "version: test\n",
		"roles.yaml": `prior:
  background: 0.5
negated: drop
calibration: {slope: 1, intercept: 0}
labels:
  uses:
    "we use": 1
sections:
  "method": {uses: 0.1, background: 0}
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
	var gold strings.Builder
	for i := range 30 {
		fmt.Fprintf(&gold, "{\"string\":\"The cells of [%d] were kept cold.\",\"sectionName\":\"Methods\",\"label\":\"method\"}\n", i)
		fmt.Fprintf(&gold, "{\"string\":\"The cells of [%d] were kept cold.\",\"sectionName\":\"Introduction\",\"label\":\"background\"}\n", i)
	}
	path := filepath.Join(dir, "scicite", "dev.jsonl")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(gold.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := classify.LoadRules(rules)
	if err != nil {
		t.Fatal(err)
	}
	m := newModel(r.Role)
	d, err := m.load(r, classify.TaskRole, useCV, path)
	if err != nil {
		t.Fatal(err)
	}
	res := m.evaluate([]dataset{d}, options{lambda: 0.0001, balance: 1, size: 1, iters: 300, folds: 5, seed: 1})
	if res.mean < 0.99 {
		t.Errorf("cross-validated %v (mean %.3f), want all right from the section", res.lines, res.mean)
	}
	uses, bg := res.theta[m.index[param{"section", "uses", "method"}]], res.theta[m.index[param{"section", "background", "method"}]]
	if uses <= 0 || bg >= 0 {
		t.Errorf("method section: uses %v, background %v; want above and below 0", uses, bg)
	}
	if _, ok := res.calibration[classify.TaskIntent]; !ok {
		t.Errorf("no intent calibration map: %v", res.calibration)
	}
	if err := m.write(filepath.Join(rules, "roles.yaml"), res.theta, res); err != nil {
		t.Fatal(err)
	}
	r2, err := classify.LoadRules(rules)
	if err != nil {
		t.Fatal(err)
	}
	if want := res.calibration[classify.TaskIntent]; r2.Role.IntentCalibration != want {
		t.Errorf("intent calibration written %+v, fitted %+v", r2.Role.IntentCalibration, want)
	}
	c := classify.New(r2)
	if got := c.Context("The mice of [3] were fed.", "2. Methods", nil).Role; got != "uses" {
		t.Errorf("a bare sentence in a methods section: %s, want uses", got)
	}
}
