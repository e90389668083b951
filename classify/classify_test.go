package classify

import (
	"fmt"
	"maps"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/citecrawl/citecrawl/internal/testkit"
	"github.com/citecrawl/citecrawl/record"
)

func testClassifier(t testing.TB) *Classifier {
	t.Helper()
	r, err := LoadRules(filepath.Join("..", "configs", "rules"))
	if err != nil {
		t.Fatal(err)
	}
	return New(r)
}

// Each role has sentences that must trigger it and ones that must not.
func TestRoleRuleFamilies(t *testing.T) {
	c := testClassifier(t)
	for _, tc := range []struct {
		text, want string
	}{
		{"We use the Penn Treebank dataset [3] for all experiments.", record.RoleUses},
		{"Following [4], we train the tagger on sections 2-21.", record.RoleUses},
		{"Our results are consistent with those of [5].", record.RoleCompares},
		{"Unlike [6], our parser needs no lexicon and outperforms it.", record.RoleCompares},
		{"We extend the model of [7] to handle discontinuous spans.", record.RoleExtends},
		{"Building on [8], we add a copy mechanism.", record.RoleExtends},
		{"In future work, we plan to combine our method with [9].", record.RoleFuture},
		{"However, the problem of long documents has not been addressed [10].", record.RoleMotivation},
		{"Parsing has been studied extensively (e.g. [1, 2]).", record.RoleBackground},
		{"Word embeddings were introduced by [11].", record.RoleBackground},
	} {
		if got := c.Context(tc.text, "", nil); got.Role != tc.want {
			t.Errorf("%q: role %s, want %s (evidence %v)", tc.text, got.Role, tc.want, got.Evidence)
		}
	}
}

func TestNegatedRoleCueDoesNotFire(t *testing.T) {
	c := testClassifier(t)
	got := c.Context("In contrast to prior systems, we do not adopt the lexicon of [3].", "", nil)
	for _, e := range got.Evidence {
		if e.Cue == "we adopt" {
			t.Fatalf("negated cue fired: %v", got.Evidence)
		}
	}
}

func TestPolarityRuleFamilies(t *testing.T) {
	c := testClassifier(t)
	for _, tc := range []struct {
		text, want string
	}{
		{"The approach of [3] has been successfully applied to many languages.", record.PolaritySupporting},
		{"Our findings are in line with [4].", record.PolaritySupporting},
		{"Unfortunately, the method of [5] can only handle short sentences.", record.PolarityContrasting},
		{"This contrasts with the findings of [6].", record.PolarityContrasting},
		{"Parsing is described in [7].", record.PolarityNeutral},
		{"Several taggers exist (e.g. [1, 2]).", record.PolarityNeutral},
		// Negation flips the side: "not in line with" disagrees.
		{"Our findings are not in line with those of [8].", record.PolarityContrasting},
	} {
		if got := c.Context(tc.text, "", nil); got.Polarity != tc.want {
			t.Errorf("%q: polarity %s, want %s (evidence %v)", tc.text, got.Polarity, tc.want, got.Evidence)
		}
	}
}

// smallRules builds a classifier from rule files given as text; a file
// left out has no cues. Mechanisms are tested on these, apart from the
// fitted weights of the shipped rules.
func smallRules(t *testing.T, files map[string]string) *Classifier {
	t.Helper()
	fsys := fstest.MapFS{}
	for name, text := range map[string]string{
		"rules.yaml":     "version: test\n",
		"roles.yaml":     "prior: {background: 1}\nnegated: drop\nlabels: {}\n",
		"polarity.yaml":  "prior: {neutral: 1}\nnegated: flip\nlabels: {}\n",
		"pluralism.yaml": "prior: {none: 1}\nnegated: drop\nlabels: {}\n",
	} {
		if f, ok := files[name]; ok {
			text = f
		}
		fsys[name] = &fstest.MapFile{Data: []byte(text)}
	}
	r, err := LoadRulesFS(fsys, "small")
	if err != nil {
		t.Fatal(err)
	}
	return New(r)
}

