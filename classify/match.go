package classify

import (
	"regexp"
	"regexp/syntax"
	"slices"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"
)

// token is one word of a lower-cased text, a run of letters and digits
// (as words splits them), by its byte offsets.
type token struct{ start, end int }

// wordTable numbers words, as Classifier.words does, for tokenize: a
// table keyed by a hash of the word worked out as the text is split
// (a Go map looked each word up again, hashing it anew: a tenth of
// tagging a summary).
type wordTable struct {
	slots []wordEntry // open addressing: a word's slot is its hash's, or the next free after
	words []string    // by number
}

// wordEntry is a word's hash (FNV-1a of its bytes) and number; -1: empty.
type wordEntry struct {
	hash uint32
	id   int32
}

const (
	fnvOffset = 2166136261
	fnvPrime  = 16777619
)

// newWordTable is the table of words (a word's number its index).
func newWordTable(words []string) *wordTable {
	n := 16
	for n < 2*len(words) {
		n *= 2
	}
	t := &wordTable{slots: make([]wordEntry, n), words: words}
	for i := range t.slots {
		t.slots[i].id = -1
	}
	for id, w := range words {
		h := uint32(fnvOffset)
		for i := range len(w) {
			h = (h ^ uint32(w[i])) * fnvPrime
		}
		k := h & uint32(n-1)
		for t.slots[k].id >= 0 {
			k = (k + 1) & uint32(n-1)
		}
		t.slots[k] = wordEntry{h, int32(id)}
	}
	return t
}

// number is the number of word, whose hash is h, or -1.
func (t *wordTable) number(word string, h uint32) int32 {
	mask := uint32(len(t.slots) - 1)
	for k := h & mask; ; k = (k + 1) & mask {
		sl := t.slots[k]
		if sl.id < 0 {
			return -1
		}
		if sl.hash == h && t.words[sl.id] == word {
			return sl.id
		}
	}
}

// tokenize appends the words of lower to toks, and their numbers (-1 for
// a word without one) to ids: one pass over the text, from which the
// cues worth looking for are picked by their first word. ascii tells
// whether lower is all ASCII (a rune a byte). From the first rune beyond
// ASCII on (tokenizeASCII reads up to it), runes are decoded.
func (t *wordTable) tokenize(lower string, toks []token, ids []int32) (_ []token, _ []int32, ascii bool) {
	toks, ids, i := t.tokenizeASCII(lower, toks, ids)
	if i == len(lower) {
		return toks, ids, true
	}
	for i < len(lower) {
		// ASCII (most of the text) by a table, other runes decoded.
		if b := lower[i]; b < utf8.RuneSelf {
			if !asciiAlnum[b] {
				i++
				continue
			}
		} else {
			r, w := utf8.DecodeRuneInString(lower[i:])
			if !isAlnum(r) {
				i += w
				continue
			}
		}
		start, h := i, uint32(fnvOffset)
		for i < len(lower) {
			if b := lower[i]; b < utf8.RuneSelf {
				if !asciiAlnum[b] {
					break
				}
				h = (h ^ uint32(b)) * fnvPrime
				i++
				continue
			}
			r, w := utf8.DecodeRuneInString(lower[i:])
			if !isAlnum(r) {
				break
			}
			for _, b := range []byte(lower[i : i+w]) {
				h = (h ^ uint32(b)) * fnvPrime
			}
			i += w
		}
		toks = append(toks, token{start, i})
		ids = append(ids, t.number(lower[start:i], h))
	}
	return toks, ids, false
}

// tokenizeASCII is tokenize up to the first byte beyond ASCII, or the
// start of the word it is in: it returns where tokenize goes on from,
// len(lower) for an ASCII text (most texts). Its loop, free of runes,
// is a third the instructions a byte.
func (t *wordTable) tokenizeASCII(lower string, toks []token, ids []int32) (_ []token, _ []int32, stop int) {
	i := 0
	for i < len(lower) {
		if b := lower[i]; !asciiAlnum[b] { // false beyond ASCII
			if b >= utf8.RuneSelf {
				return toks, ids, i
			}
			i++
			continue
		}
		start, h := i, uint32(fnvOffset)
		for ; i < len(lower); i++ {
			b := lower[i]
			if !asciiAlnum[b] {
				break
			}
			h = (h ^ uint32(b)) * fnvPrime
		}
		if i < len(lower) && lower[i] >= utf8.RuneSelf {
			return toks, ids, start
		}
		toks = append(toks, token{start, i})
		ids = append(ids, t.number(lower[start:i], h))
	}
	return toks, ids, i
}

