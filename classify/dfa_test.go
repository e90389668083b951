package classify

import (
	"math/rand/v2"
	"regexp"
	"regexp/syntax"
	"slices"
	"strings"
	"testing"

	"github.com/citecrawl/citecrawl/internal/testkit"
)

// The automaton finds what regexp's FindAllStringIndex finds, with
// patterns made to trip it (the priority of choices, lazy and greedy
// repeats, \b and \B inside, ^ and $ with newlines, runes beyond ASCII in
// classes, the rules' own) over made-up texts and random ones drawn from
// the pieces that matter (invalid UTF-8 among them).
func TestDFAFindsWhatRegexpFinds(t *testing.T) {
	pats := []string{
		`a|ab`, `ab|a`, `(a|ab)(c|bcd)(d*)`, `a+?b`, `a+?`, `x.{0,3}?y`, `x.{0,3}y`, `\bx\B.`, `(?m)^x$`, `x$`, `\nx`,
		`[^\[\]]{0,5}\d[^\[\]]{0,5}\]`, `\[\d+(\s*[,–-]\s*\d+){2,}\s*\]`, `é+\b`, `[à-ÿ]+x`, `\d{4}[a-z]?\s*[;,]\s*[a-z]`,
		`.x`, `(?s).x`, `[^a]b`, `\pL+`, `a\b`, `\b(we|our)\b.{0,30}\b(use|used)\b`, `(?U)a+b?`, `\d{2,}`, `(a|b)*?c`,
		`we\b|\bw`, `\[\s*\d+\s*[-–,]`, `(?i)we`, `\Ax|y\z`,
	}
	c := testClassifier(t)
	for _, ls := range []*LabelSet{c.rules.Role, c.rules.Polarity, c.rules.Pluralism} {
		for _, cue := range ls.Cues {
			if cue.re != nil {
				pats = append(pats, cue.re.String())
			}
		}
	}
	for _, re := range c.rules.CitationMarkers {
		pats = append(pats, re.String())
	}
	texts := []string{
		"", "ab abc abcd abd", "x\nx\n", "xx y x-y xay xaaay xaaaay", "[1] [12, 3] [1,2,3] [ 1 – 2] [a1b] [1–2–3]",
		"éé é éa àx àáx", "in 2003; a 1999b , c", "we use it; our tools used, we then use", "a\xffb \xffx",
		"aaab aab ab b", "xa\nxb", "abcabc c", "wew we w",
	}
	pieces := []string{"a", "b", "c", "d", "x", "y", "1", "2", " ", "\n", "[", "]", ",", ";", "é", "–", "\xff", "we", "use", "20"}
	texts = testkit.Texts(rand.New(rand.NewPCG(1, 2)), texts, pieces, 1000, 30)
	run := 0
	for _, pat := range pats {
		re := regexp.MustCompile(pat)
		tree, err := syntax.Parse(pat, syntax.Perl)
		if err != nil {
			t.Fatal(err)
		}
		d := newDFA(tree.Simplify())
		if d == nil {
			continue
		}
		run++
		for _, text := range texts {
			want := [][2]int{}
			for _, m := range re.FindAllStringIndex(text, -1) {
				want = append(want, [2]int{m[0], m[1]})
			}
			got, ok := d.findAll(text, [][2]int{})
			if !ok || !slices.Equal(got, want) {
				t.Errorf("%q in %q: found %v (%v), regexp finds %v", pat, text, got, ok, want)
			}
		}
	}
	if run < 30 {
		t.Errorf("only %d patterns run by the automaton", run)
	}
}

// Patterns it does not run: those that may match the empty text (FindAll
// treats empty matches apart) and those that fold case one rune at a time.
func TestDFARefuses(t *testing.T) {
	for _, pat := range []string{`a*`, `\b`, `(?i)é`, `x?`} {
		tree, err := syntax.Parse(pat, syntax.Perl)
		if err != nil {
			t.Fatal(err)
		}
		if newDFA(tree.Simplify()) != nil {
			t.Errorf("%q has an automaton", pat)
		}
	}
}

// Every pattern of the rules that is not a choice of texts is run by
// the automaton, which is what makes it fast.
func TestRulesPatternsHaveAutomata(t *testing.T) {
	c := testClassifier(t)
	pats := slices.Clone(c.markers)
	for _, ls := range []*LabelSet{c.rules.Role, c.rules.Polarity, c.rules.Pluralism} {
		for _, cue := range ls.Cues {
			if cue.pat != nil {
				pats = append(pats, cue.pat)
			}
		}
	}
	for _, p := range append(pats, c.ownWork...) {
		if p.texts == nil && p.built().dfa == nil {
			t.Errorf("%q is run by regexp", p.re)
		}
	}
}

// An automaton out of room says so, and the pattern then asks regexp:
// the spans found are the same.
func TestDFAOutOfRoom(t *testing.T) {
	re := regexp.MustCompile(`\[[^\[\]]{0,40}\d[^\[\]]{0,40}\]`)
	text := "see [1a2b3c4d5e6f7g8h9] and [12] or [x1y2z3]"
	p := compilePattern(re).built()
	p.dfa.limit = len(p.dfa.cache.Load().states) + 3
	if _, ok := p.dfa.matchAt(text, strings.Index(text, "[")); ok {
		t.Fatalf("an automaton of %d states had room for the text", p.dfa.limit)
	}
	want := [][2]int{}
	for _, m := range re.FindAllStringIndex(text, -1) {
		want = append(want, [2]int{m[0], m[1]})
	}
	if got, _ := p.findAllIn(text, nil, [][2]int{}, nil); !slices.Equal(got, want) {
		t.Errorf("found %v, regexp finds %v", got, want)
	}
	if got, ok := p.dfa.findAll(text, [][2]int{{1, 2}}); ok || !slices.Equal(got, [][2]int{{1, 2}}) {
		t.Errorf("findAll out of room: %v, %v; want what it was given and false", got, ok)
	}
}

// A pattern whose walk from each place reads to the end of a long word
// ([a-z]+\d over "aaa…") would cost the square of the text by automaton:
// findAll gives up past its budget, and regexp, which reads the text
// once, finds the spans.
func TestDFAGivesLongWalksToRegexp(t *testing.T) {
	re := regexp.MustCompile(`[a-z]+\d`)
	p := compilePattern(re).built()
	if p.dfa == nil {
		t.Fatalf("%q has no automaton", re)
	}
	short := strings.Repeat("a", 40) + "1 b2"
	if got, ok := p.dfa.findAll(short, nil); !ok || len(got) != 2 {
		t.Errorf("findAll(%q) = %v, %v; want two spans", short, got, ok)
	}
	long := strings.Repeat("a", 5000) + " b2"
	if got, ok := p.dfa.findAll(long, nil); ok {
		t.Errorf("findAll over %d letters with no digit walked on: %v", len(long), got)
	}
	want := [][2]int{}
	for _, m := range re.FindAllStringIndex(long, -1) {
		want = append(want, [2]int{m[0], m[1]})
	}
	if got, _ := p.findAllIn(long, nil, [][2]int{}, nil); !slices.Equal(got, want) {
		t.Errorf("found %v, regexp finds %v", got, want)
	}
}
