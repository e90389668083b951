package classify

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/citecrawl/citecrawl/record"
)

// Tasks that eval measures.
const (
	TaskRole      = "role"      // six roles
	TaskIntent    = "intent"    // SciCite's three intents
	TaskPolarity  = "polarity"  // three polarities
	TaskPluralism = "pluralism" // primary pluralism category
)

// Example is one gold row: a context (role, intent, polarity tasks) or a
// paper (pluralism task), and its gold label.
type Example struct {
	Text     string
	Section  string
	Span     []int // rune span of the cited marker, when known
	Title    string
	Summary  string
	Gold     string
	GoldSet  []string // pluralism: every label that applies
	Line     int
	Original string // the line as read, for error messages
}

// Formats of the gold files in ../shared/data.
var Formats = []string{"scicite", "acl-arc", "act", "athar", "clinical", "pluralism"}

// GuessFormat names the format from a path (the folder or file name).
func GuessFormat(path string) string {
	p := strings.ToLower(filepath.ToSlash(path))
	for _, f := range []struct{ key, format string }{
		{"scicite", "scicite"}, {"acl-arc", "acl-arc"}, {"aclarc", "acl-arc"}, {"act", "act"},
		{"athar", "athar"}, {"clinical", "clinical"}, {"pluralism", "pluralism"},
	} {
		if strings.Contains(p, f.key) {
			return f.format
		}
	}
	return ""
}

// ReadGold reads a gold file of the given format for a task.
func ReadGold(path, format, task string) ([]Example, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("gold file: %w", err)
	}
	defer f.Close()
	var exs []Example
	switch format {
	case "scicite":
		err = readJSONLines(f, func(line int, m map[string]any) error {
			text := str(m["string"])
			if text == "" { // the train file, as preprocessed for SciBERT, has text and no offsets
				text = str(m["text"])
			}
			e := Example{Text: text, Section: str(m["sectionName"]), Gold: str(m["label"]), Line: line}
			if s, ok := m["citeStart"].(float64); ok {
				if end, ok := m["citeEnd"].(float64); ok && int(end) <= utf8.RuneCountInString(text) {
					e.Span = []int{int(s), int(end)}
				}
			}
			if task == TaskPolarity {
				switch str(m["label2"]) {
				case "supportive":
					e.Gold = record.PolaritySupporting
				case "not_supportive":
					e.Gold = record.PolarityContrasting
				default:
					return nil
				}
			}
			exs = append(exs, e)
			return nil
		})
	case "acl-arc":
		roles := map[string]string{"Background": "background", "Uses": "uses", "CompareOrContrast": "compares",
			"Motivation": "motivation", "Extends": "extends", "Future": "future"}
		err = readJSONLines(f, func(line int, m map[string]any) error {
			g, ok := roles[str(m["label"])]
			if !ok {
				return fmt.Errorf("unknown label %q", str(m["label"]))
			}
			exs = append(exs, Example{Text: str(m["text"]), Gold: g, Line: line})
			return nil
		})
	case "act":
		exs, err = readACT(f)
	case "athar":
		exs, err = readAthar(f)
	case "clinical":
		pol := map[string]string{"POSITIVE": "supporting", "NEGATIVE": "contrasting", "NEUTRAL": "neutral"}
		err = readJSONLines(f, func(line int, m map[string]any) error {
			g, ok := pol[str(m["label"])]
			if !ok {
				return fmt.Errorf("unknown label %q", str(m["label"]))
			}
			text := str(m["text"])
			exs = append(exs, Example{Text: text, Gold: g, Line: line, Span: spanOf(text, clinicalMarker(str(m["id"])))})
			return nil
		})
	case "pluralism":
		err = readJSONLines(f, func(line int, m map[string]any) error {
			e := Example{Title: str(m["title"]), Summary: str(m["summary"]), Gold: str(m["primary"]), Line: line}
			if ls, ok := m["labels"].([]any); ok {
				for _, l := range ls {
					e.GoldSet = append(e.GoldSet, str(l))
				}
			}
			exs = append(exs, e)
			return nil
		})
	default:
		return nil, fmt.Errorf("gold file %s: unknown format %q (want one of %s)", path, format, strings.Join(Formats, ", "))
	}
	if err != nil {
		return nil, fmt.Errorf("gold file %s (%s): %w", path, format, err)
	}
	return exs, fitsTask(exs, path, format, task)
}