// pattern is a regular expression (a "re:" cue, a citation marker, an
// own_work pattern) with what makes looking for it cheap. Go's regexp
// tries a pattern that starts with \b or a choice of words at every byte
// of the text; but every match of most patterns begins with one of a few
// literal texts ("we", "our"), so the pattern, anchored, is tried only
// where one of them occurs, and on no more of the text than a match can
// span. The spans found are exactly FindAllStringIndex's.
type pattern struct {
	re       *regexp.Regexp
	starts   []string  // every match begins with one of these; nil: not known, re is run as is
	begins   [256]bool // the starts' first bytes
	pairs    []uint8   // by start, the pairBit of its first two bytes (0 for a start of one byte)
	boundary bool      // re begins with \b: a start must not follow a word character
	width    int       // the most bytes a match spans, or -1 when unbounded
	// texts, when not nil, are all that re can match (after its leading
	// \b), in the order regexp tries them: matchAt takes the first that
	// is there rather than running anchored ("\b(we|our)\b" is two).
	texts []literalText
	// holds are bytes that every match holds past its start, for a
	// pattern run by regexp: a text without one of them is not looked at
	// (";" for "\\([^()]*;[^()]*;[^()]*\\)", tried at every "(").
	holds []byte
	// run is built the first time the pattern is looked for (built, a
	// rule file's patterns cost a tenth of the run of a small crawl, and
	// most of them never meet a text that holds their literal parts).
	run  sync.Once
	tree *syntax.Regexp // re, parsed and simplified: what run builds from
	// anchored is "^(?:re)", tried at the starts.
	anchored *regexp.Regexp
	// dfa, when not nil, runs a pattern that is not a choice of texts in
	// regexp's stead (at its starts, or at every rune when it has none).
	dfa *dfa
}

// built gives p with its automaton and anchored pattern built.
func (p *pattern) built() *pattern {
	p.run.Do(func() {
		if p.texts == nil && p.tree != nil {
			p.dfa = newDFA(p.tree)
		}
		if p.starts != nil {
			// It compiles: re did, and a group and ^ add nothing that can fail.
			p.anchored = regexp.MustCompile(`^(?:` + p.re.String() + `)`)
		}
		p.tree = nil
	})
	return p
}

// literalText is one text a pattern can match, and what its \b at the
// end (if any) asks of the byte after it.
type literalText struct {
	text  string
	after int8 // afterAny, afterWord or afterNonWord (or the text's end)
	// head is the text's first eight bytes (fewer: mask keeps them), as
	// load64 reads them: matchAt tells most texts that are not at a
	// place by one compare of eight bytes rather than a call each.
	head, mask uint64
}

const (
	afterAny = iota
	afterWord
	afterNonWord
)

// maxTexts is the most texts a pattern is matched as (literalTexts); a
// pattern that can match more is run by regexp.
const maxTexts = 64

func compilePattern(re *regexp.Regexp) *pattern {
	p := &pattern{re: re, width: -1}
	tree, err := syntax.Parse(re.String(), syntax.Perl)
	if err != nil {
		return p
	}
	tree = tree.Simplify()
	p.tree = tree
	starts, boundary, rest := matchStarts(tree)
	if len(starts) > 0 {
		p.texts = literalTexts(rest)
	}
	if len(starts) == 0 {
		return p
	}
	if p.texts == nil && rest.Op == syntax.OpConcat {
		for _, sub := range rest.Sub[1:] {
			if sub.Op == syntax.OpLiteral && sub.Flags&syntax.FoldCase == 0 {
				for _, r := range sub.Rune {
					if r < utf8.RuneSelf && !slices.Contains(p.holds, byte(r)) {
						p.holds = append(p.holds, byte(r))
					}
				}
			}
		}
	}
	if w, ok := maxWidth(tree); ok {
		p.width = w
	}
	p.starts, p.boundary = starts, boundary
	for _, s := range starts {
		p.begins[s[0]] = true
		var key uint8
		if len(s) > 1 {
			key = pairBit(s[0], s[1])
		}
		p.pairs = append(p.pairs, key)
	}
	return p
}