// miniRules have one polarity cue of weight 2 per side, negation and hedging.
func miniRules(t *testing.T) *Classifier {
	return smallRules(t, map[string]string{
		"rules.yaml": "version: test\nnegation_scope: 3\nnegators: [not]\nhedge_scope: 3\nhedge_factor: 0.5\nhedges: [may]\n",
		"roles.yaml": "prior: {background: 1}\nnegated: drop\nlabels:\n  uses:\n    \"we use\": 2\n",
		"polarity.yaml": "prior: {neutral: 1}\nnegated: flip\nlabels:\n" +
			"  supporting:\n    \"effective\": 2\n  contrasting:\n    \"fails\": 2\n    \"fail\": 2\n",
	})
}

func TestNegationFlipsPolarity(t *testing.T) {
	c := miniRules(t)
	for text, want := range map[string]string{
		"The approach of [8] is effective on noisy text.":     record.PolaritySupporting,
		"The approach of [8] is not effective on noisy text.": record.PolarityContrasting,
		"The approach of [8] fails on noisy text.":            record.PolarityContrasting,
		"Not one of the systems [8] is described here.":       record.PolarityNeutral,
	} {
		if got := c.Context(text, "", nil); got.Polarity != want {
			t.Errorf("%q: polarity %s, want %s (evidence %v)", text, got.Polarity, want, got.Evidence)
		}
	}
	if got := c.Context("We do not use [3].", "", nil); got.Role != record.RoleBackground || len(got.Evidence) != 0 {
		t.Errorf("negated role cue counted: %s %v", got.Role, got.Evidence)
	}
}

func TestHedgedCueWeighsLess(t *testing.T) {
	c := miniRules(t)
	plain := c.Context("The method of [5] fails on long inputs.", "", nil)
	hedged := c.Context("The method of [5] may fail on long inputs.", "", nil)
	if hedged.PolarityScores[record.PolarityContrasting] >= plain.PolarityScores[record.PolarityContrasting] {
		t.Fatalf("hedged %v not weaker than plain %v", hedged.PolarityScores, plain.PolarityScores)
	}
}

func TestCueNearMarkerWeighsMore(t *testing.T) {
	c := testClassifier(t)
	text := "We use a lexicon throughout; a long aside about unrelated matters follows here and goes on and on for a good while, then [3]."
	far := c.Context(text, "", []int{len([]rune(text)) - 4, len([]rune(text)) - 1})
	near := c.Context(text, "", []int{0, 2})
	if near.RoleScores[record.RoleUses] <= far.RoleScores[record.RoleUses] {
		t.Fatalf("near %v, far %v", near.RoleScores, far.RoleScores)
	}
}

// A tally holds the labels a section or a flipped cue adds beyond the
// file's own (prior and cue labels): a role file that flips a negated cue
// counts it for neutral, and a section may weigh a role no cue has; both
// are among the scores, and neither can be the tag.
func TestTallyHoldsLabelsBeyondTheFiles(t *testing.T) {
	c := smallRules(t, map[string]string{
		"rules.yaml": "version: test\nnegation_scope: 3\nnegators: [not]\n",
		"roles.yaml": "prior: {background: 1}\nnegated: flip\nlabels:\n  uses:\n    \"we use\": 2\nsections:\n  \"method\": {extends: 0.5, uses: 0.25}\n",
	})
	got := c.Context("Not that we use the treebank of [3].", "Method", nil)
	want := map[string]float64{record.RoleBackground: 1, record.PolarityNeutral: 2, record.RoleExtends: 0.5, record.RoleUses: 0.25}
	if !maps.Equal(got.RoleScores, want) || got.Role != record.RoleBackground {
		t.Fatalf("role %s, scores %v, want background and %v (evidence %v)", got.Role, got.RoleScores, want, got.Evidence)
	}
}

