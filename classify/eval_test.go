package classify

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"os"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/citecrawl/citecrawl/internal/testkit"
)

// The metric arithmetic on a case worked by hand:
//
//	gold a a a b b c, predicted a a b b c c
//	a: tp 2 fp 0 fn 1 -> P 1,   R 2/3, F1 0.8
//	b: tp 1 fp 1 fn 1 -> P 1/2, R 1/2, F1 0.5
//	c: tp 1 fp 1 fn 0 -> P 1/2, R 1,   F1 2/3
//	macro-F1 (0.8 + 0.5 + 0.6667) / 3 = 0.6556, accuracy 4/6
func TestScoreByHand(t *testing.T) {
	r := Score("t", []string{"a", "b", "c"}, strings.Fields("a a a b b c"), strings.Fields("a a b b c c"))
	want := []ClassScore{{"a", 1, 0.667, 0.8, 3}, {"b", 0.5, 0.5, 0.5, 2}, {"c", 0.5, 1, 0.667, 1}}
	for i, w := range want {
		if r.Classes[i] != w {
			t.Errorf("class %s: %+v, want %+v", w.Label, r.Classes[i], w)
		}
	}
	if math.Abs(r.MacroF1-0.656) > 1e-9 || math.Abs(r.Accuracy-0.667) > 1e-9 {
		t.Errorf("macro-F1 %v accuracy %v, want 0.656 and 0.667", r.MacroF1, r.Accuracy)
	}
	if r.Confusion["a"]["b"] != 1 || r.Confusion["b"]["c"] != 1 || r.Confusion["a"]["a"] != 2 {
		t.Errorf("confusion %v", r.Confusion)
	}
}

func TestReadGoldErrorsNameTheLine(t *testing.T) {
	dir := t.TempDir()
	for format, body := range map[string]string{
		"acl-arc":  "{\"text\":\"x\",\"label\":\"Uses\"}\n{\"text\":\"y\",\"label\":\"Sideways\"}\n",
		"athar":    "A\tB\to\t\"fine\"\nA\tB\tq\t\"bad\"\n",
		"clinical": "{\"text\":\"x\",\"label\":\"NEUTRAL\"}\n{broken\n",
	} {
		p := dir + "/" + format
		writeFile(t, p, body)
		_, err := ReadGold(p, format, TaskRole)
		if err == nil || !strings.Contains(err.Error(), "line 2") || !strings.Contains(err.Error(), p) {
			t.Errorf("%s: err = %v, want the file and line 2 named", format, err)
		}
	}
}

