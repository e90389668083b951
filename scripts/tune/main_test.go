package main

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
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
	writeRules(t, rules, files)
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
			d.rows = append(d.rows, row{gold: []int{gold}, marker: true})
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
	conf := func(c calibration, scores []float64) float64 {
		_, p := c.tag(d, row{marker: true}, scores)
		return p
	}

	shared := m.fitCalibration(sets, all, nil, options{maxSlope: 2})
	near("one map, neutral", conf(shared, heldOut[0]), 330.0/420)
	near("one map, supporting", conf(shared, heldOut[300]), 330.0/420)

	byLabel := m.fitCalibration(sets, all, nil, options{maxSlope: 2, byLabel: true})
	near("by label, neutral", conf(byLabel, heldOut[0]), 0.9)
	near("by label, supporting", conf(byLabel, heldOut[300]), 0.5)

	// Fitted without the supporting rows, supporting has too few tags for
	// a map of its own and falls back on the shared one, fitted on neutral.
	noSup := m.fitCalibration(sets, all, func(_, i int) bool { return i < 300 }, options{maxSlope: 2, byLabel: true})
	if _, ok := noSup.maps.ByLabel["supporting"]; ok {
		t.Errorf("a map for supporting fitted on no supporting tag: %v", noSup.maps.ByLabel)
	}
	near("cross-fitted, supporting", conf(noSup, heldOut[300]), 0.9)

	// Written into a rule file and read back, the maps give the
	// classifier the confidences the fit measured.
	dir := t.TempDir()
	writeRules(t, dir, map[string]string{
		"rules.yaml":     "version: test\n",
		"roles.yaml":     "prior: {background: 1}\nnegated: drop\nlabels: {}\n",
		"polarity.yaml":  "prior:\n  neutral: 1\nnegated: flip\ncalibration_by_label: {contrasting: {slope: 1, intercept: 1}}\nlabels: {}\n",
		"pluralism.yaml": "negated: drop\nlabels: {}\n",
	})
	if err := m.write(filepath.Join(dir, "polarity.yaml"), []float64{1, 0.5}, result{cal: byLabel}); err != nil {
		t.Fatal(err)
	}
	r, err := classify.LoadRules(dir)
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range ls.Labels {
		_, p := byLabel.raw(d, heldOut[i*300])
		if got, want := r.Polarity.LabelConfidence(l, p, true), conf(byLabel, heldOut[i*300]); got != want {
			t.Errorf("%s read back: confidence %v, fitted %v (maps %v)", l, got, want, r.Polarity.ByLabel)
		}
	}
	if _, ok := r.Polarity.ByLabel["contrasting"]; ok {
		t.Errorf("the old calibration_by_label line was kept: %v", r.Polarity.ByLabel)
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
	writeRules(t, rules, files)
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
	if !res.cal.intent || res.cal.own {
		t.Errorf("fitted maps: intents %v, roles %v; want the intents' only (no row is scored as a role)", res.cal.intent, res.cal.own)
	}
	if err := m.write(filepath.Join(rules, "roles.yaml"), res.theta, res); err != nil {
		t.Fatal(err)
	}
	r2, err := classify.LoadRules(rules)
	if err != nil {
		t.Fatal(err)
	}
	if want := res.cal.maps.IntentCalibration; r2.Role.IntentCalibration != want {
		t.Errorf("intent calibration written %+v, fitted %+v", r2.Role.IntentCalibration, want)
	}
	c := classify.New(r2)
	if got := c.Context("The mice of [3] were fed.", "2. Methods", nil).Role; got != "uses" {
		t.Errorf("a bare sentence in a methods section: %s, want uses", got)
	}
}