func TestSectionPrior(t *testing.T) {
	c := smallRules(t, map[string]string{
		"roles.yaml": "prior: {background: 1}\nnegated: drop\nlabels:\n  uses:\n    \"we use\": 1\nsections:\n  \"experiment\": {uses: 2}\n",
	})
	if got := c.Context("The treebank of [3] is large.", "Related Work", nil); got.Role != record.RoleBackground {
		t.Fatalf("role %s outside an experiment section, want background", got.Role)
	}
	got := c.Context("The treebank of [3] is large.", "4 Experimental Setup", nil)
	if got.Role != record.RoleUses {
		t.Fatalf("role %s in an experiment section, want uses (%v)", got.Role, got.Evidence)
	}
}

func TestPluralism(t *testing.T) {
	c := testClassifier(t)
	for _, tc := range []struct {
		title, summary, want string
	}{
		{"Jury Learning", "Models individual annotators and their disagreement through a jury.", record.PluralismJury},
		{"Persona Steering", "Steers the model to a chosen persona at inference time.", record.PluralismSteerable},
		// A Pareto front alone is also multi-objective search (a hard
		// negative, none): the objectives must be an aligned model's.
		{"Pareto Alignment", "We align a language model to multiple objectives at once, measure the trade-offs between helpfulness and harmlessness, and report the Pareto front.", record.PluralismMultiObjective},
		{"Faster Retrieval", "A new index structure for sparse retrieval.", record.PluralismNone},
	} {
		p := c.Pluralism(tc.title, tc.summary, "")
		if p.Primary != tc.want {
			t.Errorf("%q: primary %s, want %s (scores %v)", tc.title, p.Primary, tc.want, p.Scores)
		}
		if tc.want != record.PluralismNone && len(p.Evidence) == 0 {
			t.Errorf("%q: label without evidence", tc.title)
		}
	}
}

func TestTagRecordFromSummaryAndContexts(t *testing.T) {
	c := testClassifier(t)
	r := record.Record{Paper: record.Paper{Title: "X", Summary: "We extend the roadmap with juries of annotators."}}
	c.Tag(&r)
	if r.RoleSource != record.RoleSourceSummary || r.Role != record.RoleExtends || r.RulesVersion == "" || len(r.RoleEvidence) == 0 {
		t.Fatalf("summary tagging: %+v", r)
	}
	r.Contexts = []record.Context{{Text: "We use [1]."}, {Text: "We use the tool of [1] again."}, {Text: "Unfortunately, [1] fails badly."}}
	c.Tag(&r)
	if r.RoleSource != record.RoleSourceContext || r.Role != record.RoleUses || r.Polarity != record.PolarityContrasting {
		t.Fatalf("context tagging: role %s (%s) polarity %s", r.Role, r.RoleSource, r.Polarity)
	}
}

func TestLoadRulesErrorsNameTheFile(t *testing.T) {
	fsys := fstest.MapFS{
		"rules.yaml":     {Data: []byte("version: x\n")},
		"roles.yaml":     {Data: []byte("negated: drop\nlabels:\n  uses:\n    \"re:(\": 1\n")},
		"polarity.yaml":  {Data: []byte("negated: flip\nlabels: {}\n")},
		"pluralism.yaml": {Data: []byte("negated: drop\nlabels: {}\n")},
	}
	_, err := LoadRulesFS(fsys, "myrules")
	if err == nil || !strings.Contains(err.Error(), "myrules/roles.yaml") || !strings.Contains(err.Error(), "uses") {
		t.Fatalf("err = %v, want the file and label named", err)
	}
}

func BenchmarkContext(b *testing.B) {
	c := testClassifier(b)
	text := "Unlike the parser of Smith et al. [12], which relies on a lexicon, we use the treebank of [3] and obtain results consistent with [4]."
	b.ReportAllocs()
	cpu := testkit.CPUTime(b)
	for b.Loop() {
		c.Context(text, "Experiments", []int{98, 101})
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "contexts/s")
	b.ReportMetric(float64(b.N)/(testkit.CPUTime(b)-cpu).Seconds(), "contexts/cpu-s")
}