// fitsTask refuses gold rows that cannot measure the task: none at all, or
// a gold label the task does not have (a file of another task or format).
func fitsTask(exs []Example, path, format, task string) error {
	if len(exs) == 0 {
		return fmt.Errorf("gold file %s (%s): no rows for task %s", path, format, task)
	}
	labels := TaskLabels(task)
	for _, e := range exs {
		if !slices.Contains(labels, e.Gold) {
			return fmt.Errorf("gold file %s (%s) line %d: gold label %q is not a %s label (%s): the file does not fit the task or the format",
				path, format, e.Line, e.Gold, task, strings.Join(labels, ", "))
		}
	}
	return nil
}

// clinicalMarker reads the cited work's marker from a clinical row's id,
// "<pmcid>_C<n>_<marker>_<LABEL>" ("1142326_C1_[ 12,16-21]_NEGATIVE").
func clinicalMarker(id string) string {
	parts := strings.SplitN(id, "_", 3)
	if len(parts) != 3 {
		return ""
	}
	i := strings.LastIndex(parts[2], "_")
	if i < 0 {
		return ""
	}
	return parts[2][:i]
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

func readJSONLines(r io.Reader, fn func(line int, m map[string]any) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	line := 0
	for sc.Scan() {
		line++
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		var m map[string]any
		// Python writes NaN for a missing number; JSON has null.
		b := bytes.ReplaceAll(sc.Bytes(), []byte(": NaN"), []byte(": null"))
		if err := json.Unmarshal(b, &m); err != nil {
			return fmt.Errorf("line %d: %w", line, err)
		}
		if err := fn(line, m); err != nil {
			return fmt.Errorf("line %d: %w", line, err)
		}
	}
	return sc.Err()
}

// actRoles maps the ACT citation_class_label numbers.
var actRoles = []string{"background", "compares", "extends", "future", "motivation", "uses"}

func readACT(r io.Reader) ([]Example, error) {
	cr := csv.NewReader(r)
	header, err := cr.Read()
	if err != nil {
		return nil, err
	}
	col := map[string]int{}
	for i, h := range header {
		col[h] = i
	}
	ci, ok1 := col["citation_context"]
	li, ok2 := col["citation_class_label"]
	if !ok1 || !ok2 {
		return nil, errors.New("no citation_context and citation_class_label columns")
	}
	var exs []Example
	for line := 2; ; line++ {
		rec, err := cr.Read()
		if err == io.EOF {
			return exs, nil
		}
		if err != nil {
			return nil, err
		}
		n, err := strconv.Atoi(rec[li])
		if err != nil || n < 0 || n >= len(actRoles) {
			return nil, fmt.Errorf("line %d: label %q is not 0-5", line, rec[li])
		}
		text := rec[ci]
		e := Example{Text: text, Gold: actRoles[n], Line: line}
		if i := strings.Index(text, "#AUTHOR_TAG"); i >= 0 {
			s := utf8.RuneCountInString(text[:i])
			e.Span = []int{s, s + len("#AUTHOR_TAG")}
		}
		exs = append(exs, e)
	}
}

func readAthar(r io.Reader) ([]Example, error) {
	pol := map[string]string{"p": "supporting", "n": "contrasting", "o": "neutral"}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	var exs []Example
	line := 0
	for sc.Scan() {
		line++
		parts := strings.SplitN(sc.Text(), "\t", 4)
		if len(parts) != 4 {
			return nil, fmt.Errorf("line %d: want 4 tab-separated columns, got %d", line, len(parts))
		}
		g, ok := pol[parts[2]]
		if !ok {
			return nil, fmt.Errorf("line %d: polarity %q is not o, p or n", line, parts[2])
		}
		text := strings.Trim(parts[3], `"`)
		exs = append(exs, Example{Text: text, Gold: g, Line: line, Span: spanOf(text, citedYear(parts[1]))})
	}
	return exs, sc.Err()
}

// citedYear reads the year of an ACL Anthology id ("A00-2024" is from
// 2000, "J93-2003" from 1993): Athar's rows name the cited work only by
// its id, and the year is how its marker can be found in the sentence.
func citedYear(id string) string {
	if len(id) < 4 || id[3] != '-' || id[1] < '0' || id[1] > '9' || id[2] < '0' || id[2] > '9' {
		return ""
	}
	if id[1] >= '5' {
		return "19" + id[1:3]
	}
	return "20" + id[1:3]
}

// spanOf is the rune span of the first whole-word occurrence of marker in
// text (a year may carry a letter: 2000a), or nil.
func spanOf(text, marker string) []int {
	if marker == "" {
		return nil
	}
	for from := 0; ; {
		i := strings.Index(text[from:], marker)
		if i < 0 {
			return nil
		}
		start, end := from+i, from+i+len(marker)
		before, _ := utf8.DecodeLastRuneInString(text[:start])
		after, _ := utf8.DecodeRuneInString(text[end:])
		if start == 0 || !unicode.IsLetter(before) && !unicode.IsDigit(before) {
			if end == len(text) || !unicode.IsDigit(after) {
				s := utf8.RuneCountInString(text[:start])
				return []int{s, s + utf8.RuneCountInString(marker)}
			}
		}
		from = start + 1
	}
}

// IntentOf maps a role to SciCite's intents (TAXONOMY.md).
func IntentOf(role string) string {
	switch role {
	case record.RoleUses, record.RoleExtends:
		return "method"
	case record.RoleCompares:
		return "result"
	default:
		return "background"
	}
}

// Mistake is one gold row the classifier got wrong, with the cues that
// made it decide, so a rule writer can see why.
type Mistake struct {
	Line      int               `json:"line"`
	Gold      string            `json:"gold"`
	Predicted string            `json:"predicted"`
	Text      string            `json:"text"`
	Evidence  []record.Evidence `json:"evidence"`
}

// verdict is what the classifier says of one example for a task.
type verdict struct {
	label      string
	confidence float64           // the probability of label
	labels     []string          // pluralism: every category that applies
	evidence   []record.Evidence // the cues of the task's label set only
}

func (c *Classifier) judge(task string, e Example) verdict {
	if task == TaskPluralism {
		p := c.Pluralism(e.Title, e.Summary, "")
		return verdict{label: p.Primary, confidence: p.Confidence, labels: p.Labels, evidence: p.Evidence}
	}
	t := c.Context(e.Text, e.Section, e.Span)
	v, ls := verdict{label: t.Role, confidence: t.RoleConfidence}, c.rules.Role
	switch task {
	case TaskIntent:
		v.label, v.confidence = Intent(c.rules.Role, t.RoleScores)
	case TaskPolarity:
		v.label, v.confidence, ls = t.Polarity, t.PolarityConfidence, c.rules.Polarity
	}
	prefix := ruleName(ls, "")
	for _, ev := range t.Evidence {
		if strings.HasPrefix(ev.Rule, prefix) {
			v.evidence = append(v.evidence, ev)
		}
	}
	return v
}

// formatMistakes writes mistakes for reading: line, gold and predicted
// label, the cues that fired, the text.
func formatMistakes(w io.Writer, ms []Mistake) {
	for _, m := range ms {
		var cues []string
		for _, ev := range m.Evidence {
			cues = append(cues, fmt.Sprintf("%s %q %.2f", ev.Label, ev.Cue, ev.Weight))
		}
		fmt.Fprintf(w, "\nline %d: gold %s, predicted %s\n  cues: %s\n  %s\n", m.Line, m.Gold, m.Predicted, strings.Join(cues, "; "), m.Text)
	}
}

// Report is what eval prints.
type Report struct {
	Task      string                    `json:"task"`
	N         int                       `json:"n"`
	Classes   []ClassScore              `json:"classes"`
	MacroF1   float64                   `json:"macro_f1"`
	Accuracy  float64                   `json:"accuracy"`
	Confusion map[string]map[string]int `json:"confusion"` // gold -> predicted -> count
	Extra     map[string]float64        `json:"extra,omitempty"`
	// ECE is the expected calibration error of the confidences over
	// Reliability's ten bins.
	ECE         float64   `json:"ece"`
	Reliability []Bin     `json:"reliability"`
	Rules       string    `json:"rules_version"`
	Mistakes    []Mistake `json:"mistakes,omitempty"` // the first ones, when asked for
}

// Bin is one bin of a reliability table: the tags whose confidence is in
// [Lo, Hi), how many, their mean confidence and how many were right.
type Bin struct {
	Lo         float64 `json:"lo"`
	Hi         float64 `json:"hi"`
	N          int     `json:"n"`
	Confidence float64 `json:"confidence"`
	Accuracy   float64 `json:"accuracy"`
}

// Calibration sorts confidences into ten equal bins and returns the
// expected calibration error, the mean over tags of |accuracy - mean
// confidence| of the tag's bin (sum over bins of n/N * gap), with the
// bins. A confidence of 1 goes in the last bin.
func Calibration(conf []float64, correct []bool) (float64, []Bin) {
	const k = 10
	bins := make([]Bin, k)
	for i := range bins {
		bins[i].Lo, bins[i].Hi = float64(i)/k, float64(i+1)/k
	}
	sumConf := make([]float64, k)
	right := make([]int, k)
	for i, p := range conf {
		b := min(int(p*k), k-1)
		bins[b].N++
		sumConf[b] += p
		if correct[i] {
			right[b]++
		}
	}
	ece := 0.0
	for i := range bins {
		if bins[i].N == 0 {
			continue
		}
		n := float64(bins[i].N)
		bins[i].Confidence, bins[i].Accuracy = sumConf[i]/n, float64(right[i])/n
		ece += n / float64(len(conf)) * math.Abs(bins[i].Accuracy-bins[i].Confidence)
		bins[i].Confidence, bins[i].Accuracy = round(bins[i].Confidence), round(bins[i].Accuracy)
	}
	return round(ece), bins
}

// ClassScore is one class's precision, recall, F1 and support.
type ClassScore struct {
	Label     string  `json:"label"`
	Precision float64 `json:"precision"`
	Recall    float64 `json:"recall"`
	F1        float64 `json:"f1"`
	Support   int     `json:"support"`
}

// Labels of each task, in a fixed order.
func TaskLabels(task string) []string {
	switch task {
	case TaskIntent:
		return []string{"background", "method", "result"}
	case TaskPolarity:
		return record.Polarities
	case TaskPluralism:
		return record.PluralismCategories
	default:
		return record.Roles
	}
}

// Score computes per-class precision, recall, F1, macro-F1 over labels,
// accuracy and the confusion matrix of gold against predicted labels.
func Score(task string, labels, gold, pred []string) Report {
	r := Report{Task: task, N: len(gold), Confusion: map[string]map[string]int{}}
	for _, l := range labels {
		r.Confusion[l] = map[string]int{}
	}
	correct := 0
	for i := range gold {
		if r.Confusion[gold[i]] == nil {
			r.Confusion[gold[i]] = map[string]int{}
		}
		r.Confusion[gold[i]][pred[i]]++
		if gold[i] == pred[i] {
			correct++
		}
	}
	if len(gold) > 0 {
		r.Accuracy = round(float64(correct) / float64(len(gold)))
	}
	sum := 0.0
	for _, l := range labels {
		tp, fp, fn := 0, 0, 0
		for i := range gold {
			switch {
			case gold[i] == l && pred[i] == l:
				tp++
			case pred[i] == l:
				fp++
			case gold[i] == l:
				fn++
			}
		}
		cs := ClassScore{Label: l, Support: tp + fn}
		if tp+fp > 0 {
			cs.Precision = float64(tp) / float64(tp+fp)
		}
		if tp+fn > 0 {
			cs.Recall = float64(tp) / float64(tp+fn)
		}
		if cs.Precision+cs.Recall > 0 {
			cs.F1 = 2 * cs.Precision * cs.Recall / (cs.Precision + cs.Recall)
		}
		sum += cs.F1
		cs.Precision, cs.Recall, cs.F1 = round(cs.Precision), round(cs.Recall), round(cs.F1)
		r.Classes = append(r.Classes, cs)
	}
	if len(labels) > 0 {
		r.MacroF1 = round(sum / float64(len(labels)))
	}
	return r
}

// Evaluate runs the classifier over the examples and scores it, and keeps
// the first mistakes wrongly labelled rows (0: none). Macro-F1 is over the
// classes present in the gold data (a corpus without a class is not
// penalised for it).
func (c *Classifier) Evaluate(task string, exs []Example, mistakes int) Report {
	gold := make([]string, len(exs))
	pred := make([]string, len(exs))
	present := map[string]bool{}
	conf := make([]float64, len(exs))
	correct := make([]bool, len(exs))
	var wrong []Mistake
	// Pluralism versus none, and micro-F1 over the label sets.
	agree, tp, fp, fn := 0, 0, 0, 0
	for i, e := range exs {
		v := c.judge(task, e)
		gold[i], pred[i] = e.Gold, v.label
		conf[i], correct[i] = v.confidence, v.label == e.Gold
		present[e.Gold] = true
		if v.label != e.Gold && len(wrong) < mistakes {
			text := e.Text
			if task == TaskPluralism {
				text = e.Title + " . " + e.Summary
			}
			wrong = append(wrong, Mistake{Line: e.Line, Gold: e.Gold, Predicted: v.label, Text: text, Evidence: v.evidence})
		}
		if task != TaskPluralism {
			continue
		}
		if (e.Gold == record.PluralismNone) == (v.label == record.PluralismNone) {
			agree++
		}
		want := map[string]bool{}
		for _, l := range e.GoldSet {
			want[l] = true
		}
		for _, l := range v.labels {
			if want[l] {
				tp++
				delete(want, l)
			} else {
				fp++
			}
		}
		fn += len(want)
	}
	var labels []string
	for _, l := range TaskLabels(task) {
		if present[l] {
			labels = append(labels, l)
		}
	}
	r := Score(task, labels, gold, pred)
	r.Rules = c.Version()
	r.Mistakes = wrong
	r.ECE, r.Reliability = Calibration(conf, correct)
	if task == TaskPluralism {
		r.Extra = map[string]float64{"pluralism_vs_none_accuracy": round(float64(agree) / float64(max(len(exs), 1)))}
		if tp > 0 {
			p, rc := float64(tp)/float64(tp+fp), float64(tp)/float64(tp+fn)
			r.Extra["label_set_micro_f1"] = round(2 * p * rc / (p + rc))
		}
	}
	return r
}

// Format writes the report for people: a table per class, macro-F1 and
// the confusion matrix (rows gold, columns predicted).
func (r Report) Format(w io.Writer) {
	fmt.Fprintf(w, "task %s, %d examples, rules %s\n\n", r.Task, r.N, r.Rules)
	fmt.Fprintf(w, "%-20s %9s %9s %9s %9s\n", "class", "precision", "recall", "f1", "support")
	labels := make([]string, 0, len(r.Classes))
	for _, c := range r.Classes {
		fmt.Fprintf(w, "%-20s %9.3f %9.3f %9.3f %9d\n", c.Label, c.Precision, c.Recall, c.F1, c.Support)
		labels = append(labels, c.Label)
	}
	fmt.Fprintf(w, "\nmacro-F1 %.3f   accuracy %.3f\n", r.MacroF1, r.Accuracy)
	keys := make([]string, 0, len(r.Extra))
	for k := range r.Extra {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(w, "%s %.3f\n", k, r.Extra[k])
	}
	fmt.Fprintf(w, "\nexpected calibration error %.3f\n%-11s %6s %11s %9s\n", r.ECE, "confidence", "tags", "mean conf.", "accuracy")
	for _, b := range r.Reliability {
		fmt.Fprintf(w, "%.1f-%.1f    %6d %11.3f %9.3f\n", b.Lo, b.Hi, b.N, b.Confidence, b.Accuracy)
	}
	fmt.Fprintf(w, "\nconfusion (rows gold, columns predicted)\n%-20s", "")
	for _, l := range labels {
		fmt.Fprintf(w, " %10.10s", l)
	}
	fmt.Fprintln(w)
	for _, g := range labels {
		fmt.Fprintf(w, "%-20s", g)
		for _, p := range labels {
			fmt.Fprintf(w, " %10d", r.Confusion[g][p])
		}
		fmt.Fprintln(w)
	}
	formatMistakes(w, r.Mistakes)
}