// matchStarts returns the literal texts one of which every match of re
// begins with, whether re begins with \b, and re without that \b; nil
// when they are not known, or when a leading \b would need a look at a
// start that may not be a word character (the anchored pattern cannot
// see the byte before).
func matchStarts(re *syntax.Regexp) ([]string, bool, *syntax.Regexp) {
	for re.Op == syntax.OpCapture {
		re = re.Sub[0]
	}
	subs := []*syntax.Regexp{re}
	if re.Op == syntax.OpConcat {
		subs = re.Sub
	}
	i := 0
	for i < len(subs) && subs[i].Op == syntax.OpWordBoundary {
		i++
	}
	if i == len(subs) {
		return nil, false, nil
	}
	rest := &syntax.Regexp{Op: syntax.OpConcat, Sub: subs[i:]}
	if looksBack(rest) {
		return nil, false, nil // as "(\\bwe|our)": the anchored pattern would not see the byte before
	}
	starts := firstLiterals(rest)
	for _, s := range starts {
		r, _ := utf8.DecodeRuneInString(s)
		if s == "" || i > 0 && !syntax.IsWordChar(r) {
			return nil, false, nil
		}
	}
	return starts, i > 0, rest
}

// literalTexts lists the texts re can match, in the order a backtracking
// matcher tries them, so that the first of them found at a place is the
// match regexp finds there (leftmost-first): "we|our" is we, our; "ab?"
// is ab, a, and "ab??" a, ab; "(a|b)(c|d)" ac, ad, bc, bd. A \b between
// two texts is settled when they are joined, one at the end asks
// something of the byte after. nil when re is more than a choice of at
// most maxTexts texts (a repeat, ".", a large class, \B, ^, $, case
// folding), when a \b would need the byte before the match, or when a
// text is empty.
func literalTexts(re *syntax.Regexp) []literalText {
	texts, ok := expandTexts(re)
	if !ok || len(texts) == 0 {
		return nil
	}
	out := make([]literalText, len(texts))
	for i, t := range texts {
		if t.text == "" {
			return nil
		}
		out[i].text = t.text
		for k := range min(len(t.text), 8) {
			out[i].head |= uint64(t.text[k]) << (8 * k)
			out[i].mask |= 0xff << (8 * k)
		}
		if t.boundary {
			out[i].after = afterWord
			if r, _ := utf8.DecodeLastRuneInString(t.text); syntax.IsWordChar(r) {
				out[i].after = afterNonWord
			}
		}
	}
	return out
}

// pendingText is a text being expanded; boundary: a \b follows it, to be
// settled by what is joined to it.
type pendingText struct {
	text     string
	boundary bool
}

func expandTexts(re *syntax.Regexp) ([]pendingText, bool) {
	switch re.Op {
	case syntax.OpEmptyMatch:
		return []pendingText{{}}, true
	case syntax.OpWordBoundary:
		return []pendingText{{boundary: true}}, true
	case syntax.OpLiteral:
		if re.Flags&syntax.FoldCase != 0 {
			return nil, false
		}
		return []pendingText{{text: string(re.Rune)}}, true
	case syntax.OpCharClass:
		var out []pendingText
		for i := 0; i+1 < len(re.Rune); i += 2 {
			for r := re.Rune[i]; r <= re.Rune[i+1]; r++ {
				if len(out) == maxTexts {
					return nil, false
				}
				out = append(out, pendingText{text: string(r)})
			}
		}
		return out, true
	case syntax.OpCapture:
		return expandTexts(re.Sub[0])
	case syntax.OpQuest:
		sub, ok := expandTexts(re.Sub[0])
		if re.Flags&syntax.NonGreedy != 0 {
			return append([]pendingText{{}}, sub...), ok
		}
		return append(sub, pendingText{}), ok
	case syntax.OpAlternate:
		var out []pendingText
		for _, sub := range re.Sub {
			texts, ok := expandTexts(sub)
			if !ok || len(out)+len(texts) > maxTexts {
				return nil, false
			}
			out = append(out, texts...)
		}
		return out, true
	case syntax.OpConcat:
		out := []pendingText{{}}
		for _, sub := range re.Sub {
			texts, ok := expandTexts(sub)
			if !ok {
				return nil, false
			}
			var joined []pendingText
			for _, a := range out {
				for _, b := range texts {
					t, ok, possible := joinTexts(a, b)
					if !ok || len(joined) == maxTexts {
						return nil, false
					}
					if possible {
						joined = append(joined, t)
					}
				}
			}
			out = joined
		}
		return out, true
	}
	return nil, false
}

