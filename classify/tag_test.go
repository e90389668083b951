package classify

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/citecrawl/citecrawl/ingest/snapshot"
	"github.com/citecrawl/citecrawl/record"
)

// A record known only by its title and summary is tagged with its summary
// and its title and summary prepared once for both (Tag's suffix): its
// tags must be those of Context on the summary and Pluralism on the title
// and summary, which TestTagsUnchanged pins, whatever the text: titles and
// summaries from the generated papers and the labelled pluralism rows, and
// texts whose lowering changes their length, with bytes that are not
// UTF-8, or that begin or end in the middle of a word.
func TestTagOfSummaryIsContextAndPluralism(t *testing.T) {
	c := testClassifier(t)
	type paper struct{ title, summary, abstract string }
	papers := []paper{
		{"İSTANBUL Juries", "WE PROPOSE a jury of annotators; ÀÉÎ disagree.", ""},
		{"Bad \xff bytes", "\xfe\xffwe model each annotator and aggregate their votes", ""},
		{"Title ends mid-word_", "_starts mid-word: we propose pluralistic alignment.", ""},
		{"", "Summary only: we use a jury of raters.", ""},
		{"Title only", "", ""},
		{"With an abstract", "A summary that is not read.", "We propose to aggregate the annotators' labels with a jury."},
	}
	for _, p := range snapshot.Generated(50).Papers {
		papers = append(papers, paper{p.Title, p.Summary, ""})
	}
	if p := "../../shared/data/pluralism/dev.jsonl"; exists(p) {
		exs, err := ReadGold(p, GuessFormat(p), TaskPluralism)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range exs {
			papers = append(papers, paper{e.Title, e.Summary, ""})
		}
	}
	for _, p := range papers {
		r := record.Record{Paper: record.Paper{Title: p.title, Summary: p.summary, Abstract: p.abstract}}
		c.Tag(&r)
		text := p.summary
		if text == "" {
			text = p.title
		}
		ct := c.Context(text, "", nil)
		pl := c.Pluralism(p.title, p.summary, p.abstract)
		want := record.Record{Paper: r.Paper, RulesVersion: c.Version(), Role: ct.Role, RoleSource: record.RoleSourceSummary,
			RoleConfidence: min(ct.RoleConfidence, c.rules.SummaryRoleConfidence),
			RoleEvidence: append([]record.Evidence{{Label: ct.Role, Rule: "roles/summary-only-guess",
				Cue: "no citing sentence known: guessed from the paper's own summary", Weight: 0}}, ct.Evidence...),
			Polarity: ct.Polarity, PolarityConfidence: min(ct.PolarityConfidence, c.rules.SummaryRoleConfidence), Pluralism: &pl}
		got, _ := json.Marshal(r)
		wantJSON, _ := json.Marshal(want)
		if string(got) != string(wantJSON) {
			t.Fatalf("%q / %q tagged\n%s\nwant\n%s", p.title, p.summary, got, wantJSON)
		}
		// The role's and the pluralism's evidence share an array: one
		// grown is not written into the other.
		r.RoleEvidence = append(r.RoleEvidence, record.Evidence{Label: "grown"})
		if got, _ := json.Marshal(r.Pluralism); !slices.Equal(got, mustJSON(t, pl)) {
			t.Fatalf("%q / %q: the pluralism, once the role evidence grew, is\n%s\nwant\n%s", p.title, p.summary, got, mustJSON(t, pl))
		}
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A scratch that tagged other records tags the next as a new one does:
// what it remembers of a text (the literals found, negatedHedged's
// answers) is not taken for another's, though the next record's texts
// are lowered into the same space (scratch.lower), at the same places
// and of the same lengths. Each pair differs in a negator before a cue.
func TestTagInAUsedScratchIsTagAlone(t *testing.T) {
	c := testClassifier(t)
	summary := func(s string) record.Record { return record.Record{Paper: record.Paper{Summary: s}} }
	citing := func(s string) record.Record {
		return record.Record{Contexts: []record.Context{{Text: s, CiteSpan: []int{len(s) - 4, len(s) - 1}}}}
	}
	pairs := [][2]record.Record{
		{summary("We do not use the treebank."), summary("We do now use the treebank.")},
		{summary("We do now use the treebank."), summary("We do not use the treebank.")},
		{citing("We do not use a jury of annotators [3]."), citing("We do now use a jury of annotators [3].")},
		{citing("We do now use a jury of annotators [3]."), citing("We do not use a jury of annotators [3].")},
	}
	used := new(scratch)
	for _, p := range pairs {
		first, second, alone := p[0], p[1], p[1]
		first.Contexts, second.Contexts = slices.Clone(first.Contexts), slices.Clone(second.Contexts)
		alone.Contexts = slices.Clone(alone.Contexts)
		c.tag(&first, used)
		c.tag(&second, used)
		c.tag(&alone, new(scratch))
		got, _ := json.Marshal(second)
		want, _ := json.Marshal(alone)
		if string(got) != string(want) {
			t.Errorf("after the record of %q %v, tagged\n%s\nwant\n%s", p[0].Paper.Summary, p[0].Contexts, got, want)
		}
	}
}

// A summary's guess takes the cap for its confidence, not worked out,
// from setWords.cappedFrom on: there the confidence worked out would be
// capped too, on a grid of probabilities and around each bar, for the
// rules' cap and for caps that are not thousandths (the confidence is
// rounded to thousandths); and the bars of the rules' role and polarity
// files are below 1, so the shortcut is taken.
func TestCappedFromIsWhereTheCapBites(t *testing.T) {
	c := testClassifier(t)
	for _, ls := range []*LabelSet{c.rules.Role, c.rules.Polarity} {
		for i, l := range ls.Labels {
			if from := c.sets[ls].cappedFrom[i]; from >= 1 {
				t.Errorf("%s %s: capped from %v: the shortcut is never taken", ls.Name, l, from)
			}
			for _, most := range []float64{c.rules.SummaryRoleConfidence, 0.3333, 0.5004, 0.6667, 0.45} {
				from := ls.calibration(l, false).reaches(most)
				ps := []float64{from, math.Nextafter(from, 2), from + 1e-12, from + 1e-6, 1}
				for k := range 10001 {
					ps = append(ps, float64(k)/10000)
				}
				for _, p := range ps {
					if conf := ls.LabelConfidence(l, p, false); p >= from && min(conf, most) != most {
						t.Errorf("%s %s, cap %v: p %v >= %v, capped from there, but its confidence %v is below the cap", ls.Name, l, most, p, from, conf)
					}
				}
			}
		}
	}
}

// probabilityFloor, which settles most summaries' capped guesses without
// an exp, is never above probabilityAt: scores of every label set,
// random, tied, far apart, rounded as tallies are; and it is at the cap's
// threshold often enough to be worth it.
func TestProbabilityFloorIsBelowProbability(t *testing.T) {
	c := testClassifier(t)
	rng := rand.New(rand.NewPCG(15, 16))
	for _, ls := range []*LabelSet{c.rules.Role, c.rules.Polarity, c.rules.Pluralism} {
		n, settled := 0, 0
		for range 50000 {
			scores := make([]float64, len(ls.Labels))
			spread := []float64{0.001, 0.01, 0.5, 2, 8, 40}[rng.IntN(6)]
			for i := range scores {
				switch rng.IntN(4) {
				case 0:
					scores[i] = 0
				case 1:
					scores[i] = scores[rng.IntN(i+1)] // a tie, now and then
				default:
					scores[i] = round(rng.NormFloat64() * spread)
				}
			}
			best := argmax(scores)
			if best < 0 {
				continue
			}
			floor, p := probabilityFloor(ls, scores), probabilityAt(ls, scores, best)
			if floor > p {
				t.Fatalf("%s scores %v: floor %v above the probability %v", ls.Name, scores, floor, p)
			}
			if from := c.sets[ls].cappedFrom[best]; p >= from {
				n++
				if floor >= from {
					settled++
				}
			}
		}
		if ls != c.rules.Pluralism && settled < n/2 {
			t.Errorf("%s: the floor settled %d of %d capped guesses", ls.Name, settled, n)
		}
	}
	if floor := probabilityFloor(c.rules.Role, []float64{math.NaN(), 1, 0, 0, 0, 0}); floor != 0 {
		t.Errorf("floor of a NaN score: %v, want 0", floor)
	}
}

// A record with citing sentences is tagged as Context tags each sentence
// and Pluralism tags the paper with them, though Tag tallies each
// sentence's pluralism cues while it is prepared for its own tags
// (stashCiting) rather than preparing it again: labelled rows as
// sentences, with and without markers and sections, beyond ASCII, cut
// mid-word, empty, one to four to a record.
func TestTagOfContextsIsContextAndPluralism(t *testing.T) {
	c := testClassifier(t)
	texts := []string{
		"Unlike majority voting, we follow [3] and keep every annotator's label.", "",
		"Jury learning [3] shows that dissenting voices matter, but it needs demographic data.",
		"ÀÉÎ [2] disagree with the pluralistic jury of [3], while [4] does not.", "_mid-word: a jury of raters [1]",
		"\xfe\xff we aggregate the annotators' votes (Smith, 2003) and steer the model to diverse perspectives",
	}
	texts = append(texts, labelledTexts(t, 200)...)
	rng := rand.New(rand.NewPCG(17, 18))
	for k := 0; k < len(texts); {
		r := record.Record{Paper: record.Paper{Title: "Modeling annotator perspectives", Summary: "We use juries.",
			Abstract: []string{"", "We propose a pluralistic benchmark of diverse opinions."}[rng.IntN(2)]}}
		var citing []string
		for n := 1 + rng.IntN(4); n > 0 && k < len(texts); n-- {
			cx := record.Context{Text: texts[k], Section: []string{"", "Related Work", "Method"}[rng.IntN(3)]}
			if i := strings.Index(cx.Text, "["); i >= 0 && rng.IntN(2) == 0 {
				cx.CiteSpan = []int{utf8.RuneCountInString(cx.Text[:i]), utf8.RuneCountInString(cx.Text[:i]) + 3}
			}
			r.Contexts = append(r.Contexts, cx)
			citing = append(citing, cx.Text)
			k++
		}
		want := r
		want.Contexts = slices.Clone(r.Contexts)
		c.Tag(&r)
		for i := range want.Contexts {
			cx := &want.Contexts[i]
			ct := c.Context(cx.Text, cx.Section, cx.CiteSpan)
			cx.Role, cx.Polarity, cx.Evidence = ct.Role, ct.Polarity, ct.Evidence
			cx.RoleConfidence, cx.PolarityConfidence = ct.RoleConfidence, ct.PolarityConfidence
		}
		pl := c.Pluralism(r.Paper.Title, r.Paper.Summary, r.Paper.Abstract, citing...)
		if got, want := mustJSON(t, r.Contexts), mustJSON(t, want.Contexts); !slices.Equal(got, want) {
			t.Fatalf("contexts tagged\n%s\nwant\n%s", got, want)
		}
		if got, want := mustJSON(t, r.Pluralism), mustJSON(t, pl); !slices.Equal(got, want) {
			t.Fatalf("%q: pluralism\n%s\nwant\n%s", citing, got, want)
		}
	}
}

// A tagged record's pluralism labels have no spare room: two appends to
// them write places of their own, as they did before the labels shared an
// allocation with the pluralism.
func TestTagLeavesNoRoomAfterThePluralismLabels(t *testing.T) {
	c := testClassifier(t)
	for _, r := range []record.Record{
		{Paper: record.Paper{Title: "Modeling annotator perspectives", Summary: "We aggregate a jury of annotators."}},
		{Paper: record.Paper{Title: "A benchmark"}, Contexts: []record.Context{{Text: "Unlike [3], we steer the model to a persona at inference time."}}},
	} {
		c.Tag(&r)
		l := r.Pluralism.Labels
		if len(l) == 0 || cap(l) != len(l) {
			t.Fatalf("labels %q: len %d, cap %d", l, len(l), cap(l))
		}
		a, b := append(l, "x"), append(l, "y")
		if a[len(l)] != "x" || b[len(l)] != "y" {
			t.Fatalf("two appends to %q share a place: %q and %q", l, a, b)
		}
	}
}
