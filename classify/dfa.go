package classify

import (
	"regexp/syntax"
	"slices"
	"sync"
	"sync/atomic"
	"unicode/utf8"
)

// dfa runs a pattern that regexp would run by backtracking
// ("re:\\b(we|our)\\b.{0,30}\\b(use|used)\\b", the citation marker
// "\\[[^\\[\\]]{0,40}\\d[^\\[\\]]{0,40}\\]") as a deterministic automaton, one
// table look-up a byte: regexp's backtracker clears a bit per instruction
// and byte of the text and walks the pattern's repeats at every place it
// is tried, a third of a sentence's time. A state is an ordered list of
// regexp's threads (a Pike machine's), so the match found at a place is
// the one regexp finds there (leftmost-first: when a thread matches, the
// threads of lower priority are dropped and the others go on, a later
// match of theirs preferred). States are made when a text first needs
// them and kept for later texts (a lazy DFA, as RE2's), at most limit of
// them; when they are all used, they are dropped and made anew. A text
// that needs more than limit is left to regexp.
type dfa struct {
	prog *syntax.Prog
	// Runes are read by class: runes of a class match the same
	// instructions and are alike to \b. The last class is the text's end.
	ascii   [utf8.RuneSelf]uint8
	above   []rune  // runes beyond ASCII: above[k] begins a range of class aboveOf[k]
	aboveOf []uint8 //
	kinds   []uint8 // by class: the kind of rune (kindWord, kindNewline, kindOther, kindEnd)
	reps    []rune  // by class: one rune of it
	stride  int     // classes, the end included
	// begins tells of each byte whether a match may begin with it (every
	// byte beyond ASCII may): findAll tries no other place.
	begins [256]bool
	cache  atomic.Pointer[dfaCache]
	limit  int // maxDFAStates; less in tests

	mu   sync.Mutex  // guards the cache's states and ids, growing its table, and what follows
	seen []bool      // closure's scratch
	bufs [2][]uint32 // step's scratch
}

// dfaCache are the states made so far. A search reads one cache
// throughout: a state's number means nothing in another.
type dfaCache struct {
	// table holds, at state*stride+class, 0 while not yet worked out, else
	// 1 + (next state << 1 | a match ends before the rune). State 0 is the
	// dead state: no thread left.
	table  atomic.Pointer[[]atomic.Int32]
	start  [kindEnd + 1]int32 // by the kind of rune before the place tried
	states []dfaState
	ids    map[string]int32 // a state's key: its kind before and its threads
}

// dfaState is a set of threads: the instructions they are at, in
// priority order, before the empty-width ones (\b) are followed, which
// need the rune after; and the kind of rune before.
type dfaState struct {
	pcs    []uint32
	before uint8
}

// Kinds of rune, all that the empty-width instructions (\b, ^, $) ask about.
const (
	kindWord = iota
	kindNewline
	kindOther
	kindEnd // before the text's first rune, or after its last
)

// maxDFAStates bounds the states a pattern's automaton keeps.
const maxDFAStates = 2048

// newDFA compiles re (parsed and simplified as regexp does it) or
// returns nil for a pattern it does not run: one that folds case or can
// match the empty text.
func newDFA(re *syntax.Regexp) *dfa {
	prog, err := syntax.Compile(re)
	if err != nil || mayBeEmpty(re) {
		return nil
	}
	d := &dfa{prog: prog, limit: maxDFAStates, seen: make([]bool, len(prog.Inst))}
	// The runes where some instruction's answer changes.
	bounds := []rune{utf8.RuneSelf}
	for _, in := range prog.Inst {
		switch in.Op {
		case syntax.InstRune:
			if syntax.Flags(in.Arg)&syntax.FoldCase != 0 && len(in.Rune) == 1 {
				return nil
			}
			if len(in.Rune) == 1 {
				bounds = append(bounds, in.Rune[0], in.Rune[0]+1)
			}
			for i := 0; i+1 < len(in.Rune); i += 2 {
				bounds = append(bounds, in.Rune[i], in.Rune[i+1]+1)
			}
		case syntax.InstRune1:
			bounds = append(bounds, in.Rune[0], in.Rune[0]+1)
		}
	}
	classOf := map[string]uint8{}
	sig := make([]byte, 0, 1+len(prog.Inst)) // a rune's kind and the instructions it matches
	class := func(r rune) uint8 {
		kind := kindOther
		switch {
		case r == '\n':
			kind = kindNewline
		case syntax.IsWordChar(r):
			kind = kindWord
		}
		sig = append(sig[:0], byte(kind))
		for _, in := range prog.Inst {
			if isRuneInst(in.Op) && runeMatches(&in, r) {
				sig = append(sig, 1)
			} else {
				sig = append(sig, 0)
			}
		}
		c, ok := classOf[string(sig)]
		if !ok {
			c = uint8(len(d.reps))
			classOf[string(sig)] = c
			d.reps = append(d.reps, r)
			d.kinds = append(d.kinds, uint8(kind))
		}
		return c
	}
	for b := range rune(utf8.RuneSelf) {
		d.ascii[b] = class(b)
	}
	slices.Sort(bounds)
	for _, r := range slices.Compact(bounds) {
		if r >= utf8.RuneSelf && r <= utf8.MaxRune {
			d.above = append(d.above, r)
			d.aboveOf = append(d.aboveOf, class(r))
		}
		if len(d.reps) > 250 {
			return nil
		}
	}
	d.kinds = append(d.kinds, kindEnd)
	d.stride = len(d.reps) + 1
	d.mu.Lock()
	ca := d.newCache()
	d.mu.Unlock()
	for b := range d.begins {
		d.begins[b] = b >= utf8.RuneSelf
		for _, st := range ca.start {
			if b < utf8.RuneSelf {
				v, _ := d.step(ca, st, int(d.ascii[b]))
				d.begins[b] = d.begins[b] || v != 1 // 1: dead, no match
			}
		}
	}
	return d
}