// BenchmarkContextCorpus tags the real sentences of the labelled dev
// files (SciCite, ACL-ARC, ACT, Athar, clinical) in turn, one per
// operation. Skipped when ../shared/data is absent.
func BenchmarkContextCorpus(b *testing.B) {
	c := testClassifier(b)
	var exs []Example
	for _, f := range []struct{ file, task string }{
		{"scicite/dev.jsonl", TaskIntent}, {"acl-arc/dev.jsonl", TaskRole}, {"act-3c/dev.csv", TaskRole},
		{"athar/dev.tsv", TaskPolarity}, {"clinical/dev.jsonl", TaskPolarity},
	} {
		path := filepath.Join("..", "..", "shared", "data", f.file)
		if !exists(path) {
			b.Skipf("labelled data %s is absent: this benchmark reads ../shared/data, never a copy", f.file)
		}
		e, err := ReadGold(path, GuessFormat(path), f.task)
		if err != nil {
			b.Fatal(err)
		}
		exs = append(exs, e...)
	}
	b.ReportAllocs()
	cpu := testkit.CPUTime(b)
	i := 0
	for b.Loop() {
		e := &exs[i%len(exs)]
		c.Context(e.Text, e.Section, e.Span)
		i++
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "contexts/s")
	b.ReportMetric(float64(b.N)/(testkit.CPUTime(b)-cpu).Seconds(), "contexts/cpu-s")
}

func TestLeadWords(t *testing.T) {
	for pat, want := range map[string]string{
		`\b(we|our)\b.{0,30}\buse`:  "[we our]",
		`\busing the \w+ dataset`:   "[using]",
		`\b(?:as|also) (reported)`:  "[as also]",
		`(\w+) et al`:               "[]",
		`colou?r`:                   "[]",
		`\b(several|many|a.b) ways`: "[]",
	} {
		if got := fmt.Sprint(leadWords(pat)); got != want {
			t.Errorf("leadWords(%q) = %s, want %s", pat, got, want)
		}
	}
}

// Tags and evidence are the same on every call: records are deduplicated
// by a fingerprint of their content.
func TestDeterministicEvidence(t *testing.T) {
	c := testClassifier(t)
	first := fmt.Sprint(c.Context("We use the treebank of [3] and compare with [4].", "4 Experimental Results and Discussion", []int{27, 30}))
	for range 50 {
		if got := fmt.Sprint(c.Context("We use the treebank of [3] and compare with [4].", "4 Experimental Results and Discussion", []int{27, 30})); got != first {
			t.Fatalf("evidence changed between calls:\n%s\n%s", first, got)
		}
	}
}

// A "pos:" cue matches its word only with the given part of speech.
func TestPartOfSpeechCue(t *testing.T) {
	c := smallRules(t, map[string]string{
		"roles.yaml": "prior: {background: 1}\nnegated: drop\nlabels:\n  uses:\n    \"pos:use/VB\": 2\n  background:\n    \"pos:used/VBN\": 2\n",
	})
	for text, want := range map[string]string{
		"We use the treebank of [3].":          "uses/pos/use/VB",
		"The use of the treebank [3] is rare.": "",
		"It has been used by many [3].":        "background/pos/used/VBN",
	} {
		got := ""
		for _, e := range c.Context(text, "", nil).Evidence {
			got = e.Label + "/" + strings.ReplaceAll(e.Cue, ":", "/")
		}
		if got != want {
			t.Errorf("%q: evidence %q, want %q", text, got, want)
		}
	}
	if _, err := LoadRulesFS(fstest.MapFS{
		"rules.yaml": {Data: []byte("version: test\n")},
		"roles.yaml": {Data: []byte("negated: drop\nlabels:\n  uses:\n    \"pos:we use\": 2\n")},
	}, "bad"); err == nil || !strings.Contains(err.Error(), "pos:WORD/TAG") {
		t.Fatalf("a malformed pos cue: err = %v", err)
	}
	for _, cue := range []string{`""`, `"before-cited:"`} {
		if _, err := LoadRulesFS(fstest.MapFS{
			"rules.yaml": {Data: []byte("version: test\n")},
			"roles.yaml": {Data: []byte("negated: drop\nlabels:\n  uses:\n    " + cue + ": 2\n")},
		}, "bad"); err == nil || !strings.Contains(err.Error(), "bad/roles.yaml: label uses: an empty cue") {
			t.Fatalf("an empty cue %s: err = %v", cue, err)
		}
	}
}

