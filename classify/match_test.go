package classify

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"unicode"
)

// A pattern looked for only where its starts occur finds exactly what
// Go's regexp finds in the whole text: every pattern of the shipped rules
// and a few made to trip the shortcut (a word character before the start,
// one outside ASCII, a match at the window's end, starts that are
// prefixes of one another, the end of the text), over made-up sentences
// and, when ../shared/data is there, one labelled row in twenty.
func TestPatternsFindWhatRegexpFinds(t *testing.T) {
	c := testClassifier(t)
	pats := []string{
		`\b(we|our)\b`, `\b(use|used|uses)\b`, `\bus(e|ed)\b.{0,3}\bx`, `\b(19|20)\d\d[a-z]?\b`,
		`state.?of.?the.?art`, `\bé(t|té)\b`, `\bdata$`, `\b(a|ab)c?`, `we\b`, `\[\s*\d+\s*[-–,]`,
		`\b(we|our)\w+`, `(?i)\bwe\b`, `\b(?:as|also) (reported|found)`, `(\bwe)`, `\bwe|\bour`, `(?:\b)?we`,
		`x*\bwe`, `(we|\Bour)`, `we\B`, `\b(ab|a)(bc|c)?\b`, `\bab??c?`, `\bmatch(es)? (with|to)?`, `\bwe\b \bus`,
		`\bwe\b\bus`, `\b(x|y)\b_`, `\bé\b`, `\b(we|our)\b(,|\.)?`, `\b(a|b)(c|d)\b`, `\([^()]*;[^()]*\)`,
	}
	for _, re := range c.rules.CitationMarkers {
		pats = append(pats, re.String())
	}
	for _, re := range c.rules.Pluralism.OwnWork {
		pats = append(pats, re.String())
	}
	fast := 0
	for _, ls := range []*LabelSet{c.rules.Role, c.rules.Polarity, c.rules.Pluralism} {
		for _, cue := range ls.Cues {
			if cue.re != nil {
				pats = append(pats, cue.re.String())
			}
		}
	}
	texts := []string{
		"we use it. our use, however, we'd _we éwe wé we", "swe we_ ourselves our", "used uses use usex us x use x",
		"in 1999a and 2020, 19999 (2003) 2003b", "state-of-the-art stateoftheart state of the art", "été ét éte",
		"big data data", "abc ab a ac", "[1, 2] [ 3 - 4] [12–13]", "we    use   we\u00a0use we\u2028use",
		"as reported by [2]; also found in [3]", "We, WE", "we use a deliberative poll of diverse perspectives; we propose a benchmark",
		strings.Repeat("é", 40) + " we " + strings.Repeat("ü", 40) + " use",
		"abc ab a abbc ac abcd", "matches with match to matchesto match", "we us we-us weus", "x_ x _ y_ x", "é éa",
		"we, our. we.x", "ac bd bdx", "ab", "(a; b) (a;b;c) ((;)) (a;b", "(a, b) (c)",
	}
	for _, text := range labelledTexts(t, 20) {
		texts = append(texts, strings.Map(unicode.ToLower, text))
	}
	for _, pat := range pats {
		p := compilePattern(regexp.MustCompile(pat))
		if p.starts != nil {
			fast++
		}
		for _, text := range texts {
			want := [][2]int{}
			for _, m := range p.re.FindAllStringIndex(text, -1) {
				want = append(want, [2]int{m[0], m[1]})
			}
			got, _ := p.findAllIn(text, nil, [][2]int{}, nil)
			if !slices.Equal(got, want) {
				t.Errorf("%q in %q: found %v, regexp finds %v", pat, text, got, want)
			}
			if ok := p.matchesWithin(text, 0, len(text), p.candidates(text, nil, nil)); ok != p.re.MatchString(text) {
				t.Errorf("%q in %q: matches %v, regexp says %v", pat, text, ok, !ok)
			}
		}
	}
	// Most patterns take the shortcut, or it is not what makes classify fast.
	if fast < len(pats)*3/4 {
		t.Errorf("only %d of %d patterns have known starts", fast, len(pats))
	}
}