// Calibration by hand, by marker and by label. Every tag has the same
// softmax probability. With the cited marker known, neutral is right 100
// times in 200; without it, 80 times in 100: the sentences without a
// marker get a map of their own (0.8), the others keep theirs (0.5).
// With too few rows without a marker (40 < minWithoutMarker) they share
// the map: (100+32)/240. And with -by-label, a label with its own map
// (neutral, 200 tags) leaves the shared map to the tags of the others:
// supporting right 15 times in 30 and contrasting 21 in 30 give it 0.6,
// not the 0.55 of every tag together.
func TestCalibrationWithoutMarkerByHand(t *testing.T) {
	ls := &classify.LabelSet{Name: "polarity.yaml", Labels: []string{"contrasting", "neutral", "supporting"}}
	m := newModel(ls)
	type rows struct {
		d       dataset
		heldOut [][]float64
	}
	build := func(add func(func(n, right, predicted int, marker bool))) rows {
		r := rows{d: dataset{name: "hand/made", of: func(i int) string { return ls.Labels[i] }}}
		add(func(n, right, predicted int, marker bool) {
			for i := range n {
				gold := predicted
				if i >= right {
					gold = (predicted + 1) % 3
				}
				r.d.rows = append(r.d.rows, row{gold: []int{gold}, marker: marker})
				s := []float64{0, 0, 0}
				s[predicted] = 1
				r.heldOut = append(r.heldOut, s)
			}
		})
		return r
	}
	near := func(what string, got, want float64) {
		t.Helper()
		if math.Abs(got-want) > 0.01 {
			t.Errorf("%s: confidence %.3f, want %.3f", what, got, want)
		}
	}
	fit := func(r rows, o options) (calibration, func(i int) float64) {
		c := m.fitCalibration([]dataset{r.d}, [][][]float64{r.heldOut}, nil, o)
		return c, func(i int) float64 {
			_, p := c.tag(r.d, r.d.rows[i], r.heldOut[i])
			return p
		}
	}

	r := build(func(add func(n, right, predicted int, marker bool)) {
		add(200, 100, 1, true)
		add(100, 80, 1, false)
	})
	c, conf := fit(r, options{maxSlope: 2})
	near("marker known", conf(0), 0.5)
	near("marker unknown", conf(200), 0.8)
	if c.maps.WithoutMarker == nil {
		t.Fatal("no map for sentences without a marker")
	}

	few := build(func(add func(n, right, predicted int, marker bool)) {
		add(200, 100, 1, true)
		add(40, 32, 1, false)
	})
	c2, conf2 := fit(few, options{maxSlope: 2})
	near("few without a marker, known", conf2(0), 132.0/240)
	near("few without a marker, unknown", conf2(200), 132.0/240)
	if c2.maps.WithoutMarker != nil {
		t.Errorf("a map without a marker fitted on 40 rows: %+v", *c2.maps.WithoutMarker)
	}

	rest := build(func(add func(n, right, predicted int, marker bool)) {
		add(200, 100, 1, true)
		add(30, 15, 2, true)
		add(30, 21, 0, true)
	})
	_, conf3 := fit(rest, options{maxSlope: 2, byLabel: true, minPerLabel: 50})
	near("by label, neutral", conf3(0), 0.5)
	near("by label, supporting (shared)", conf3(200), 0.6)
	near("by label, contrasting (shared)", conf3(230), 0.6)

	// Written into a rule file (right after its calibration line) and read
	// back, the maps give the classifier the confidences the fit measured.
	dir := t.TempDir()
	writeRules(t, dir, map[string]string{
		"rules.yaml":     "version: test\n",
		"roles.yaml":     "prior: {background: 1}\nnegated: drop\nlabels: {}\n",
		"polarity.yaml":  "prior:\n  neutral: 1\nnegated: flip\ncalibration: {slope: 1, intercept: 0}\nlabels: {}\n",
		"pluralism.yaml": "negated: drop\nlabels: {}\n",
	})
	path := filepath.Join(dir, "polarity.yaml")
	if err := m.write(path, make([]float64, len(m.params)), result{cal: c}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^calibration: .*\ncalibration_without_marker: \{slope: [0-9.]+, intercept: [-0-9.]+\}\n`).Match(b) {
		t.Errorf("calibration_without_marker not written after calibration:\n%s", b)
	}
	rules, err := classify.LoadRules(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{0, 200} {
		_, p := c.raw(r.d, r.heldOut[i])
		if got, want := rules.Polarity.LabelConfidence("neutral", p, r.d.rows[i].marker), conf(i); got != want {
			t.Errorf("row %d read back: confidence %v, fitted %v", i, got, want)
		}
	}
}

// The map for sentences without a marker, by hand: the dev rows weighed
// against the train rows' held-out scores, and its own slope cap. Every
// tag has the same softmax probability. Without a marker, 100 train rows
// are right 50 times and 60 dev rows 48 times: every row the same gives
// (50+48)/160; the dev rows weighing a quarter of the fit together give
// 0.75*0.5 + 0.25*0.8, half of it 0.5*0.5 + 0.5*0.8.
func TestCalibrationWithoutMarkerDevShareByHand(t *testing.T) {
	ls := &classify.LabelSet{Name: "roles.yaml", Labels: []string{"background", "uses", "compares"}}
	m := newModel(ls)
	of := func(i int) string { return ls.Labels[i] }
	type part struct {
		n, right int
		p        float64 // the predicted label's softmax probability at temperature 1
		marker   bool
	}
	// build is a dataset of use whose tags are all "uses", each part's
	// rows right its number of times.
	build := func(use string, parts ...part) (dataset, [][]float64) {
		d := dataset{name: "hand/" + use, use: use, of: of}
		var held [][]float64
		for _, pt := range parts {
			s := math.Log(2 * pt.p / (1 - pt.p)) // softmax(0, s, 0)[1] = p
			for i := range pt.n {
				gold := 1
				if i >= pt.right {
					gold = 0
				}
				d.rows = append(d.rows, row{gold: []int{gold}, marker: pt.marker})
				held = append(held, []float64{0, s, 0})
			}
		}
		return d, held
	}
	near := func(what string, got, want float64) {
		t.Helper()
		if math.Abs(got-want) > 0.01 {
			t.Errorf("%s: confidence %.3f, want %.3f", what, got, want)
		}
	}
	dev, devHeld := build(useDev, part{200, 100, 0.6, true}, part{60, 48, 0.6, false})
	train, trainHeld := build(useTrain, part{100, 50, 0.6, false})
	sets, heldOut := []dataset{train, dev}, [][][]float64{trainHeld, devHeld}
	for _, tc := range []struct {
		share, want float64
	}{{0, 98.0 / 160}, {0.25, 0.575}, {0.5, 0.65}} {
		c := m.fitCalibration(sets, heldOut, nil, options{maxSlope: 2, devShareNoMarker: tc.share})
		if c.maps.WithoutMarker == nil {
			t.Fatalf("share %g: no map for sentences without a marker", tc.share)
		}
		_, p := c.tag(dev, dev.rows[200], devHeld[200])
		near(fmt.Sprintf("dev share %g, marker unknown", tc.share), p, tc.want)
		_, p = c.tag(dev, dev.rows[0], devHeld[0])
		near(fmt.Sprintf("dev share %g, marker known", tc.share), p, 0.5)
	}

	// The weights: 4 train rows share three quarters of 6, 2 dev rows a quarter.
	w := calRows{train: []bool{true, true, true, true, false, false}}.weights(0.25)
	if want := []float64{1.125, 1.125, 1.125, 1.125, 0.75, 0.75}; !slices.Equal(w, want) {
		t.Errorf("weights %v, want %v", w, want)
	}
	if w := (calRows{train: []bool{true, true}}).weights(0.25); w != nil {
		t.Errorf("no dev rows: weights %v, want nil (every row 1)", w)
	}

	// A steep truth (right 30 times in 50 at p 0.6, 50 in 50 at p 0.9):
	// the map without a marker keeps to its own cap, the others to theirs.
	steep, steepHeld := build(useDev, part{100, 50, 0.6, true}, part{50, 30, 0.6, false}, part{50, 50, 0.9, false})
	for _, tc := range []struct{ cap, want float64 }{{0, 2}, {0.25, 0.25}} {
		c := m.fitCalibration([]dataset{steep}, [][][]float64{steepHeld}, nil, options{maxSlope: 2, maxSlopeNoMarker: tc.cap})
		if got := c.maps.WithoutMarker.Slope; got != tc.want {
			t.Errorf("-max-slope-without-marker %g: slope %g, want %g", tc.cap, got, tc.want)
		}
	}
}

// The ECE of a perfectly calibrated tagger, by hand: confidence 1 is
// always right (0); one tag at 0.5 is right or wrong, 0.5 off either way;
// 0.3 on many rows is close to 0.
func TestCalibratedECEByHand(t *testing.T) {
	if got := calibratedECE([]float64{1, 1, 1}, 100); got != 0 {
		t.Errorf("confidence 1: %v, want 0", got)
	}
	if got := calibratedECE([]float64{0.5}, 100); got != 0.5 {
		t.Errorf("one tag at 0.5: %v, want 0.5", got)
	}
	many := make([]float64, 20000)
	for i := range many {
		many[i] = 0.3
	}
	if got := calibratedECE(many, 20); got > 0.01 {
		t.Errorf("20,000 tags at 0.3: %v, want about 0 (under 0.01)", got)
	}
	if got := calibratedECE(nil, 100); got != 0 {
		t.Errorf("no tags: %v, want 0", got)
	}
}

// writeRules writes a rules folder of hand-made files for a test.
func writeRules(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