// A sided cue counts only before (or after) the cited marker, and never
// when the marker is unknown.
func TestSidedCue(t *testing.T) {
	c := smallRules(t, map[string]string{
		"polarity.yaml": "prior: {neutral: 1}\nnegated: flip\nlabels:\n" +
			"  contrasting:\n    \"before-cited: outperforms\": 2\n  supporting:\n    \"after-cited: outperforms\": 2\n",
	})
	ours := "Our parser outperforms [3] on every set."
	theirs := "The parser of [3] outperforms ours."
	for _, tc := range []struct {
		text string
		span []int
		want string
	}{
		{ours, []int{23, 26}, record.PolarityContrasting},
		{theirs, []int{14, 17}, record.PolaritySupporting},
		{ours, nil, record.PolarityNeutral},
	} {
		if got := c.Context(tc.text, "", tc.span); got.Polarity != tc.want {
			t.Errorf("%q %v: polarity %s, want %s (evidence %v)", tc.text, tc.span, got.Polarity, tc.want, got.Evidence)
		}
	}
}

// After a contrast word a cue says the sentence's point and weighs more;
// in a concession, up to its comma (not one inside a citation's
// brackets), it weighs less, and the clause after the concession is the
// point. Praise and fault of the same weight tie without the contrast
// block; with it the fault after "but" or after the concession wins, and
// the praise after "but" wins over a conceded fault.
func TestContrastScopeByHand(t *testing.T) {
	cues := "labels:\n  supporting:\n    \"fast\": 1\n  contrasting:\n    \"fails\": 1\n"
	block := "contrast: {words: [but], after: 2, concessions: [although], conceded: 0.5}\n"
	plain := smallRules(t, map[string]string{"polarity.yaml": "prior: {neutral: 0.5}\nnegated: flip\n" + cues})
	scoped := smallRules(t, map[string]string{"polarity.yaml": "prior: {neutral: 0.5}\nnegated: flip\n" + block + cues})
	for _, tc := range []struct {
		text, want string
		scores     map[string]float64 // supporting, contrasting with the block
		rules      []string           // the evidence's rule kinds, in order
	}{
		{"The parser of [1] is fast, but fails on long inputs.", record.PolarityContrasting,
			map[string]float64{"supporting": 1, "contrasting": 2}, []string{"polarity/cue-after-contrast", "polarity/cue"}},
		{"Although the parser (Koehn et al., 2003) fails on long inputs, it is fast.", record.PolaritySupporting,
			map[string]float64{"supporting": 2, "contrasting": 0.5}, []string{"polarity/cue-after-contrast", "polarity/cue-in-concession"}},
		// A bracket left open: the concession still ends at its comma.
		{"Although [1] fails on long inputs (see below, it is fast.", record.PolaritySupporting,
			map[string]float64{"supporting": 2, "contrasting": 0.5}, []string{"polarity/cue-after-contrast", "polarity/cue-in-concession"}},
	} {
		if got := plain.Context(tc.text, "", nil); got.PolarityScores["supporting"] != got.PolarityScores["contrasting"] {
			t.Fatalf("%q without the contrast block: scores %v, want a tie", tc.text, got.PolarityScores)
		}
		got := scoped.Context(tc.text, "", nil)
		if got.Polarity != tc.want {
			t.Errorf("%q: polarity %s, want %s (evidence %v)", tc.text, got.Polarity, tc.want, got.Evidence)
		}
		for l, v := range tc.scores {
			if got.PolarityScores[l] != v {
				t.Errorf("%q: %s scores %v, want %v", tc.text, l, got.PolarityScores[l], v)
			}
		}
		var rules []string
		for _, e := range got.Evidence {
			rules = append(rules, e.Rule)
		}
		if !slices.Equal(rules, tc.rules) {
			t.Errorf("%q: evidence rules %v, want %v", tc.text, rules, tc.rules)
		}
	}
	if _, err := LoadRulesFS(fstest.MapFS{
		"rules.yaml":    {Data: []byte("version: test\n")},
		"roles.yaml":    {Data: []byte("negated: drop\nlabels: {}\n")},
		"polarity.yaml": {Data: []byte("negated: flip\ncontrast: {words: [but], after: -1}\nlabels: {}\n")},
	}, "bad"); err == nil || !strings.Contains(err.Error(), "bad/polarity.yaml: contrast") {
		t.Fatalf("a negative contrast factor: err = %v", err)
	}
	if _, err := LoadRulesFS(fstest.MapFS{
		"rules.yaml":    {Data: []byte("version: test\n")},
		"roles.yaml":    {Data: []byte("negated: drop\nlabels: {}\n")},
		"polarity.yaml": {Data: []byte("negated: flip\ncontrast: {words: [but], concessions: [even though]}\nlabels: {}\n")},
	}, "bad"); err == nil || !strings.Contains(err.Error(), `bad/polarity.yaml: contrast: "even though" is not one word`) {
		t.Fatalf("a contrast entry of two words: err = %v", err)
	}
}