// joinTexts is a followed by b: possible is false when a \b between them
// cannot hold; ok is false when it would need the byte before the match.
func joinTexts(a, b pendingText) (t pendingText, ok, possible bool) {
	t = pendingText{text: a.text + b.text, boundary: b.boundary}
	if !a.boundary {
		return t, true, true
	}
	if b.text == "" {
		t.boundary = true
		return t, a.text != "", true
	}
	if a.text == "" {
		return t, false, false
	}
	before, _ := utf8.DecodeLastRuneInString(a.text)
	after, _ := utf8.DecodeRuneInString(b.text)
	return t, true, syntax.IsWordChar(before) != syntax.IsWordChar(after)
}

// looksBack tells whether re may test, before it takes any text, where it
// is (\b, \B, ^, $ and the like): that needs the text before the match.
func looksBack(re *syntax.Regexp) bool {
	switch re.Op {
	case syntax.OpWordBoundary, syntax.OpNoWordBoundary, syntax.OpBeginLine, syntax.OpEndLine, syntax.OpBeginText, syntax.OpEndText:
		return true
	case syntax.OpCapture, syntax.OpQuest, syntax.OpStar, syntax.OpPlus, syntax.OpRepeat:
		return looksBack(re.Sub[0])
	case syntax.OpAlternate:
		return slices.ContainsFunc(re.Sub, looksBack)
	case syntax.OpConcat:
		for _, sub := range re.Sub {
			if looksBack(sub) {
				return true
			}
			if !mayBeEmpty(sub) {
				return false // what follows sees the text this takes
			}
		}
	}
	return false
}

// mayBeEmpty tells whether re can match without taking any text.
func mayBeEmpty(re *syntax.Regexp) bool {
	switch re.Op {
	case syntax.OpLiteral, syntax.OpCharClass, syntax.OpAnyChar, syntax.OpAnyCharNotNL, syntax.OpNoMatch:
		return false
	case syntax.OpCapture, syntax.OpPlus:
		return mayBeEmpty(re.Sub[0])
	case syntax.OpRepeat:
		return re.Min == 0 || mayBeEmpty(re.Sub[0])
	case syntax.OpConcat:
		return !slices.ContainsFunc(re.Sub, func(sub *syntax.Regexp) bool { return !mayBeEmpty(sub) })
	case syntax.OpAlternate:
		return slices.ContainsFunc(re.Sub, mayBeEmpty)
	}
	return true // empty match, assertions, star, quest
}

// maxWidth is the most bytes a match of re can span; false when it is
// unbounded, or when re looks for the end of the text (a match must then
// see the whole text, not a window).
func maxWidth(re *syntax.Regexp) (int, bool) {
	switch re.Op {
	case syntax.OpNoMatch, syntax.OpEmptyMatch, syntax.OpWordBoundary, syntax.OpNoWordBoundary:
		return 0, true
	case syntax.OpLiteral:
		if re.Flags&syntax.FoldCase != 0 {
			return len(re.Rune) * utf8.UTFMax, true
		}
		n := 0
		for _, r := range re.Rune {
			n += max(utf8.RuneLen(r), 1)
		}
		return n, true
	case syntax.OpCharClass, syntax.OpAnyCharNotNL, syntax.OpAnyChar:
		return utf8.UTFMax, true
	case syntax.OpCapture, syntax.OpQuest:
		return maxWidth(re.Sub[0])
	case syntax.OpRepeat:
		w, ok := maxWidth(re.Sub[0])
		return w * re.Max, ok && re.Max >= 0
	case syntax.OpConcat, syntax.OpAlternate:
		total := 0
		for _, sub := range re.Sub {
			w, ok := maxWidth(sub)
			if !ok {
				return 0, false
			}
			if re.Op == syntax.OpConcat {
				total += w
			} else {
				total = max(total, w)
			}
		}
		return total, true
	}
	return 0, false // star, plus, line and text anchors
}