// What a pattern's matches begin with, and how long they can be.
func TestMatchStartsAndWidth(t *testing.T) {
	for pat, want := range map[string]string{
		`\b(we|our)\b`:              "[we our] true 3",
		`state.?of.?the.?art`:       "[state] false 25",
		`\bvot(es|ing)\b`:           "[votes voting] true 6",
		`\b(we|our)\b.{0,30}\buse`:  "[we our] true 126",
		`\[\s*\d+\s*[-–,]`:          "[[] false -1",
		`\bdata$`:                   "[data] true -1",
		`(?i)\bwe\b`:                "[] false -1",
		`\b\[`:                      "[] false -1",
		`^we`:                       "[] false -1",
		`(\bwe)`:                    "[we] true 2",
		`\bwe|\bour`:                "[] false -1",
		`x?\bwe`:                    "[] false -1",
		`\b(we|our)x?\b`:            "[we our] true 4",
		`colou?r`:                   "[colo] false 6",
		`\b(several|many|a.b) ways`: "[several many a] true 12",
	} {
		p := compilePattern(regexp.MustCompile(pat))
		if got := fmt.Sprint(p.starts, p.boundary, p.width); got != want {
			t.Errorf("%q: starts, boundary, width = %s, want %s", pat, got, want)
		}
	}
}

// A pattern run by regexp is not looked at in a text that lacks a byte
// every match holds past its start.
func TestPatternHolds(t *testing.T) {
	for pat, want := range map[string]string{
		`\([^()]*;[^()]*;[^()]*\)`: ";)",
		`\[\s*\d+\s*[-–,]`:         "",
		`\b(we|our)\b`:             "", // matched as texts
		`\bwe.{0,3}(?i:x)y`:        "y",
	} {
		p := compilePattern(regexp.MustCompile(pat))
		if string(p.holds) != want {
			t.Errorf("%q holds %q, want %q", pat, p.holds, want)
		}
		if got, _ := p.findAllIn("(we; x) (a; b; c)", nil, nil, nil); pat == `\([^()]*;[^()]*;[^()]*\)` && len(got) != 1 {
			t.Errorf("%q: found %v", pat, got)
		}
	}
}

// A pattern that is a choice of a few texts is matched as those texts,
// in the order regexp tries them (TestPatternsFindWhatRegexpFinds checks
// that they find what regexp finds); ">w" and ">n" mark a text that a
// word character, or no word character, must follow.
func TestLiteralTexts(t *testing.T) {
	for pat, want := range map[string]string{
		`\b(we|our)\b`:            "we>n our>n",
		`\bab??c?`:                "ac a abc ab",
		`\b(ab|a)(bc|c)?\b`:       "abbc>n abc>n ab>n abc>n ac>n a>n",
		`\bmatch(es)? (with|to)?`: "matches with|matches to|matches |match with|match to|match ",
		`\bwe\b \bus`:             "we us",
		`\bwe\b\bus`:              "",
		`\b(x|y)\b_`:              "",
		`\bwe\b.{0,3}`:            "",
		`\b(19|20)\d\d[a-z]?\b`:   "",
		`(?i)\bwe`:                "",
		`\bwe\b,?`:                "we, we>n",
	} {
		p := compilePattern(regexp.MustCompile(pat))
		var got []string
		for _, t := range p.texts {
			got = append(got, t.text+[]string{"", ">w", ">n"}[t.after])
		}
		sep := " "
		if strings.Contains(pat, " ") {
			sep = "|"
		}
		if strings.Join(got, sep) != want {
			t.Errorf("%q: texts %q, want %q", pat, strings.Join(got, sep), want)
		}
	}
	// Most of the shipped rules' patterns are such choices.
	c := testClassifier(t)
	n, texts := 0, 0
	for _, ls := range []*LabelSet{c.rules.Role, c.rules.Polarity, c.rules.Pluralism} {
		for _, cue := range ls.Cues {
			if cue.pat != nil {
				n++
				if cue.pat.texts != nil {
					texts++
				}
			}
		}
	}
	if texts < n/2 {
		t.Errorf("only %d of %d patterns are matched as texts", texts, n)
	}
}

// The Classifier is shared by a stage's workers: calls in parallel (each
// with its own scratch space from the pool) tag as calls one by one do.
func TestConcurrentCallsTagAlike(t *testing.T) {
	c := testClassifier(t)
	texts := []string{
		"Unlike the parser of Smith et al. [12], which relies on a lexicon, we use the treebank of [3] and obtain results consistent with [4].",
		"We do not use the method of [2], which fails on long sentences.",
		"In future work we plan to combine it with [6].",
		"Our results may confirm the findings of [1] (2003), while [2] reported the opposite.",
	}
	want := make([]string, len(texts))
	for i, s := range texts {
		want[i] = fmt.Sprint(c.Context(s, "Results", []int{20, 23}), c.Pluralism("Jury learning", s, ""))
	}
	errs := make(chan string, 8)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for n := range 200 {
				i := (g + n) % len(texts)
				if got := fmt.Sprint(c.Context(texts[i], "Results", []int{20, 23}), c.Pluralism("Jury learning", texts[i], "")); got != want[i] {
					errs <- fmt.Sprintf("%q: %s, want %s", texts[i], got, want[i])
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}