// With a span, a cue closer to another citation's marker than to the cited
// one is about that other work; a year right next to the cited marker is
// part of the same citation.
func TestCueAboutOtherCitation(t *testing.T) {
	c := smallRules(t, map[string]string{
		"rules.yaml": "version: test\ncitation_markers: ['\\[\\d+\\]', '\\b(19|20)\\d\\d\\b', '#author_tag']\nother_citation_factor: 0\n",
		"polarity.yaml": "prior: {neutral: 1}\nnegated: flip\nlabels:\n" +
			"  supporting:\n    \"robust\": 2\n  contrasting:\n    \"fails\": 2\n",
	})
	text := "The parser of [1] fails often, while the parser of [2] is robust."
	for _, tc := range []struct {
		span []int
		want string
	}{
		{[]int{14, 17}, record.PolarityContrasting}, // [1]
		{[]int{51, 54}, record.PolaritySupporting},  // [2]
	} {
		got := c.Context(text, "", tc.span)
		if got.Polarity != tc.want {
			t.Errorf("span %v: polarity %s, want %s (evidence %v)", tc.span, got.Polarity, tc.want, got.Evidence)
		}
		other := 0
		for _, e := range got.Evidence {
			if strings.HasSuffix(e.Rule, "cue-about-other-citation") {
				other++
			}
		}
		if other != 1 {
			t.Errorf("span %v: %d cues told apart as about the other citation, want 1 (%v)", tc.span, other, got.Evidence)
		}
	}
	// "#AUTHOR_TAG, 2003" is one citation: its year is not another work's.
	adj := "As #AUTHOR_TAG, 2003 shows, the old parser fails."
	if got := c.Context(adj, "", []int{3, 14}); got.Polarity != record.PolarityContrasting {
		t.Errorf("%q: polarity %s, want contrasting (evidence %v)", adj, got.Polarity, got.Evidence)
	}
}

// A rule file with a label the record schema does not know is refused,
// naming the file, the label and what to do: otherwise its contexts would
// carry a role that records, reports and summaries never count.
func TestRuleLabelUnknownToTheSchemaIsRefused(t *testing.T) {
	fsys := fstest.MapFS{
		"rules.yaml":     {Data: []byte("version: x\n")},
		"roles.yaml":     {Data: []byte("prior: {background: 1}\nnegated: drop\nlabels:\n  critiques:\n    \"we criticise\": 1\n")},
		"polarity.yaml":  {Data: []byte("prior: {neutral: 1}\nnegated: flip\nlabels: {}\n")},
		"pluralism.yaml": {Data: []byte("prior: {none: 1}\nnegated: drop\nlabels: {}\n")},
	}
	_, err := LoadRulesFS(fsys, "myrules")
	if err == nil || !strings.Contains(err.Error(), "myrules/roles.yaml") || !strings.Contains(err.Error(), `"critiques"`) ||
		!strings.Contains(err.Error(), "record/schema.json") {
		t.Fatalf("err = %v, want the file, the label and the schema named", err)
	}
}

