package classify

import (
	"cmp"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// negatedHedged says what the words before a place say by the rules'
// negators and hedges (anyIn of appendWordsBefore, as it was worked out
// before), at every byte of made-up texts and of the labelled rows, with
// the shipped rules and with scopes and word lists changed.
func TestNegatedHedgedIsWordsBefore(t *testing.T) {
	c := testClassifier(t)
	changed := *c.rules
	changed.NegationScope, changed.HedgeScope = 1, 4
	changed.Negators = map[string]bool{"not": true, "no": true, "notwithstandingly": true}
	changed.Hedges = map[string]bool{"may": true, "n't": true, "not": true}
	texts := []string{
		"we do not use it", "it doesn't fail; it may not help", "x can't, won't - may well-known not",
		"no. may, might: perhaps [3] suggests not-so e'' é not é", "", "not", "  not  may ",
		"'not' -may- n't isn't", "naïve approaches don't work", "notwithstandingly it works; notwithstanding",
	}
	for _, text := range labelledTexts(t, 50) {
		texts = append(texts, strings.Map(unicode.ToLower, text))
	}
	for _, cl := range []*Classifier{c, New(&changed)} {
		r := cl.rules
		sc := &scratch{}
		for _, text := range texts {
			text = lowered(text) // as sentences are: valid UTF-8
			s := cl.prepareLower(text, nil, sc)
			for pos := range len(text) + 1 {
				before := appendWordsBefore(nil, text, pos, max(r.NegationScope, r.HedgeScope))
				wantNeg, wantHedge := anyIn(before, r.NegationScope, r.Negators), anyIn(before, r.HedgeScope, r.Hedges)
				neg, hedge := sc.negatedHedged(cl, &s, pos)
				if neg != wantNeg || hedge != wantHedge {
					t.Fatalf("at %d of %q: negated %v hedged %v, the words before %q say %v %v", pos, text, neg, hedge, before, wantNeg, wantHedge)
				}
			}
		}
	}
}

// anyIn reports whether one of the last scope words is in set. A word
// ending in n't counts as the negator n't.
func anyIn(words []string, scope int, set map[string]bool) bool {
	start := max(len(words)-scope, 0)
	for _, w := range words[start:] {
		if set[w] || (strings.HasSuffix(w, "n't") && set["n't"]) {
			return true
		}
	}
	return false
}

// A phrase looked for at the words equal to its first word (a one-word
// phrase taken wherever its word is) is found where a search of the
// whole text for it as whole words finds it: every phrase of the rules
// over the labelled rows.
func TestPhrasesAtTheirFirstWords(t *testing.T) {
	c := testClassifier(t)
	texts := []string{"we use the state-of-the-art parser, which outperforms x. not bad; we'll use it", "usé use-d used"}
	texts = append(texts, labelledTexts(t, 50)...)
	sc := &scratch{}
	words := wordsOf(c)
	found := 0
	for _, text := range texts {
		s := c.prepare(text, nil, sc)
		for _, ls := range []*LabelSet{c.rules.Role, c.rules.Polarity, c.rules.Pluralism} {
			for i := range ls.Cues {
				cue := &ls.Cues[i]
				if cue.phrase == "" || !cue.atWord {
					continue
				}
				tok := int32(slices.Index(s.ids, words[cue.first]))
				if _, ok := words[cue.first]; !ok {
					tok = -1
				}
				got := slices.Clone(c.findCue(cue, &s, max(tok, 0), sc))
				if tok < 0 {
					got = nil
				}
				want := slices.Clone(c.findCue(cue, &s, -1, sc))
				if !slices.Equal(got, want) {
					t.Fatalf("%q in %q: found %v at its first words, %v in the whole text", cue.phrase, s.lower, got, want)
				}
				found += len(got)
			}
		}
	}
	if found == 0 {
		t.Fatal("no phrase found")
	}
}

// candidates picks every phrase that weighs and is found in the text,
// and gives findCue the word to look for it from: what findCue finds
// from there is what it finds in the whole text; a phrase not picked
// (its first word absent, or followed by a byte the phrase does not have
// there: firstCue.probe) is found nowhere.
func TestCandidatesPickEveryPhraseFound(t *testing.T) {
	c := testClassifier(t)
	texts := []string{"we use the state-of-the-art parser, which outperforms x. not bad; we'll use it", "usé use-d used",
		"in contrast to in contrast, in contras", "we propose we propose"}
	texts = append(texts, labelledTexts(t, 50)...)
	sc := &scratch{}
	picked := 0
	for _, text := range texts {
		s := c.prepare(text, nil, sc)
		for _, ls := range []*LabelSet{c.rules.Role, c.rules.Polarity, c.rules.Pluralism} {
			cues := slices.Clone(sc.candidates(ls, &s, c.sets[ls]))
			for i := range ls.Cues {
				cue := &ls.Cues[i]
				if cue.phrase == "" || !cue.atWord || cue.Weight == 0 {
					continue
				}
				want := slices.Clone(c.findCue(cue, &s, -1, sc))
				if cues[i>>6]&(1<<(i&63)) == 0 {
					if len(want) > 0 {
						t.Fatalf("%q in %q: not picked, found at %v", cue.phrase, s.lower, want)
					}
					continue
				}
				picked++
				if got := c.findCue(cue, &s, sc.cueTok[i], sc); !slices.Equal(got, want) {
					t.Fatalf("%q in %q: found %v from word %d, %v in the whole text", cue.phrase, s.lower, got, sc.cueTok[i], want)
				}
			}
		}
	}
	if picked == 0 {
		t.Fatal("no phrase picked")
	}
}

// sortPlaced sorts as slices.SortFunc by weight (highest first, NaN
// last) then place: ties, NaN, negative zero, lengths either side of 64.
func TestSortPlaced(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	weights := []float64{0, math.Copysign(0, -1), 1, 1.5, -2, 3, math.NaN(), math.Inf(1), math.Inf(-1)}
	for n := range 140 {
		for range 20 {
			order := make([]placed, n)
			for i := range order {
				order[i] = placed{weights[rng.IntN(len(weights))], i}
			}
			want := slices.Clone(order)
			slices.SortFunc(want, func(a, b placed) int {
				return cmp.Or(cmp.Compare(b.weight, a.weight), cmp.Compare(a.at, b.at))
			})
			sortPlaced(order)
			for i := range order {
				if order[i].at != want[i].at {
					t.Fatalf("%d placed: sorted %v, want %v", n, order, want)
				}
			}
		}
	}
}

// needsThere tells whether the literal parts cue needs are in a text,
// one of each group (present is the label set's lits.find of the text).
func needsThere(cue *Cue, present []uint64) bool {
	for _, choices := range cue.needIDs {
		if !slices.ContainsFunc(choices, func(id int32) bool { return has(present, id) }) {
			return false
		}
	}
	return true
}

// Which cues may match is worked out from the literals found
// (scratch.possible), not cue by cue: the cues that weigh and whose
// literal parts are there (needsThere), every cue of the rules against
// random sets of literals found and those of texts, the scratch reused.
func TestPossibleFromLiteralsFound(t *testing.T) {
	c := testClassifier(t)
	rng := rand.New(rand.NewPCG(5, 6))
	texts := []string{"we use the treebank of [3]; unlike diverse perspectives, summaries of opinions", "state of the art helpful"}
	sc := &scratch{}
	for _, ls := range []*LabelSet{c.rules.Role, c.rules.Polarity, c.rules.Pluralism} {
		var sets [][]uint64
		for _, text := range texts {
			sets = append(sets, ls.lits.find(lowered(text), nil))
		}
		for range 300 {
			present := make([]uint64, (ls.lits.n+63)/64)
			for i := range present {
				present[i] = rng.Uint64() & rng.Uint64() & rng.Uint64() // a few bits
			}
			if n := ls.lits.n % 64; n != 0 {
				present[len(present)-1] &= 1<<n - 1 // none beyond the last literal
			}
			sets = append(sets, present)
		}
		yes := 0
		for _, present := range sets {
			ok := sc.possible(c.sets[ls], present)
			for i := range ls.Cues {
				cue := &ls.Cues[i]
				want := cue.Weight != 0 && needsThere(cue, present)
				if got := has(ok, int32(i)); got != want {
					t.Fatalf("%s %q: possible %v, want %v", ls.Name, cue.Text, got, want)
				}
				if want && len(cue.needIDs) > 0 {
					yes++
				}
			}
		}
		if yes == 0 {
			t.Errorf("%s: no pattern's literal parts ever there", ls.Name)
		}
	}
}

// The automaton finds the texts strings.Contains finds, a long text read
// as two halves at once: texts across the middle, at either end, inside
// one another; random texts of every length up to 300 over a few bytes,
// and the rules' literals in the labelled rows.
func TestLiteralsFindWhatContainsFinds(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	check := func(l *literals, lits []string, text string) {
		t.Helper()
		present := l.find(text, nil)
		for id, lit := range lits {
			if got, want := has(present, int32(id)), strings.Contains(text, lit); got != want {
				t.Fatalf("%q in %q (%d bytes): found %v, strings.Contains %v", lit, text, len(text), got, want)
			}
		}
	}
	for range 20 {
		var lits []string
		for range 1 + rng.IntN(12) {
			var b strings.Builder
			for range 1 + rng.IntN(9) {
				b.WriteByte("abcd"[rng.IntN(4)])
			}
			lits = append(lits, b.String())
		}
		l := newLiterals(lits)
		for n := range 300 {
			var b strings.Builder
			for range n {
				b.WriteByte("abcde"[rng.IntN(5)])
			}
			check(l, lits, b.String())
		}
	}
	c := testClassifier(t)
	texts := []string{strings.Repeat("x", 200) + "summaries of diverse perspectives" + strings.Repeat("y", 200)}
	for _, text := range labelledTexts(t, 50) {
		texts = append(texts, lowered(text))
	}
	for _, sets := range [][]*LabelSet{{c.rules.Role, c.rules.Polarity, c.rules.Pluralism}} { // as indexLiterals shares them
		lits := make([]string, sets[0].lits.n)
		for _, ls := range sets {
			for i := range ls.Cues {
				for g, choices := range ls.Cues[i].needs {
					for j, text := range choices {
						lits[ls.Cues[i].needIDs[g][j]] = text
					}
				}
			}
		}
		for _, text := range texts {
			check(sets[0].lits, lits, text)
		}
	}
}

// findSplit finds what find finds in a text and in its end from every
// place: literals taken from the text itself, so that some cross each
// place, the longest among them.
func TestFindSplitFindsWhatFindFinds(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	for range 200 {
		var b strings.Builder
		for range 1 + rng.IntN(60) {
			b.WriteByte("abcde"[rng.IntN(5)])
		}
		text := b.String()
		var lits []string
		for range 1 + rng.IntN(8) {
			i := rng.IntN(len(text))
			lits = append(lits, text[i:min(len(text), i+1+rng.IntN(9))])
		}
		l := newLiterals(lits)
		for at := range len(text) + 1 {
			whole, tail := l.findSplit(text, at, nil, nil)
			if want := l.find(text, nil); !slices.Equal(whole, want) {
				t.Fatalf("findSplit(%q, %d) of %q: whole %b, find %b", text, at, lits, whole, want)
			}
			if want := l.find(text[at:], nil); !slices.Equal(tail, want) {
				t.Fatalf("findSplit(%q, %d) of %q: tail %b, find of the tail %b", text, at, lits, tail, want)
			}
		}
	}
}

// lowered is a text lowered as the classifier lowers it, in a string of
// its own.
func lowered(text string) string {
	s, _ := new(scratch).lowered(text)
	return s
}

// scratch.lowered is strings.Map(unicode.ToLower) of the parts joined,
// and where the last part begins in it: random texts of ASCII (upper and
// lower case), runes beyond it whose lower case is longer or shorter
// (İ, Ⱥ), and invalid bytes. The texts lowered in one scratch keep their
// bytes until it forgets them, when its space is full and a new array is
// taken, and when a lower case longer than its rune outgrows the array.
func TestLoweredIsStringsMap(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	ascii := []string{"a", "z", "A", "Z", "Q", " ", ".", "@", "[", "`", "{", "\x7f", "\x00"} // and the bytes next to the letters
	pieces := append([]string{"É", "İ", "Ⱥ", "ß", "\xff", "\xe2\x82", "é"}, ascii...)
	text := func() string {
		var b strings.Builder
		from := ascii // half the texts all ASCII, lowered eight bytes at a time
		if rng.IntN(2) == 0 {
			from = pieces
		}
		for range rng.IntN(40) {
			b.WriteString(from[rng.IntN(len(from))])
		}
		return b.String()
	}
	sc := new(scratch)
	type lowering struct{ parts, got, want string }
	var kept []lowering // since sc last forgot
	for i := range 2000 {
		if i%300 == 299 {
			sc.forget()
			kept = kept[:0]
		}
		parts := []string{text(), " . ", text()}
		if i%50 == 49 { // as long as the space left (Ⱥ is two bytes, ⱥ three), and longer
			room := cap(sc.lower) - len(sc.lower) - len(parts[1]) - len(parts[2])
			parts[0] = strings.Repeat("Ⱥ", max(room/2+i%100/50, 0))
		}
		got, at := sc.lowered(parts...)
		want := strings.Map(unicode.ToLower, strings.Join(parts, ""))
		if got != want {
			t.Fatalf("lowered(%q) = %q, want %q", parts, got, want)
		}
		if want := strings.Map(unicode.ToLower, parts[0]+parts[1]); at != len(want) {
			t.Fatalf("lowered(%q): the last part at %d, want %d", parts, at, len(want))
		}
		kept = append(kept, lowering{strings.Join(parts, ""), got, want})
		for _, k := range kept {
			if k.got != k.want {
				t.Fatalf("after %d texts, lowered(%q) is %q, want %q", len(kept), k.parts, k.got, k.want)
			}
		}
	}
}

// wordTable.tokenize splits a text into runs of letters and digits and
// numbers each as Classifier.words does: the labelled rows and texts
// beyond ASCII, with the shipped rules' words and with a few.
func TestTokenizeNumbersAsWords(t *testing.T) {
	c := testClassifier(t)
	texts := []string{"", "we use", "naïve bayes-like über-models (é) ünd 3d", "\xff\xfeabc", "x", " a.b,c ", "über"}
	for _, text := range labelledTexts(t, 50) {
		texts = append(texts, text)
	}
	few := map[string]int32{"we": 0, "use": 1, "über": 2, "a": 3}
	for _, words := range []map[string]int32{wordsOf(c), few} {
		byNumber := make([]string, len(words))
		for w, id := range words {
			byNumber[id] = w
		}
		table := newWordTable(byNumber)
		for _, text := range texts {
			text = lowered(text)
			toks, ids, ascii := table.tokenize(text, nil, nil)
			var want []token
			start := -1
			for i, r := range text + " " {
				switch {
				case isAlnum(r) && start < 0:
					start = i
				case !isAlnum(r) && start >= 0:
					want = append(want, token{start, i})
					start = -1
				}
			}
			if !slices.Equal(toks, want) {
				t.Fatalf("%q: tokens %v, want %v", text, toks, want)
			}
			for i, tk := range toks {
				id, ok := words[text[tk.start:tk.end]]
				if !ok {
					id = -1
				}
				if ids[i] != id {
					t.Fatalf("%q: %q numbered %d, want %d", text, text[tk.start:tk.end], ids[i], id)
				}
			}
			if want := !strings.ContainsFunc(text, func(r rune) bool { return r >= utf8.RuneSelf }); ascii != want {
				t.Fatalf("%q: ascii %v", text, ascii)
			}
		}
	}
	// Two words of one 32-bit FNV-1a hash: the table tells them apart by
	// their bytes (found by a birthday search in the review of tag12).
	table := newWordTable([]string{"lixwshef"})
	if _, ids, _ := table.tokenize("qcrnhazy lixwshef", nil, nil); !slices.Equal(ids, []int32{-1, 0}) {
		t.Fatalf("words of one hash: numbered %v, want [-1 0]", ids)
	}
}

// wordsOf is the classifier's word numbers as a map, the plain way.
func wordsOf(c *Classifier) map[string]int32 {
	words := map[string]int32{}
	for id, w := range c.wordTable.words {
		words[w] = int32(id)
	}
	return words
}