// newCache starts the cache anew, with the dead state and the start
// states only. d.mu is held.
func (d *dfa) newCache() *dfaCache {
	ca := &dfaCache{states: []dfaState{{}}, ids: map[string]int32{}}
	t := make([]atomic.Int32, 16*d.stride)
	ca.table.Store(&t)
	for k := range ca.start {
		ca.start[k] = d.state(ca, []uint32{uint32(d.prog.Start)}, uint8(k))
	}
	d.cache.Store(ca)
	return ca
}

func isRuneInst(op syntax.InstOp) bool {
	return op == syntax.InstRune || op == syntax.InstRune1 || op == syntax.InstRuneAny || op == syntax.InstRuneAnyNotNL
}

// runeMatches tells whether rune instruction in takes r, as regexp's
// machine asks it.
func runeMatches(in *syntax.Inst, r rune) bool {
	switch in.Op {
	case syntax.InstRuneAny:
		return true
	case syntax.InstRuneAnyNotNL:
		return r != '\n'
	case syntax.InstRune1:
		return r == in.Rune[0]
	}
	return in.MatchRune(r)
}

// state is the number in ca of the state of threads pcs after a rune of
// kind before, made if new; -1 when there is no room for it. d.mu is held.
func (d *dfa) state(ca *dfaCache, pcs []uint32, before uint8) int32 {
	if len(pcs) == 0 {
		return 0
	}
	key := make([]byte, 0, 1+4*len(pcs))
	key = append(key, before)
	for _, pc := range pcs {
		key = append(key, byte(pc), byte(pc>>8), byte(pc>>16), byte(pc>>24))
	}
	if id, ok := ca.ids[string(key)]; ok {
		return id
	}
	if len(ca.states) == d.limit {
		return -1
	}
	id := int32(len(ca.states))
	ca.states = append(ca.states, dfaState{slices.Clone(pcs), before})
	ca.ids[string(key)] = id
	if t := *ca.table.Load(); len(t) < len(ca.states)*d.stride {
		grown := make([]atomic.Int32, 2*len(t))
		for i := range t {
			grown[i].Store(t[i].Load())
		}
		ca.table.Store(&grown)
	}
	return id
}

// classOf is the class of a rune beyond ASCII.
func (d *dfa) classOf(r rune) int {
	k, found := slices.BinarySearch(d.above, r)
	if !found {
		k--
	}
	return int(d.aboveOf[k])
}

// matchAt is the length of the match regexp finds beginning at s[i:], in
// the whole of s (\b sees the rune before i), or 0; ok is false when the
// text needs more states than the automaton may keep.
func (d *dfa) matchAt(s string, i int) (n int, ok bool) {
	n, _, ok = d.matchReading(s, i)
	return n, ok
}

// matchReading is matchAt that also says how many bytes it read.
func (d *dfa) matchReading(s string, i int) (n, read int, ok bool) {
	for range 2 { // a second time in a cache started anew
		if n, read, ok = d.matchIn(d.cache.Load(), s, i); ok {
			return n, read, true
		}
	}
	return 0, 0, false
}

// matchIn is matchReading with the states of ca; ok is false when ca is
// full or was dropped while it read.
func (d *dfa) matchIn(ca *dfaCache, s string, i int) (n, read int, ok bool) {
	t := *ca.table.Load()
	st := ca.start[kindBefore(s, i)]
	end := -1
	for p := i; ; {
		c, w := d.stride-1, 0
		if p < len(s) {
			if b := s[p]; b < utf8.RuneSelf {
				c, w = int(d.ascii[b]), 1
			} else {
				var r rune
				r, w = utf8.DecodeRuneInString(s[p:])
				c = d.classOf(r)
			}
		}
		v := t[int(st)*d.stride+c].Load()
		if v == 0 {
			if v, t = d.step(ca, st, c); v == 0 {
				return 0, 0, false
			}
		}
		if v--; v&1 != 0 {
			end = p
		}
		if st = v >> 1; st == 0 || p == len(s) {
			return max(end-i, 0), p - i + w, true
		}
		p += w
	}
}

