package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/citecrawl/citecrawl/classify"
	"github.com/citecrawl/citecrawl/record"
)

// An induced lexicon is fitted on a small hand-made train file and scored
// on a separate hand-made dev file: the judgements are said in words no
// hand-written cue holds ("works remarkably well", "breaks down"), so the
// dev rows are right only if phrases read off the train rows carry over.
// -write puts them in their own block of each label, a fit reads the file
// without them, and writing again writes the same file.
func TestInducedLexiconOnUnseenRows(t *testing.T) {
	dir := t.TempDir()
	rules := filepath.Join(dir, "rules")
	files := map[string]string{
		"rules.yaml": "version: test\nnegation_scope: 3\nnegators: [\"not\"]\n",
		"roles.yaml": "prior: {background: 1}\nnegated: drop\nlabels: {}\n",
		"polarity.yaml": `# Polarity for the test.
prior:
  neutral: 1

negated: flip

labels:
  neutral:
    # Pointers.
    "see": 1
  supporting:
    "excellent": 1
  contrasting:
    "fails": 1
`,
		"pluralism.yaml": "negated: drop\nlabels: {}\n",
	}
	writeRules(t, rules, files)
	topics := []string{"parsing", "tagging", "chunking", "segmentation", "translation", "alignment", "summarization", "retrieval"}
	var train, dev strings.Builder
	line := func(b *strings.Builder, text, label string) {
		fmt.Fprintf(b, "{\"text\":%q,\"label\":%q}\n", text, label)
	}
	for i, topic := range topics {
		for j := range 3 {
			// Names are capitalised inside the sentence: never a cue.
			line(&train, fmt.Sprintf("The approach of Kowalski for %s works remarkably well in setting %c.", topic, 'a'+j), "POSITIVE")
			line(&train, fmt.Sprintf("The model of Kowalski breaks down on %s in setting %c.", topic, 'a'+j), "NEGATIVE")
			line(&train, fmt.Sprintf("A corpus of %s was collected by Kowalski in setting %c.", topic, 'a'+j), "NEUTRAL")
			line(&train, fmt.Sprintf("Kowalski describe %s data in setting %c.", topics[(i+1)%len(topics)], 'a'+j), "NEUTRAL")
		}
	}
	for _, topic := range []string{"morphology", "lexicography", "discourse"} {
		line(&dev, "For "+topic+" their tagger works remarkably well.", "POSITIVE")
		line(&dev, "On "+topic+" their tagger breaks down.", "NEGATIVE")
		line(&dev, "A corpus of "+topic+" was collected.", "NEUTRAL")
	}
	trainPath := filepath.Join(dir, "clinical", "train.jsonl")
	devPath := filepath.Join(dir, "clinical", "dev.jsonl")
	if err := os.MkdirAll(filepath.Dir(trainPath), 0o755); err != nil {
		t.Fatal(err)
	}
	for p, text := range map[string]string{trainPath: train.String(), devPath: dev.String()} {
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	sources := []source{{useTrain, trainPath}, {useDev, devPath}}
	o := options{lambda: 0.0001, balance: 1, size: 1, iters: 300, folds: 5, maxSlope: 2, minWeight: 0.1,
		induceMinRows: 5, induceLambda: 0.001}

	m, sets, err := setup(rules, classify.TaskPolarity, sources, o)
	if err != nil {
		t.Fatal(err)
	}
	if without := m.evaluate(sets, o).mean; without > 0.6 {
		t.Fatalf("dev macro-F1 %.3f without induced cues: the hand-made rows should need them", without)
	}

	o.induce = 10
	m, sets, err = setup(rules, classify.TaskPolarity, sources, o)
	if err != nil {
		t.Fatal(err)
	}
	res := m.evaluate(sets, o)
	if res.mean < 0.99 {
		t.Errorf("dev macro-F1 %.3f with induced cues, want all right: %v", res.mean, res.lines)
	}
	path := filepath.Join(rules, "polarity.yaml")
	if err := m.write(path, res.theta, res); err != nil {
		t.Fatal(err)
	}
	written, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"# Polarity for the test.", "    # Pointers.", inducedBegin, inducedEnd} {
		if !strings.Contains(string(written), want) {
			t.Errorf("written file lacks %q:\n%s", want, written)
		}
	}
	for _, never := range []string{"kowalski", "setting a"} {
		if strings.Contains(string(written), never) {
			t.Errorf("a name or a marker became a cue (%q):\n%s", never, written)
		}
	}

	// The shipped classifier reads the block as cues, and its evidence names them.
	r, err := classify.LoadRules(rules)
	if err != nil {
		t.Fatalf("written rules do not load: %v\n%s", err, written)
	}
	tags := classify.New(r).Context("In our tests the lemmatizer works remarkably well.", "", nil)
	if tags.Polarity != "supporting" {
		t.Errorf("after the fit: %s, want supporting (evidence %v)\n%s", tags.Polarity, tags.Evidence, written)
	}
	if !slices.ContainsFunc(tags.Evidence, func(e record.Evidence) bool {
		return strings.Contains("works remarkably well", e.Cue) && e.Label == "supporting"
	}) {
		t.Errorf("evidence %v names no induced cue", tags.Evidence)
	}

	// A fit reads the file without its induced cues, so it starts from the
	// hand-written ones alone and writes the same file again.
	m2, sets2, err := setup(rules, classify.TaskPolarity, sources, o)
	if err != nil {
		t.Fatal(err)
	}
	res2 := m2.evaluate(sets2, o)
	if err := m2.write(path, res2.theta, res2); err != nil {
		t.Fatal(err)
	}
	again, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(again) != string(written) {
		t.Errorf("a second fit wrote another file:\n%s\nwant\n%s", again, written)
	}

	// Without -induce the blocks go.
	o.induce = 0
	m3, sets3, err := setup(rules, classify.TaskPolarity, sources, o)
	if err != nil {
		t.Fatal(err)
	}
	res3 := m3.evaluate(sets3, o)
	if err := m3.write(path, res3.theta, res3); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); strings.Contains(string(b), "induced") {
		t.Errorf("induced block kept without -induce:\n%s", b)
	}
}