// findAllIn appends to dst the spans re.FindAllStringIndex(s, -1)
// returns; ws are the word starts of s (nil: not known), at is scratch
// space for the places a match may begin.
func (p *pattern) findAllIn(s string, ws *wordStarts, dst [][2]int, at []int) ([][2]int, []int) {
	if p.starts == nil {
		if d := p.built().dfa; d != nil {
			if found, ok := d.findAll(s, dst); ok {
				return found, at
			}
		}
		for _, m := range p.re.FindAllStringIndex(s, -1) {
			dst = append(dst, [2]int{m[0], m[1]})
		}
		return dst, at
	}
	for _, b := range p.holds {
		if strings.IndexByte(s, b) < 0 {
			return dst, at
		}
	}
	at = p.candidates(s, ws, at[:0])
	end := 0
	for _, i := range at {
		if i < end {
			continue // matches do not overlap
		}
		if n := p.matchAt(s, i); n > 0 {
			dst = append(dst, [2]int{i, i + n})
			end = i + n
		}
	}
	return dst, at
}

// matchesWithin is p.re.MatchString(s[from:to]), at being p.candidates
// of the whole of s: the places a match of the part may begin are among
// them, or at from (where the part's \b needs no look at the byte before).
// It spares finding them again in each sentence of a text.
func (p *pattern) matchesWithin(s string, from, to int, at []int) bool {
	part := s[from:to]
	if p.starts == nil {
		return p.re.MatchString(part)
	}
	if part != "" && p.begins[part[0]] && p.matchAt(part, 0) > 0 {
		return true
	}
	i, _ := slices.BinarySearch(at, from+1)
	for ; i < len(at) && at[i] < to; i++ {
		if p.matchAt(part, at[i]-from) > 0 {
			return true
		}
	}
	return false
}

// candidates appends to at, in order, the offsets where one of the starts
// occurs: for a pattern that begins with \b, only where a word begins
// (every start begins with a word character), looked up in ws when given.
func (p *pattern) candidates(s string, ws *wordStarts, at []int) []int {
	if p.boundary && ws != nil {
		// The lists of the words by their first two bytes (a start's
		// pairBit, worked out once: most lists are empty).
		src, shift := ws.source()
		for k, key := range p.pairs[:len(p.starts)] {
			lit := p.starts[k]
			if len(lit) == 1 { // rare: no list of words by their first byte alone
				at = ws.appendByte(s, lit[0], at)
				continue
			}
			for j := src.head[key]; j != 0; j = src.next[j-1] {
				if i := int(src.at[j-1] - shift); i >= 0 && strings.HasPrefix(s[i:], lit) {
					at = append(at, i)
				}
			}
		}
	} else {
		for _, lit := range p.starts {
			for from := 0; ; {
				i := strings.Index(s[from:], lit)
				if i < 0 {
					break
				}
				at = append(at, from+i)
				from += i + 1
			}
		}
	}
	if len(p.starts) > 1 {
		slices.Sort(at)
		at = slices.Compact(at)
	}
	return at
}

// matchAt is the length of the match that begins at s[i:], or 0 (a match
// is never empty: it begins with a start).
func (p *pattern) matchAt(s string, i int) int {
	if p.boundary && i > 0 {
		if r, _ := utf8.DecodeLastRuneInString(s[:i]); syntax.IsWordChar(r) {
			return 0
		}
	}
	rest := s[i:]
	if p.texts != nil {
		if len(rest) < 8 {
			for _, t := range p.texts {
				if strings.HasPrefix(rest, t.text) && t.fits(rest[len(t.text):]) {
					return len(t.text)
				}
			}
			return 0
		}
		head := load64(rest, 0)
		for _, t := range p.texts {
			// A text of eight bytes or fewer is there when its head is.
			if head&t.mask == t.head && (len(t.text) <= 8 || strings.HasPrefix(rest, t.text)) && t.fits(rest[len(t.text):]) {
				return len(t.text)
			}
		}
		return 0
	}
	p.built()
	if p.dfa != nil {
		if n, ok := p.dfa.matchAt(s, i); ok {
			return n
		}
	}
	// The window keeps one whole rune after the longest match, so \b at
	// its end sees what it would see in the whole text.
	if p.width >= 0 && len(rest) > p.width+utf8.UTFMax {
		rest = rest[:p.width+utf8.UTFMax]
	}
	loc := p.anchored.FindStringIndex(rest)
	if loc == nil {
		return 0
	}
	return loc[1]
}