// kindBefore is the kind of the rune before s[i:].
func kindBefore(s string, i int) int {
	if i == 0 {
		return kindEnd
	}
	switch b := s[i-1]; {
	case b == '\n':
		return kindNewline
	case wordByte[b]:
		return kindWord
	}
	return kindOther // an ASCII byte, or the last of a rune beyond ASCII (never a word's)
}

// step works out, records and returns ca's table entry for state st and
// class c, and the table. It returns 0 when ca was dropped, or is full:
// then it is dropped, for a cache started anew.
func (d *dfa) step(ca *dfaCache, st int32, c int) (int32, []atomic.Int32) {
	d.mu.Lock()
	defer d.mu.Unlock()
	t := *ca.table.Load()
	if d.cache.Load() != ca {
		return 0, t
	}
	if v := t[int(st)*d.stride+c].Load(); v != 0 {
		return v, t
	}
	from := ca.states[st]
	flags := syntax.EmptyOpContext(kindRune(from.before), kindRune(d.kinds[c]))
	clear(d.seen)
	threads, matched := d.bufs[0][:0], false
	for _, pc := range from.pcs {
		if threads, matched = d.closure(pc, flags, threads); matched {
			break // the threads after a match are of lower priority
		}
	}
	next := d.bufs[1][:0]
	if c < d.stride-1 {
		r := d.reps[c]
		for _, pc := range threads {
			if in := &d.prog.Inst[pc]; runeMatches(in, r) && !slices.Contains(next, in.Out) {
				next = append(next, in.Out)
			}
		}
	}
	d.bufs = [2][]uint32{threads[:0], next[:0]}
	to := d.state(ca, next, d.kinds[c])
	if to < 0 {
		d.newCache()
		return 0, t
	}
	v := 1 + (to<<1 | int32(b2i(matched)))
	t = *ca.table.Load() // state may have grown it
	t[int(st)*d.stride+c].Store(v)
	return v, t
}

// closure appends to threads, in priority order, the rune instructions
// reached from pc through empty ones that flags let pass; matched is true
// when a match is reached, and nothing after it is appended.
func (d *dfa) closure(pc uint32, flags syntax.EmptyOp, threads []uint32) (_ []uint32, matched bool) {
	if d.seen[pc] {
		return threads, false
	}
	d.seen[pc] = true
	in := &d.prog.Inst[pc]
	switch in.Op {
	case syntax.InstAlt, syntax.InstAltMatch:
		if threads, matched = d.closure(in.Out, flags, threads); matched {
			return threads, true
		}
		return d.closure(in.Arg, flags, threads)
	case syntax.InstCapture, syntax.InstNop:
		return d.closure(in.Out, flags, threads)
	case syntax.InstEmptyWidth:
		if syntax.EmptyOp(in.Arg)&^flags == 0 {
			return d.closure(in.Out, flags, threads)
		}
		return threads, false
	case syntax.InstMatch:
		return threads, true
	case syntax.InstFail:
		return threads, false
	}
	return append(threads, pc), false
}

// kindRune is a rune of the kind, for syntax.EmptyOpContext: -1 for the
// text's end.
func kindRune(kind uint8) rune {
	switch kind {
	case kindWord:
		return 'a'
	case kindNewline:
		return '\n'
	case kindOther:
		return ' '
	}
	return -1
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// findAll appends to dst what regexp's FindAllStringIndex finds in s,
// trying every rune; ok is false (and dst as it was) when the automaton
// has no room for a state the text needs, or when its walks read more
// than a few times the text: a walk starts at every place, so a pattern
// like [a-z]+\d would read a long word's rest from each of its letters,
// where regexp reads the text once.
func (d *dfa) findAll(s string, dst [][2]int) (_ [][2]int, ok bool) {
	from := len(dst)
	budget := 8*len(s) + 1024
	for i := 0; i < len(s); {
		if !d.begins[s[i]] {
			i++ // an ASCII byte
			continue
		}
		n, read, ok := d.matchReading(s, i)
		if budget -= read; !ok || budget < 0 {
			return dst[:from], false
		}
		if n > 0 {
			dst = append(dst, [2]int{i, i + n})
			i += n
			continue
		}
		if s[i] < utf8.RuneSelf {
			i++
		} else {
			_, w := utf8.DecodeRuneInString(s[i:])
			i += w
		}
	}
	return dst, true
}