func writeFile(t *testing.T, p, s string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

// genLines makes n lines alternating citation contexts and papers.
func genLines(n int) []byte {
	var b bytes.Buffer
	ctx := []string{"We use the treebank of [3] for training.", "Unlike [4], our parser needs no lexicon.", "Parsing has been studied widely [5].", "In future work we plan to combine it with [6]."}
	for i := range n {
		if i%2 == 0 {
			fmt.Fprintf(&b, "{\"id\":\"c%d\",\"context\":%q,\"section\":\"Experiments\"}\n", i, ctx[i%len(ctx)])
		} else {
			fmt.Fprintf(&b, "{\"id\":\"p%d\",\"title\":\"Paper %d\",\"summary\":\"Steers a model to a persona and aggregates annotator ratings with a jury.\"}\n", i, i)
		}
	}
	return b.Bytes()
}

// BenchmarkStream is `citecrawl classify` on 100,000 lines (half
// contexts, half papers), in memory: lines/s and the heap in use at the end.
func BenchmarkStream(b *testing.B) {
	c := testClassifier(b)
	in := genLines(100_000)
	for b.Loop() {
		if _, err := Stream(c, bytes.NewReader(in), io.Discard, func(int, error) { b.Fatal("bad line") }); err != nil {
			b.Fatal(err)
		}
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	b.ReportMetric(float64(100_000*b.N)/b.Elapsed().Seconds(), "lines/s")
	b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "heap-MB")
}

func BenchmarkPluralism(b *testing.B) {
	c := testClassifier(b)
	b.ReportAllocs()
	cpu := testkit.CPUTime(b)
	for b.Loop() {
		c.Pluralism("Jury Learning: Integrating Dissenting Voices", "Whose labels should a model learn? Different groups disagree about ground truth; we model individual annotators with juries.", "")
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "papers/s")
	b.ReportMetric(float64(b.N)/(testkit.CPUTime(b)-cpu).Seconds(), "papers/cpu-s")
}

// The gold readers find the cited marker: Athar by the year of the cited
// Anthology id, the clinical set by the marker its row id names.
func TestGoldMarkers(t *testing.T) {
	if got := citedYear("A00-2024"); got != "2000" {
		t.Errorf("citedYear(A00-2024) = %q", got)
	}
	if got := citedYear("J93-2003"); got != "1993" {
		t.Errorf("citedYear(J93-2003) = %q", got)
	}
	if got := citedYear("bogus"); got != "" {
		t.Errorf("citedYear(bogus) = %q", got)
	}
	if got := clinicalMarker("1142326_C1_[ 12,16-21]_NEGATIVE"); got != "[ 12,16-21]" {
		t.Errorf("clinicalMarker = %q", got)
	}
	if got := clinicalMarker("3251861_C3_Kluger et al, 2011_NEGATIVE"); got != "Kluger et al, 2011" {
		t.Errorf("clinicalMarker = %q", got)
	}
	// Whole numbers only: 12000 is not the year 2000; runes, not bytes.
	if got := spanOf("Über 12000 items (Jing, 2000).", "2000"); fmt.Sprint(got) != "[24 28]" {
		t.Errorf("spanOf = %v, want [24 28]", got)
	}
	if got := spanOf("No year here.", "2000"); got != nil {
		t.Errorf("spanOf = %v, want nil", got)
	}
}

// Calibration by hand: four tags at 0.95 (three right) and two at 0.35
// (one right): bin 0.9-1.0 gap |0.75-0.95| = 0.2 over 4 of 6 tags, bin
// 0.3-0.4 gap |0.5-0.35| = 0.15 over 2 of 6: ECE = 4/6*0.2 + 2/6*0.15.
func TestCalibrationByHand(t *testing.T) {
	ece, bins := Calibration(
		[]float64{0.95, 0.95, 0.95, 0.95, 0.35, 0.35},
		[]bool{true, true, true, false, true, false})
	if want := round(4.0/6*0.2 + 2.0/6*0.15); ece != want {
		t.Errorf("ECE %v, want %v", ece, want)
	}
	if len(bins) != 10 || bins[9].N != 4 || bins[9].Accuracy != 0.75 || bins[9].Confidence != 0.95 ||
		bins[3].N != 2 || bins[3].Accuracy != 0.5 || bins[0].N != 0 {
		t.Errorf("bins %+v", bins)
	}
	// A confidence of exactly 1 is in the last bin, not an eleventh.
	if _, b := Calibration([]float64{1}, []bool{true}); b[9].N != 1 {
		t.Errorf("confidence 1 not in the last bin: %+v", b)
	}
}

// Probabilities is a softmax at the rule file's temperature.
func TestProbabilitiesAtTemperature(t *testing.T) {
	ls := &LabelSet{Labels: []string{"a", "b"}, Temperature: 2}
	p := Probabilities(ls, map[string]float64{"a": 2, "b": 0})
	// softmax(1, 0) = e/(e+1) = 0.731
	if p["a"] != 0.731 || p["b"] != 0.269 {
		t.Errorf("probabilities %v, want a 0.731, b 0.269", p)
	}
}

// A calibration map by hand: sigmoid(2 * logit(0.5) - 1) = sigmoid(-1) =
// 0.269 and sigmoid(2 * logit(0.8) - 1) = sigmoid(1.773) = 0.855; a label
// with its own map (calibration_by_label) uses it, the others the shared
// one; a sentence whose cited marker is unknown uses the file's map for
// those (calibration_without_marker): sigmoid(0.5 * logit(0.8) + 0.5) =
// sigmoid(1.193) = 0.767, whatever its label.
func TestLabelConfidenceByHand(t *testing.T) {
	ls := &LabelSet{CalibrationMap: CalibrationMap{Slope: 2, Intercept: -1}, ByLabel: map[string]CalibrationMap{"supporting": {Slope: 1, Intercept: 1}}}
	check := func(label string, p float64, marker bool, want float64) {
		t.Helper()
		if got := ls.LabelConfidence(label, p, marker); got != want {
			t.Errorf("%s at %v (marker known %v): confidence %v, want %v", label, p, marker, got, want)
		}
	}
	check("neutral", 0.5, true, 0.269)
	check("neutral", 0.8, true, 0.855)
	check("supporting", 0.5, true, 0.731) // sigmoid(0 + 1)
	check("contrasting", 0.5, true, 0.269)
	check("neutral", 0.8, false, 0.855) // no map for unknown markers: the same
	ls.WithoutMarker = &CalibrationMap{Slope: 0.5, Intercept: 0.5}
	check("neutral", 0.8, false, 0.767)
	check("supporting", 0.8, false, 0.767)
	check("neutral", 0.8, true, 0.855)
	if got := (CalibrationMap{Slope: 1}).Confidence(0.42); got != 0.42 {
		t.Errorf("the identity map changed 0.42 to %v", got)
	}
}

// A sentence tagged without its marker's place takes the without-marker
// map; with it, the shared one: the same words, the same probability,
// two confidences.
func TestContextConfidenceWithoutMarker(t *testing.T) {
	dir := shippedRulesWith(t, "roles.yaml", func(b []byte) []byte {
		b = regexp.MustCompile(`(?m)^calibration_without_marker:.*\n`).ReplaceAll(b, nil)
		return regexp.MustCompile(`(?m)^calibration:.*$`).ReplaceAll(b, []byte("calibration: {slope: 1, intercept: 0}\ncalibration_without_marker: {slope: 1, intercept: 1}"))
	})
	c, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	const text = "We use the parser of [3] for tagging."
	with, without := c.Context(text, "", []int{21, 24}), c.Context(text, "", nil)
	p := probabilityAt(c.rules.Role, labelScores(c.rules.Role, without.RoleScores, nil), slices.Index(c.rules.Role.Labels, without.Role))
	if want := round(1 / (1 + math.Exp(-(math.Log(p/(1-p)) + 1)))); without.RoleConfidence != want {
		t.Errorf("without a marker: confidence %v, want %v (p %v through slope 1, intercept 1)", without.RoleConfidence, want, p)
	}
	if p := probabilityAt(c.rules.Role, labelScores(c.rules.Role, with.RoleScores, nil), slices.Index(c.rules.Role.Labels, with.Role)); with.RoleConfidence != p {
		t.Errorf("with the marker: confidence %v, want the identity map's %v", with.RoleConfidence, p)
	}
}

// calibration_by_label names labels of its own file only.
func TestCalibrationByLabelUnknownLabel(t *testing.T) {
	dir := shippedRulesWith(t, "polarity.yaml", func(b []byte) []byte {
		return regexp.MustCompile(`(?m)^calibration_by_label:.*$`).ReplaceAll(b, []byte("calibration_by_label: {uses: {slope: 1, intercept: 0}}"))
	})
	_, err := LoadRules(dir)
	if err == nil || !strings.Contains(err.Error(), `calibration_by_label: "uses"`) || !strings.Contains(err.Error(), "polarity.yaml") {
		t.Fatalf("error %v, want one naming polarity.yaml's calibration_by_label and the label", err)
	}
}

// An intent is as probable as its roles together: background is the best
// role here (0.4 against 0.3 and 0.3), yet method (uses and extends,
// 0.6) is the intent, and its confidence is that sum through the intent's
// own calibration map.
func TestIntentSumsItsRoles(t *testing.T) {
	ls := &LabelSet{Labels: []string{"background", "uses", "extends", "compares"}, Temperature: 1}
	scores := map[string]float64{"background": math.Log(0.4), "uses": math.Log(0.3), "extends": math.Log(0.3), "compares": -50}
	if intent, conf := Intent(ls, scores); intent != "method" || conf != 0.6 {
		t.Errorf("intent %s %v, want method 0.6", intent, conf)
	}
	ls.IntentCalibration = CalibrationMap{Slope: 1, Intercept: math.Log(2)} // odds 1.5 -> 3
	if _, conf := Intent(ls, scores); conf != 0.75 {
		t.Errorf("calibrated intent confidence %v, want 0.75", conf)
	}
	if ls.Confidence(0.6) != 0.6 {
		t.Errorf("the role map (identity) moved: %v", ls.Confidence(0.6))
	}
}