// load64 is the eight bytes of s from i on, little-endian (the compiler
// makes it one load).
func load64(s string, i int) uint64 {
	s = s[i : i+8]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}

// fits tells whether what follows the text (next) is what its \b asks
// for: \b sees a rune beyond ASCII, like the text's end, as no word
// character, and so does wordByte for each of its bytes.
func (t literalText) fits(next string) bool {
	switch t.after {
	case afterWord:
		return next != "" && wordByte[next[0]]
	case afterNonWord:
		return next == "" || !wordByte[next[0]]
	}
	return true
}

// wordStarts are the byte offsets where a word begins as regexp's \b
// sees one (an ASCII letter, digit or underscore after none), listed by
// their first two bytes: the only places where a pattern that begins
// with \b and a word can match. One pass over the text finds them for
// all the patterns, instead of a strings.Index pass per pattern and word.
type wordStarts struct {
	at []int32 // in text order
	// The starts whose first two bytes have pairBit k, in text order:
	// at[j-1] for j := head[k]; j != 0; j = next[j-1] (0 ends a list, so
	// that clearing head empties them). Listed by their first byte, a
	// pattern's start met four words a list, most of them differing at
	// the second byte.
	head [256]int32
	next []int32
	// of, when not nil, holds the starts (suffixOf): those from base on,
	// counted from base.
	of   *wordStarts
	base int32
}

// index finds the word starts of s.
func (w *wordStarts) index(s string) {
	w.at = w.at[:0]
	prev := false // s[i-1] is a word byte
	for i := range len(s) {
		word := isWordByte[s[i]]
		if word && !prev {
			w.at = append(w.at, int32(i))
		}
		prev = word
	}
	w.link(s)
}

// indexTokens is index of an ASCII text without '_' whose tokens
// (tokenize's) are toks: its words as \b sees them, the runs of
// [0-9A-Za-z], are its tokens, so their starts are read from the tokens
// rather than from every byte.
func (w *wordStarts) indexTokens(s string, toks []token) {
	w.at = slices.Grow(w.at[:0], len(toks))[:len(toks)]
	for i, t := range toks {
		w.at[i] = int32(t.start)
	}
	w.link(s)
}

// link lists the word starts of s in w.at by their first two bytes
// (w.head, w.next).
func (w *wordStarts) link(s string) {
	w.of = nil
	clear(w.head[:])
	w.next = slices.Grow(w.next[:0], len(w.at))[:len(w.at)]
	for j := len(w.at) - 1; j >= 0; j-- { // backwards: each list in text order
		// A word of one byte at the end of s has that byte for its
		// second: the list it is in does not matter, no start of two
		// bytes begins it.
		i := int(w.at[j])
		k := pairBit(s[i], s[min(i+1, len(s)-1)])
		w.next[j], w.head[k] = w.head[k], int32(j+1)
	}
}

// pairBit is the list (of 256) of the words that begin with two bytes: a
// hash, lists are shared by a few pairs.
func pairBit(first, second byte) uint8 {
	return uint8(uint(first)*31 + uint(second))
}

// isWordByte tells the bytes of words as \b sees them ([0-9A-Za-z_]).
var isWordByte = func() (is [256]bool) {
	for b := range utf8.RuneSelf {
		is[b] = syntax.IsWordChar(rune(b))
	}
	return is
}()

// suffixOf sets w to the word starts of src's text from at on, counted
// from at: at must be a word start or follow a byte that is not a word's.
// It reads them from src, which must not change while w is in use.
func (w *wordStarts) suffixOf(src *wordStarts, at int) {
	if src.of != nil {
		w.of, w.base = src.of, src.base+int32(at)
		return
	}
	w.of, w.base = src, int32(at)
}

// source is where w's starts are listed (wordStarts.head), each to be
// less shift: w itself, or for a suffix (suffixOf) its source, in which
// a start less than shift is before the text and not one of w's.
func (w *wordStarts) source() (src *wordStarts, shift int32) {
	if w.of != nil {
		return w.of, w.base
	}
	return w, 0
}