// The candidate phrases of a sentence: one to three words, joined as they
// are written, none with a digit or a marker, none beginning with a
// function word.
func TestPhrases(t *testing.T) {
	text := "As shown by #AUTHOR_TAG, the state-of-the-art tagger (2003) is of the best."
	got := phrases(words(text), text)
	for _, want := range []string{"shown", "shown by", "state-of-the", "state", "tagger", "best"} {
		if !slices.Contains(got, want) {
			t.Errorf("%q missing from %q", want, got)
		}
	}
	for _, never := range []string{"as", "by", "of the", "author", "tag", "2003", "tagger is", "the state-of-the-art", "by author", "the best", "of the best", "as shown"} {
		if slices.Contains(got, never) {
			t.Errorf("%q among %q", never, got)
		}
	}
}

// Each fold's induced cues are read off its own training rows: every cue
// a fold may fit occurs in at least -induce-min-rows texts of its label
// outside the fold, so no held-out row chose a cue it is scored with.
// Here one phrase of the supporting rows ("a clear win") is in exactly
// minRows texts: a fold holding one of them out does not induce it.
func TestInducedCuesComeFromTheFoldsTrainingRows(t *testing.T) {
	dir := t.TempDir()
	rules := filepath.Join(dir, "rules")
	writeRules(t, rules, map[string]string{
		"rules.yaml":     "version: test\n",
		"roles.yaml":     "prior: {background: 1}\nnegated: drop\nlabels: {}\n",
		"polarity.yaml":  "prior: {neutral: 1}\nnegated: flip\nlabels:\n  neutral:\n    \"see\": 1\n  supporting:\n    \"excellent\": 1\n",
		"pluralism.yaml": "negated: drop\nlabels: {}\n",
	})
	var gold strings.Builder
	topics := []string{"parsing", "tagging", "chunking", "segmentation", "translation", "alignment", "summarization", "retrieval", "lexicography", "morphology"}
	for i, topic := range topics {
		win := "works remarkably well"
		if i < 5 {
			win = "is a clear win"
		}
		fmt.Fprintf(&gold, "{\"text\":%q,\"label\":\"POSITIVE\"}\n", "For "+topic+" this "+win+".")
		fmt.Fprintf(&gold, "{\"text\":%q,\"label\":\"NEUTRAL\"}\n", "A corpus of "+topic+" was collected.")
		fmt.Fprintf(&gold, "{\"text\":%q,\"label\":\"NEUTRAL\"}\n", "Data on "+topic+" were gathered.")
		fmt.Fprintf(&gold, "{\"text\":%q,\"label\":\"NEUTRAL\"}\n", "Annotation guidelines for "+topic+" are published online.")
		fmt.Fprintf(&gold, "{\"text\":%q,\"label\":\"NEUTRAL\"}\n", "Tools for "+topic+" exist in many languages today.")
	}
	path := filepath.Join(dir, "clinical", "dev.jsonl")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(gold.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	o := options{lambda: 0.0001, balance: 1, size: 1, iters: 100, folds: 5, seed: 1, maxSlope: 2,
		induce: 10, induceMinRows: 5, induceLambda: 0.01}
	m, sets, err := setup(rules, classify.TaskPolarity, []source{{useCV, path}}, o)
	if err != nil {
		t.Fatal(err)
	}
	fold, _ := assignFolds(sets, o)
	clear := map[int]bool{}
	for f := -1; f < o.folds; f++ {
		train := trainRows(sets, fold, f)
		for pi := range m.lexicon[f] {
			p := m.params[pi]
			n := 0
			for i, rw := range sets[0].rows {
				if train[[2]int{0, i}] && m.ls.Labels[rw.gold[0]] == p.label && strings.Contains(strings.ToLower(rw.text), p.key) {
					n++
				}
			}
			if n < o.induceMinRows {
				t.Errorf("fold %d fits %q (%s), in %d of its training texts of that label, under %d", f, p.key, p.label, n, o.induceMinRows)
			}
			if p.key == "clear" {
				clear[f] = true
			}
		}
	}
	// "clear" is in 5 texts: induced from all rows, and from a fold only
	// when the fold holds none of them out.
	for f := -1; f < o.folds; f++ {
		heldOut := false
		for i, rw := range sets[0].rows {
			heldOut = heldOut || fold[[2]int{0, i}] == f && strings.Contains(rw.text, "clear")
		}
		if clear[f] == heldOut {
			t.Errorf("fold %d: \"clear\" induced %v, one of its texts held out %v", f, clear[f], heldOut)
		}
	}
	if len(clear) < 2 {
		t.Errorf("\"clear\" induced for folds %v: the test needs a fold that keeps all its texts", clear)
	}
}

// With the cited marker's place, each phrase comes again as a sided cue
// of the side it is on, so that "our parser outperforms [3]" and "[3]
// outperforms our parser" give different cues; a phrase across the marker
// has no side.
func TestSidedPhrases(t *testing.T) {
	text := "Our parser outperforms [3], which fails on long inputs."
	at := []int{strings.Index(text, "[3]"), strings.Index(text, "[3]") + 3}
	got := sidedPhrases(words(text), text, at)
	for _, want := range []string{"outperforms", "before-cited: outperforms", "before-cited: parser outperforms", "after-cited: fails", "fails"} {
		if !slices.Contains(got, want) {
			t.Errorf("%q missing from %q", want, got)
		}
	}
	for _, never := range []string{"after-cited: outperforms", "before-cited: fails", "before-cited: outperforms 3"} {
		if slices.Contains(got, never) {
			t.Errorf("%q among %q", never, got)
		}
	}
	if plain := phrases(words(text), text); slices.ContainsFunc(plain, func(p string) bool { return strings.Contains(p, "cited:") }) {
		t.Errorf("sided phrases without a marker: %q", plain)
	}
}
