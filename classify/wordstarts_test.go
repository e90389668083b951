package classify

import (
	"math/rand/v2"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// Looking for the rules' patterns only where a word begins (wordStarts)
// finds what regexp finds, in a whole text and in each of its sentences,
// with the bytes that \b and the index might see differently: letters
// beyond ASCII next to a word, underscores, digits, text edges.
func TestWordStartsFindWhatRegexpFinds(t *testing.T) {
	c := testClassifier(t)
	pats := slices.Concat(c.markers, c.ownWork)
	for _, ls := range []*LabelSet{c.rules.Role, c.rules.Polarity, c.rules.Pluralism} {
		for i := range ls.Cues {
			if ls.Cues[i].pat != nil {
				pats = append(pats, ls.Cues[i].pat)
			}
		}
	}
	pats = append(pats, compilePattern(regexp.MustCompile(`\b(we|our)\b.{0,30}\buse`)), compilePattern(regexp.MustCompile(`\b_?we`)),
		compilePattern(regexp.MustCompile(`\b(a|bc)\b`))) // a start of one byte (wordStarts.appendByte)
	texts := []string{
		"we use it. our use, however, we'd _we éwe wé we", "swe we_ ourselves our. we", "we propose. our framework. éwe present",
		"diverse perspectives.éperspectives _perspectives 3perspectives", "a. b. we. . .we",
		// Matches of several words up to the text's end, fewer than eight bytes of it left (matchAt's head).
		"many valid answers", "several plausible interpretations", "points of view", "point of vie", "diverse opinions. multiple viewpoints",
		"unlike [4], we propose a benchmark of diverse viewpoints (smith, 2003); our dataset", "", "w", "we",
		strings.Repeat("é", 40) + " we " + strings.Repeat("ü", 40) + " use",
	}
	var ws wordStarts
	if starts := pats[len(pats)-1].starts; !slices.Contains(starts, "a") {
		t.Fatalf("the starts of %q are %q, want a start of one byte", pats[len(pats)-1].re, starts)
	}
	for _, text := range texts {
		ws.index(text)
		for _, p := range pats {
			want := [][2]int{}
			for _, m := range p.re.FindAllStringIndex(text, -1) {
				want = append(want, [2]int{m[0], m[1]})
			}
			got, _ := p.findAllIn(text, &ws, [][2]int{}, nil)
			if !slices.Equal(got, want) {
				t.Errorf("%q in %q: found %v, regexp finds %v", p.re, text, got, want)
			}
			at := p.candidates(text, &ws, nil)
			for from := 0; from < len(text); {
				to := strings.Index(text[from:], ". ")
				if to < 0 {
					to = len(text)
				} else {
					to += from + 1
				}
				if got, want := p.matchesWithin(text, from, to, at), p.re.MatchString(text[from:to]); got != want {
					t.Errorf("%q in %q[%d:%d]: matches %v, regexp says %v", p.re, text, from, to, got, want)
				}
				from = to
			}
		}
	}
}

// indexTokens, from a text's tokens, is index of the text when it is
// ASCII without '_' (as prepareLower uses it): random texts of letters,
// digits and the bytes around them; and prepareLower's word starts are
// index's with '_' and letters beyond ASCII too.
func TestIndexTokensIsIndex(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	c := testClassifier(t)
	sc := &scratch{}
	var byBytes, byTokens wordStarts
	for i := range 6000 {
		pieces := []string{"a", "Z", "0", "9", " ", ".", "-", "'", "/", "@", "[", "`", "{", ":"}
		if i%2 == 1 {
			pieces = append(pieces, "_", "é", "ü")
		}
		var b strings.Builder
		for range rng.IntN(60) {
			b.WriteString(pieces[rng.IntN(len(pieces))])
		}
		text := b.String()
		byBytes.index(text)
		if i%2 == 0 {
			toks, _, _ := c.wordTable.tokenize(text, nil, nil)
			byTokens.indexTokens(text, toks)
		} else {
			text = lowered(text)
			byBytes.index(text)
			byTokens = *c.prepareLower(text, nil, sc).words
		}
		if !slices.Equal(byBytes.at, byTokens.at) || !slices.Equal(byBytes.next, byTokens.next) || byBytes.head != byTokens.head {
			t.Fatalf("%q: from the tokens %v %v %v, from the bytes %v %v %v", text, byTokens.at, byTokens.head, byTokens.next, byBytes.at, byBytes.head, byBytes.next)
		}
	}
}