// appendByte appends to at, in order, the word starts of s (w's text)
// whose first byte is b.
func (w *wordStarts) appendByte(s string, b byte, at []int) []int {
	src, shift := w.source()
	for _, i := range src.at {
		if i := int(i - shift); i >= 0 && s[i] == b {
			at = append(at, i)
		}
	}
	return at
}

// wordByte and asciiAlnum say of each byte whether it is a word character
// for regexp's \b and whether isAlnum holds (false for every byte of a
// multi-byte rune, whose rune is not ASCII), looked up rather than worked
// out in the loops that read every byte of a text.
var wordByte, asciiAlnum = func() (word, alnum [256]bool) {
	for b := range utf8.RuneSelf {
		word[b] = syntax.IsWordChar(rune(b))
		alnum[b] = 'a' <= b && b <= 'z' || '0' <= b && b <= '9' || 'A' <= b && b <= 'Z'
	}
	return word, alnum
}()

func isAlnum(r rune) bool {
	if r < utf8.RuneSelf {
		return asciiAlnum[r]
	}
	return unicode.IsLetter(r) || unicode.IsDigit(r)
}

// literals finds which of a set of literal texts occur in a text, in one
// pass over it: an Aho-Corasick automaton, its transitions worked out in
// full (a DFA) over the bytes that occur in the texts. It is what lets a
// label set tell, for a paper's whole title and abstract, which of its
// hundreds of patterns can match at all, for the price of reading the
// text once (strings.Contains of each pattern's literal parts read it
// once per literal). A Go library (a port of Rust's aho-corasick) did the
// same at ten times the cost and dozens of allocations a text.
type literals struct {
	n       int        // how many texts
	longest int        // the longest text's length
	class   [256]uint8 // a byte's column in next; 0 for bytes in no text
	classes int
	// next[at+class] is where the state after the byte is in next (its
	// number times classes), negated (as ^at) when a text ends at it.
	next  []int32
	out   []int32 // out[outAt[s]:outAt[s+1]]: the texts that end at state s
	outAt []int32
	// one[s] is the text that ends at state s when it is the only one
	// (most states where a text ends), else -1: found then needs no
	// slice of out.
	one []int32
}

// newLiterals builds the automaton of texts; a text's number is its index.
func newLiterals(texts []string) *literals {
	l := &literals{n: len(texts), classes: 1}
	for _, t := range texts {
		l.longest = max(l.longest, len(t))
		for i := range len(t) {
			if l.class[t[i]] == 0 {
				l.class[t[i]] = uint8(l.classes)
				l.classes++
			}
		}
	}
	// The trie of the texts: goto[state][class], 0 (the root) for none yet.
	trie := [][]int32{make([]int32, l.classes)}
	ends := [][]int32{nil}
	for id, t := range texts {
		s := int32(0)
		for i := range len(t) {
			c := l.class[t[i]]
			if trie[s][c] == 0 {
				trie = append(trie, make([]int32, l.classes))
				ends = append(ends, nil)
				trie[s][c] = int32(len(trie) - 1)
			}
			s = trie[s][c]
		}
		ends[s] = append(ends[s], int32(id))
	}
	// Breadth first, each state's missing transitions are its failure
	// state's (the longest proper suffix that is a state), and the texts
	// that end at its failure state end at it too.
	fail := make([]int32, len(trie))
	queue := []int32{}
	for c := range l.classes {
		if s := trie[0][c]; s != 0 {
			queue = append(queue, s)
		}
	}
	for len(queue) > 0 {
		s := queue[0]
		queue = queue[1:]
		ends[s] = append(ends[s], ends[fail[s]]...)
		for c := range l.classes {
			t := trie[s][c]
			if t == 0 {
				trie[s][c] = trie[fail[s]][c]
				continue
			}
			fail[t] = trie[fail[s]][c]
			queue = append(queue, t)
		}
	}
	l.next = make([]int32, 0, len(trie)*l.classes)
	l.outAt = make([]int32, 0, len(trie)+1)
	for s := range trie {
		for _, t := range trie[s] {
			at := t * int32(l.classes)
			if len(ends[t]) > 0 {
				at = ^at
			}
			l.next = append(l.next, at)
		}
		l.outAt = append(l.outAt, int32(len(l.out)))
		l.out = append(l.out, ends[s]...)
		one := int32(-1)
		if len(ends[s]) == 1 {
			one = ends[s][0]
		}
		l.one = append(l.one, one)
	}
	l.outAt = append(l.outAt, int32(len(l.out)))
	return l
}