// A label written twice under labels (which YAML lets through) would
// weigh twice in the softmax: it is refused, with both lines.
func TestRuleLabelListedTwiceIsRefused(t *testing.T) {
	fsys := fstest.MapFS{
		"rules.yaml":     {Data: []byte("version: x\n")},
		"roles.yaml":     {Data: []byte("prior: {background: 1}\nnegated: drop\nlabels:\n  uses:\n    \"we use\": 1\n  uses:\n    \"we apply\": 1\n")},
		"polarity.yaml":  {Data: []byte("prior: {neutral: 1}\nnegated: flip\nlabels: {}\n")},
		"pluralism.yaml": {Data: []byte("prior: {none: 1}\nnegated: drop\nlabels: {}\n")},
	}
	_, err := LoadRulesFS(fsys, "myrules")
	if err == nil || !strings.Contains(err.Error(), "myrules/roles.yaml") || !strings.Contains(err.Error(), "uses is listed twice") ||
		!strings.Contains(err.Error(), "lines 4 and 6") {
		t.Fatalf("err = %v, want the file, the label and its two lines named", err)
	}
}

// One list of labels: the shipped rule files use exactly the labels of
// record/schema.json, which are the record package's lists; and the
// record's role is the majority over the rule file's roles, so every
// role a context can get can become the record's.
func TestRuleFilesRecordAndSchemaAgree(t *testing.T) {
	c := testClassifier(t)
	for _, tc := range []struct {
		ls     *LabelSet
		record []string
		kind   string
	}{
		{c.rules.Role, record.Roles, "role"},
		{c.rules.Polarity, record.Polarities, "polarity"},
		{c.rules.Pluralism, record.PluralismCategories, "pluralism"},
	} {
		if !sameSet(tc.ls.Labels, tc.record) || !sameSet(tc.record, record.SchemaLabels(tc.kind)) {
			t.Errorf("%s: rule file %v, record package %v, schema %v", tc.kind, tc.ls.Labels, tc.record, record.SchemaLabels(tc.kind))
		}
	}
	for _, role := range c.rules.Role.Labels {
		if got := c.majorityRole(map[string]int{role: 2, record.RoleBackground: 1}); got != role && role != record.RoleBackground {
			t.Errorf("majority of two %s and one background is %s", role, got)
		}
	}
}

func sameSet(a, b []string) bool {
	return len(a) == len(b) && !slices.ContainsFunc(a, func(x string) bool { return !slices.Contains(b, x) })
}

// Every tag carries a probability; a role guessed from the summary is
// capped and says so; a record the hub no longer lists is left untagged.
func TestTagConfidenceSummaryGuessAndGone(t *testing.T) {
	c := testClassifier(t)
	r := record.Record{Paper: record.Paper{Title: "X", Summary: "We extend the roadmap with juries of annotators."},
		Contexts: []record.Context{{Text: "We use the tool of [1]."}}}
	c.Tag(&r)
	cx := r.Contexts[0]
	if cx.RoleConfidence <= 0 || cx.RoleConfidence > 1 || cx.PolarityConfidence <= 0 || r.RoleConfidence != cx.RoleConfidence ||
		r.Pluralism.Confidence <= 0 || r.Pluralism.Confidence > 1 {
		t.Errorf("confidences: context %v/%v, record %v, pluralism %v", cx.RoleConfidence, cx.PolarityConfidence, r.RoleConfidence, r.Pluralism.Confidence)
	}
	s := record.Record{Paper: r.Paper}
	c.Tag(&s)
	if s.RoleSource != record.RoleSourceSummary || s.RoleConfidence > c.rules.SummaryRoleConfidence ||
		len(s.RoleEvidence) == 0 || s.RoleEvidence[0].Rule != "roles/summary-only-guess" {
		t.Errorf("summary guess: confidence %v (cap %v), evidence %v", s.RoleConfidence, c.rules.SummaryRoleConfidence, s.RoleEvidence)
	}
	g := record.Record{Gone: true, Paper: r.Paper, Contexts: []record.Context{{Text: "We use [1]."}}}
	c.Tag(&g)
	if g.Role != "" || g.RulesVersion != "" || g.Pluralism != nil || g.Contexts[0].Role != "" {
		t.Errorf("a gone record was tagged: %+v", g)
	}
}