// find sets in present (a bit per text, (n+63)/64 words, cleared here)
// the texts that occur in s, and returns it. A nil literals has no texts.
// A long text is read as two halves at once, the second from longest-1
// bytes before the middle, so that a text across the middle is found in
// it: each step waits on the one before, two walks in turn wait half
// as long.
func (l *literals) find(s string, present []uint64) []uint64 {
	if l == nil {
		return present[:0]
	}
	present = slices.Grow(present[:0], (l.n+63)/64)[:(l.n+63)/64]
	clear(present)
	l.found(0, present) // "" is in every text
	from := 0
	if n := len(s); l.longest > 0 && n >= 64+2*l.longest {
		mid := n / 2
		other := s[mid-(l.longest-1):] // the second walk's, longer than s[:mid]
		_, b := l.walkTwo(s, other, mid, present, present)
		s, from = other, mid
		return l.walk(s, from, b, present)
	}
	return l.walk(s, from, 0, present)
}

// findSplit is find of s and of s[at:] at once: it returns the texts
// that occur in s (whole) and those that occur in s[at:] (tail), into
// whole and tail as find would. Two walks go in turn, as in find: one
// through s[at:] and one through s up to longest-1 bytes past at. A text
// that ends further on begins at or after at, so the two together find
// every text of s, for the price of reading s[at:] once (find of each
// read it twice), and of waiting about as long as for the longer walk.
func (l *literals) findSplit(s string, at int, whole, tail []uint64) (_, _ []uint64) {
	if l == nil {
		return whole[:0], tail[:0]
	}
	words := (l.n + 63) / 64
	whole = slices.Grow(whole[:0], words)[:words]
	tail = slices.Grow(tail[:0], words)[:words]
	clear(whole)
	clear(tail)
	l.found(0, whole) // "" is in every text
	l.found(0, tail)
	head, rest := s[:min(len(s), at+max(l.longest-1, 0))], s[at:]
	n := min(len(head), len(rest))
	a, b := l.walkTwo(head, rest, n, whole, tail)
	l.walk(head, n, a, whole)
	l.walk(rest, n, b, tail)
	for k := range whole {
		whole[k] |= tail[k]
	}
	return whole, tail
}

// walkTwo walks x[:n] and y[:n] from the start state, a byte of each in
// turn (each walk's table look-ups then wait beside the other's, not one
// after another), setting in px the texts found in x and in py those
// found in y; it returns the states the walks end in.
func (l *literals) walkTwo(x, y string, n int, px, py []uint64) (int32, int32) {
	x, y = x[:n], y[:n]
	// The table in locals: read through l, it was loaded again at every
	// byte (found writes to memory l might be in).
	next, class := l.next, &l.class
	a, b := 0, 0
	for i := range n {
		a = int(next[a+int(class[x[i]])])
		b = int(next[b+int(class[y[i]])])
		if a < 0 { // a text ends here: rare
			a = ^a
			l.found(int32(a), px)
		}
		if b < 0 {
			b = ^b
			l.found(int32(b), py)
		}
	}
	return int32(a), int32(b)
}

// walk goes on from state at through s[from:], setting in present the
// texts found.
func (l *literals) walk(s string, from int, at int32, present []uint64) []uint64 {
	next, class := l.next, &l.class // as in walkTwo
	st := int(at)
	for i := from; i < len(s); i++ {
		st = int(next[st+int(class[s[i]])])
		if st < 0 { // a text ends here: rare
			st = ^st
			l.found(int32(st), present)
		}
	}
	return present
}

// found sets in present the texts that end at the state at (a place in next).
func (l *literals) found(at int32, present []uint64) {
	st := at / int32(l.classes)
	if id := l.one[st]; id >= 0 {
		present[id>>6] |= 1 << (id & 63)
		return
	}
	for _, id := range l.out[l.outAt[st]:l.outAt[st+1]] {
		present[id>>6] |= 1 << (id & 63)
	}
}

// has tells whether text id was found (present is find's).
func has(present []uint64, id int32) bool {
	return present[id>>6]&(1<<(id&63)) != 0
}