// A pattern's literal parts must be in a text for it to match; a text
// without them skips the pattern, so none may be missed.
func TestLiteralNeeds(t *testing.T) {
	for pat, want := range map[string]string{
		`\bdeliberat(ion|ions|ive)\b`:                         "[[deliberation deliberative]]",
		`\b(voting|votes?|democratic|citizens?)\b`:            "[[voting vote democratic citizen]]",
		`\b(we|our)\b.{0,30}\b(use|adopt)`:                    "[[use adopt]]",
		`\bsummar(y|ies)\b.{0,60}\b(perspectives|opinions)\b`: "[[summary summaries] [perspectives opinions]]",
		`colou?r`:              "[[colo]]",
		`\[\s*\d+\s*[-–,]`:     "[]",
		`\bmulti[- ]objective`: "[[multi] [objective]]",
	} {
		if got := fmt.Sprint(literalNeeds(pat)); got != want {
			t.Errorf("literalNeeds(%q) = %s, want %s", pat, got, want)
		}
		re := regexp.MustCompile(pat)
		for _, text := range []string{"deliberative", "votes", "citizen", "we adopt", "summaries of opinions", "color", "[1,", "multi-objective", "our use"} {
			ls := &LabelSet{Cues: []Cue{{re: re, needs: literalNeeds(pat)}}}
			indexLiterals(ls)
			if re.MatchString(text) && !needsThere(&ls.Cues[0], ls.lits.find(text, nil)) {
				t.Errorf("%q matches %q but the pre-check skips it", pat, text)
			}
		}
	}
}

// Pluralism weighs what the paper does (its title, its "we propose"
// sentences) above what it mentions, and counts the sentences citing the
// hub's work at citing_factor, told apart in the evidence.
func TestPluralismOwnWorkAndCitingSentences(t *testing.T) {
	c := smallRules(t, map[string]string{
		"pluralism.yaml": "prior: {none: 1.5}\nnegated: drop\nown_work_boost: 2\nciting_factor: 0.5\n" +
			"own_work: ['\\bwe (propose|introduce)\\b']\nlabels:\n  jury_pluralistic:\n    \"jury\": 1\n",
	})
	mention := c.Pluralism("Faster Retrieval", "Unlike jury methods, retrieval needs speed. We propose an index.", "")
	does := c.Pluralism("Faster Retrieval", "Retrieval needs speed. We propose a jury of annotators.", "")
	if mention.Primary != record.PluralismNone || does.Primary != record.PluralismJury {
		t.Errorf("mentioned: %s %v; done: %s %v", mention.Primary, mention.Scores, does.Primary, does.Scores)
	}
	if does.Evidence[0].Rule != "pluralism/cue-in-own-work" || does.Evidence[0].Weight != 2 {
		t.Errorf("own-work evidence %v", does.Evidence)
	}
	cited := c.Pluralism("Faster Retrieval", "Unlike jury methods, retrieval needs speed.", "",
		"We extend the jury benchmarks of [2].", "The jury of [2] is large.")
	if cited.Primary != record.PluralismJury || cited.Scores[record.PluralismJury] != 2 {
		t.Errorf("with citing sentences: %s %v", cited.Primary, cited.Scores)
	}
	n := 0
	for _, e := range cited.Evidence {
		if e.Rule == "pluralism/cue-in-citing-sentence" && e.Weight == 0.5 {
			n++
		}
	}
	if n != 2 {
		t.Errorf("want two citing-sentence cues at 0.5: %v", cited.Evidence)
	}
}
