// Package classify tags citing sentences with a citation role and a
// polarity, and citing papers with pluralism categories, by weighing cue
// phrases read from the rule files in configs/rules. Every label comes
// with the cues that fired for it.
package classify

import (
	"cmp"
	"encoding/binary"
	"iter"
	"math"
	"math/bits"
	"slices"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"
	"unsafe"

	"github.com/citecrawl/citecrawl/record"
)

// Classifier applies one set of rules. It is safe for concurrent use: it
// holds the rules, which it never changes, their patterns compiled once,
// and a pool of scratch space that each call takes for itself.
type Classifier struct {
	rules   *Rules
	tagger  *tagger    // for "pos:" cues; loads its model on first use
	markers []*pattern // rules.CitationMarkers
	ownWork []*pattern // rules.Pluralism.OwnWork
	scratch sync.Pool  // of *scratch
	// wordTable numbers every word a cue of the rules begins with (the
	// keys of each label set's byFirst), every contrast word and every
	// negator and hedge, and sets[ls] says what each is to a label set,
	// scopeOf what each is to negatedHedged: a sentence's words are
	// numbered once as it is split (sentence.ids) for all of them, not
	// looked up by each.
	wordTable *wordTable
	sets      map[*LabelSet]*setWords
	scopeOf   []uint8 // by word number, the word's scopeWords
	// scopeWords says of each negator and hedge which it is (isNegator,
	// isHedge); ntScope what a word ending in n't is ("n't" among them).
	scopeWords map[string]uint8
	ntScope    uint8
	// scopeFirst[n][b]: a word of scopeWords has n bytes and begins with
	// b (n < 16), so that most words are not looked up.
	scopeFirst [16][256]bool
}

// What a word is to negatedHedged (Classifier.scopeWords).
const (
	isNegator = 1 << iota
	isHedge
)

// setWords is what the numbered words (Classifier.words) are to one of
// the rules' label sets.
type setWords struct {
	first [][]firstCue // by word number, the label set's cues that begin with it and weigh
	// Which cues' literal parts (Cue.needBits) a text holds is worked out
	// from the few literals found in it, not cue by cue (for a paper,
	// fifty patterns that may begin anywhere, a few of whose parts are
	// there): free are the cues that weigh and need none, as bits of
	// scratch.cues; byLiteral[id] the cues that weigh and need literal
	// id, each with the bit of its group (of at most 64: a pattern with
	// more is looked for when its first 64 are there, only to fail);
	// groups[i] has a bit for each of cue i's groups. rest are the cues
	// that weigh and may begin anywhere (LabelSet.rest).
	free      []uint64
	byLiteral [][]cueGroup
	// needed has a bit for each literal some cue of the set needs: the
	// three files share one automaton, and most literals found in a text
	// are another file's (possible).
	needed   []uint64
	groups   []uint64
	rest     []uint64
	contrast []uint8 // by word number: scopeAfter (a contrast word), scopeConceded (a concession) or scopeNone
	// A tally is a sum by label number (scratch.tally), not a list looked
	// through by label: labels are the labels it may hold, ls.Labels
	// first (so a label's number is its place there), then any other
	// that a section or a negated cue adds; cueLabel are each cue's
	// label's number and its flipped label's (Flip), sections each
	// section prior's labels' numbers.
	labels   []string
	cueLabel [][2]int32
	sections [][]int32
	priors   []labelPrior // the labels that have a prior, in the set's order, and their priors
	// cappedFrom[i] is the probability from which a tag of ls.Labels[i]
	// in a sentence without a marker has a confidence that
	// SummaryRoleConfidence caps (CalibrationMap.reaches): a summary's
	// guess then needs no confidence worked out (a log and an exp).
	cappedFrom []float64
}

// firstCue is a cue that begins with a word (setWords.first) and its
// probe: for a phrase of more than a word found by its first (findCue),
// a byte it has past that word's end and the space after (at: its place
// in the phrase; 0 for the other cues). Where the text differs there the
// phrase is not, and most phrases are nowhere their first word is, so
// candidates does not pick them. (The probe beside the cue, not in a
// list by cue: one look-up less each.)
type firstCue struct {
	cue   int32
	probe cueProbe
}

// cueProbe is a byte of a phrase and its place in it (firstCue).
type cueProbe struct {
	at   int32
	want byte
}

// labelPrior is a label's prior, the label by its number (setWords.labels).
type labelPrior struct {
	label int32
	score float64
}

// scratch is the space one call works in, reused so that looking for
// hundreds of cues allocates nothing per cue.
type scratch struct {
	toks    []token
	ids     []int32 // the tokens' word numbers (sentence.ids)
	next    []int32 // sentence.next
	lastTok []int32 // prepareLower: by word number, a later token with it; -1 between calls
	// The literals found in the last few texts read (literalsIn): the
	// label sets share their literals, and read the same texts (a
	// sentence's role and polarity, the citing sentences again for the
	// paper's pluralism), so each text is read once for all.
	present     [4]presence
	presentNext int      // the entry to be replaced next
	cues        []uint64 // a bit per cue of a label set worth looking for (candidates)
	ok          []uint64 // a bit per cue that weighs and whose literal parts are there (possible)
	met         []uint64 // possible: by cue, a bit per group found so far; 0 between calls
	metCues     []int32  // the cues whose met is not 0
	cueTok      []int32  // by cue: the first word where it may begin, or -1 for anywhere (candidates)
	spans       [][2]int
	at          []int
	others      [][2]int
	// negatedHedged's answers, for the places of scopeText weighed so far.
	scopeText string
	scopeAt   []scopeOfPlace
	tally     []tallySum // by label number (setWords.labels) of the label set last tallied
	paper     []tallySum // pluralismOf's scores, rounded
	ev        []record.Evidence
	order     []placed          // sortEvidence
	evCopy    []record.Evidence // sortEvidence
	scope     []scopeSpan       // a label set's contrast scope in the sentence (contrastSpans)
	own       [][2]int          // pluralism: where the paper says what it does (paperOwnWork)
	ownAt     [][]int           // each own_work pattern's candidates in the paper's text
	words     wordStarts        // the sentence's, for the patterns that begin with \b
	// A sentence made from the end of another (suffix): its words and starts.
	suffixToks  []token
	suffixIDs   []int32
	suffixNext  []int32
	suffixWords wordStarts
	citing      []string // Tag: the record's citing sentences
	// The citing sentences' pluralism (stashCiting), in order: how many,
	// each one's tally (len(setWords.labels) sums) and their evidence,
	// weighed as citing.
	citingN    int
	citingSums []tallySum
	citingEv   []record.Evidence
	roleEv     []record.Evidence // Tag: the record's role evidence, until its pluralism's is known
	// The texts lowered during a call, one after another (lowered);
	// forget empties it.
	lower []byte
}

// maxKeptLower is the most space for lowered texts a pooled scratch
// keeps: a record of long texts does not hold its space for good.
const maxKeptLower = 1 << 16

// filter yields the items of xs that keep holds for.
func filter[T any](xs []T, keep func(T) bool) iter.Seq[T] {
	return func(yield func(T) bool) {
		for _, x := range xs {
			if keep(x) && !yield(x) {
				return
			}
		}
	}
}

// cueGroup is a cue and one of its groups of literal parts (setWords.byLiteral);
// only: it is the cue's one group, so a literal of it found is enough.
type cueGroup struct {
	cue  int32
	only bool
	bit  uint64
}

// presence is what an automaton found in a text (literals.find).
type presence struct {
	lits  *literals
	text  string
	found []uint64
}

// literalsIn is l.find(text), from sc.present when it holds it.
func (sc *scratch) literalsIn(l *literals, text string) []uint64 {
	for i := range sc.present {
		if p := &sc.present[i]; p.lits == l && l != nil && p.text == text {
			return p.found
		}
	}
	p := sc.newPresence(l, text)
	p.found = l.find(text, p.found)
	return p.found
}

// newPresence is the entry of sc.present for what l finds in text, its
// found to be filled in; it replaces the oldest.
func (sc *scratch) newPresence(l *literals, text string) *presence {
	p := &sc.present[sc.presentNext]
	sc.presentNext = (sc.presentNext + 1) % len(sc.present)
	p.lits, p.text = l, text
	return p
}

// literalsSplit fills sc.present with what l finds in text and in
// text[at:] (literals.findSplit), for a sentence made from the end of a
// text (suffix) and the text itself.
func (sc *scratch) literalsSplit(l *literals, text string, at int) {
	whole, tail := sc.newPresence(l, text), sc.newPresence(l, text[at:])
	whole.found, tail.found = l.findSplit(text, at, whole.found, tail.found)
}

// forget drops the texts sc.present and sc.scopeText hold, which a
// pooled scratch must not keep alive, and empties sc.lower for the next
// call: the texts lowered in it are in none of a call's results, and
// the next call's, written over them, must not be taken for them (a
// string at the same place and of the same length is equal to Go
// without a look at its bytes).
func (sc *scratch) forget() {
	for i := range sc.present {
		sc.present[i].lits, sc.present[i].text = nil, ""
	}
	sc.scopeText = ""
	sc.roleEv = sc.roleEv[:0]
	sc.citingN, sc.citingSums, sc.citingEv = 0, sc.citingSums[:0], sc.citingEv[:0]
	sc.lower = sc.lower[:0]
	if cap(sc.lower) > maxKeptLower {
		sc.lower = nil
	}
}

// tallySum is a label's running score; has tells whether anything was
// added to it (a label without is none of the scores).
type tallySum struct {
	score float64
	has   bool
}

// Load reads the rules in dir ("" for the built-in copy) and returns
// their Classifier.
func Load(dir string) (*Classifier, error) {
	rules, err := LoadRules(dir)
	if err != nil {
		return nil, err
	}
	return New(rules), nil
}

// New returns a Classifier for rules.
func New(rules *Rules) *Classifier {
	c := &Classifier{rules: rules, tagger: &tagger{}}
	c.scratch.New = func() any { return &scratch{} }
	for _, re := range rules.CitationMarkers {
		c.markers = append(c.markers, compilePattern(re))
	}
	if rules.Pluralism != nil {
		for _, re := range rules.Pluralism.OwnWork {
			c.ownWork = append(c.ownWork, compilePattern(re))
		}
	}
	c.scopeWords = map[string]uint8{}
	for w := range rules.Negators {
		c.scopeWords[w] |= isNegator
	}
	for w := range rules.Hedges {
		c.scopeWords[w] |= isHedge
	}
	c.ntScope = c.scopeWords["n't"]
	for w := range c.scopeWords {
		if w != "" && len(w) < len(c.scopeFirst) {
			c.scopeFirst[len(w)][w[0]] = true
		}
	}
	c.sets = map[*LabelSet]*setWords{}
	words := map[string]int32{} // while the lists are built; then c.wordTable
	var byNumber []string
	number := func(w string) {
		if _, ok := words[w]; !ok {
			words[w] = int32(len(byNumber))
			byNumber = append(byNumber, w)
		}
	}
	for _, ls := range []*LabelSet{rules.Role, rules.Polarity, rules.Pluralism} {
		if ls == nil {
			continue
		}
		c.sets[ls] = &setWords{}
		for w := range ls.byFirst {
			number(w)
		}
		if ls.Contrast != nil {
			for w := range ls.Contrast.Words {
				number(w)
			}
			for w := range ls.Contrast.Concessions {
				number(w)
			}
		}
	}
	for w := range c.scopeWords {
		number(w)
	}
	c.wordTable = newWordTable(byNumber)
	c.scopeOf = make([]uint8, len(byNumber))
	for w, is := range c.scopeWords {
		c.scopeOf[words[w]] = is
	}
	for ls, sw := range c.sets { // every word has a place in every list
		sw.labels = slices.Clone(ls.Labels)
		for _, l := range ls.Labels {
			sw.cappedFrom = append(sw.cappedFrom, ls.calibration(l, false).reaches(rules.SummaryRoleConfidence))
		}
		labelNumber := func(l string) int32 {
			i := slices.Index(sw.labels, l)
			if i < 0 {
				i = len(sw.labels)
				sw.labels = append(sw.labels, l)
			}
			return int32(i)
		}
		for _, l := range ls.Labels {
			if w, ok := ls.Prior[l]; ok {
				sw.priors = append(sw.priors, labelPrior{labelNumber(l), w})
			}
		}
		for _, sp := range ls.Sections {
			sw.sections = append(sw.sections, nil)
			for _, l := range sp.Labels {
				sw.sections[len(sw.sections)-1] = append(sw.sections[len(sw.sections)-1], labelNumber(l))
			}
		}
		probes := make([]cueProbe, len(ls.Cues))
		for i, cue := range ls.Cues {
			sw.cueLabel = append(sw.cueLabel, [2]int32{labelNumber(cue.Label), labelNumber(Flip(cue.Label))})
			if k := len(cue.first) + 1; cue.pat == nil && cue.atWord && !cue.oneWord && k < len(cue.phrase) {
				probes[i] = cueProbe{int32(k), cue.phrase[k]} // as findCue compares it
			}
		}
		weighs := func(i int32) bool { return ls.Cues[i].Weight != 0 }
		sw.first = make([][]firstCue, len(words))
		for w, cues := range ls.byFirst {
			for i := range filter(cues, weighs) {
				sw.first[words[w]] = append(sw.first[words[w]], firstCue{i, probes[i]})
			}
		}
		bitWords := (len(ls.Cues) + 63) / 64
		sw.free, sw.rest, sw.groups = make([]uint64, bitWords), make([]uint64, bitWords), make([]uint64, len(ls.Cues))
		if ls.lits != nil {
			sw.byLiteral = make([][]cueGroup, ls.lits.n)
			sw.needed = make([]uint64, (ls.lits.n+63)/64)
		}
		for i, cue := range ls.Cues {
			if !weighs(int32(i)) {
				continue
			}
			if len(cue.needIDs) == 0 {
				sw.free[i>>6] |= 1 << (i & 63)
			}
			for g, ids := range cue.needIDs[:min(len(cue.needIDs), 64)] {
				sw.groups[i] |= 1 << g
				for _, id := range ids {
					sw.byLiteral[id] = append(sw.byLiteral[id], cueGroup{int32(i), len(cue.needIDs) == 1, 1 << g})
					sw.needed[id>>6] |= 1 << (id & 63)
				}
			}
		}
		for i := range filter(ls.rest, weighs) {
			sw.rest[i>>6] |= 1 << (i & 63)
		}
		if ls.Contrast != nil {
			sw.contrast = make([]uint8, len(words))
			for w := range ls.Contrast.Concessions {
				sw.contrast[words[w]] = scopeConceded
			}
			for w := range ls.Contrast.Words { // a contrast word first, if both
				sw.contrast[words[w]] = scopeAfter
			}
		}
	}
	return c
}

// Version is the rules version every tagged output carries.
func (c *Classifier) Version() string { return c.rules.Version }

// ContextTags are the tags of one citing sentence.
type ContextTags struct {
	Role     string
	Polarity string
	// RoleConfidence and PolarityConfidence are the chances that Role and
	// Polarity are right (LabelSet.LabelConfidence of their probabilities).
	RoleConfidence     float64
	PolarityConfidence float64
	Evidence           []record.Evidence // role and polarity cues, told apart by Label
	RoleScores         map[string]float64
	PolarityScores     map[string]float64
}

// Context tags one citing sentence. section may be empty; span, when it
// has two elements, is the [start, end) rune span of the cited marker.
func (c *Classifier) Context(text, section string, span []int) ContextTags {
	sc := c.scratch.Get().(*scratch)
	defer c.scratch.Put(sc)
	defer sc.forget()
	return c.context(text, section, span, true, sc)
}

// context is Context in sc; without withScores the tags come without
// their scores (Tag has no use for them: two maps a sentence).
func (c *Classifier) context(text, section string, span []int, withScores bool, sc *scratch) ContextTags {
	s := c.prepare(text, span, sc)
	t := c.contextOf(&s, section, withScores, false, sc)
	t.Evidence = evidence(sc.ev)
	return t
}

// contextOf is context of a sentence prepared already, its evidence left
// in sc.ev (until sc's next use) rather than copied into the tags.
//
// capped tells that the confidences are to be capped at the rules'
// SummaryRoleConfidence (a summary's guess, Tag): one the cap would
// lower may come as the cap, not worked out.
func (c *Classifier) contextOf(s *sentence, section string, withScores, capped bool, sc *scratch) ContextTags {
	sec := strings.ToLower(section)
	sc.ev = sc.ev[:0]
	var t ContextTags
	t.Role, t.RoleConfidence, t.RoleScores = c.tagSentence(c.rules.Role, s, sec, withScores, capped, sc)
	t.Polarity, t.PolarityConfidence, t.PolarityScores = c.tagSentence(c.rules.Polarity, s, sec, withScores, capped, sc)
	return t
}

// tagSentence is a label set's tag of a sentence, its confidence and,
// withScores, its scores; its evidence goes to sc.ev.
func (c *Classifier) tagSentence(ls *LabelSet, s *sentence, section string, withScores, capped bool, sc *scratch) (string, float64, map[string]float64) {
	c.tally(ls, s, section, sc)
	var buf [16]float64
	scores := sc.talliedScores(len(ls.Labels), buf[:0])
	best := argmax(scores)
	label := labelAt(ls, best)
	// The cap, what any confidence from cappedFrom on is capped to, most
	// often settled by probabilityFloor, without an exp.
	capped = capped && !s.m.known && best >= 0
	conf := c.rules.SummaryRoleConfidence
	if !capped || probabilityFloor(ls, scores) < c.sets[ls].cappedFrom[best] {
		p := probabilityAt(ls, scores, best)
		if !capped || p < c.sets[ls].cappedFrom[best] {
			conf = ls.LabelConfidence(label, p, s.m.known)
		}
	}
	if !withScores {
		return label, conf, nil
	}
	return label, conf, sc.scores(c.sets[ls].labels)
}

// labelScores appends to dst[:0] the score of each of ls.Labels, in
// order, 0 for a label scores lacks: what argmax, softmaxParts and
// probabilityAt read (each of them looking each label up was a tenth of
// tagging a summary). A tally's are scratch.talliedScores.
func labelScores(ls *LabelSet, scores map[string]float64, dst []float64) []float64 {
	dst = dst[:0]
	for _, l := range ls.Labels {
		dst = append(dst, scores[l])
	}
	return dst
}

// Probabilities turns a label set's scores into probabilities:
// softmax(score / temperature) over the set's labels, the temperature
// fitted by scripts/tune.
func Probabilities(ls *LabelSet, scores map[string]float64) map[string]float64 {
	var buf, scored [16]float64
	_, _, z, terms := softmaxParts(ls, labelScores(ls, scores, scored[:0]), buf[:0])
	p := make(map[string]float64, len(ls.Labels))
	for i, l := range ls.Labels {
		p[l] = round(terms[i] / z)
	}
	return p
}

// probabilityAt is Probabilities(ls, scores)[ls.Labels[i]], without the
// map (it is on the path of every sentence); scores are labelScores'. A
// label not in the set (i < 0: labelAt(argmax) is "" when every score is
// -1 or less) scores 0: no label set has a label "" (knownLabels).
func probabilityAt(ls *LabelSet, scores []float64, i int) float64 {
	var buf [16]float64
	_, mx, z, terms := softmaxParts(ls, scores, buf[:0])
	if i >= 0 {
		return round(terms[i] / z)
	}
	return round(math.Exp(-mx) / z)
}

// probabilityFloor is at most probabilityAt(ls, scores, argmax(scores))
// (argmax not -1), worked out without an exp: a summary's capped guess
// (tagSentence) only asks whether that reaches a threshold, and most
// are far above it. The best label's term is 1 (its scaled score is the
// highest), each other's, exp(-x), at most 1/(1 + x + x²/2) (e^x is at
// least the series' first three terms), made a little larger (1e-9, far
// beyond the rounding of exp and the division): their sum, in
// softmaxParts' order, is at least its z, so 1/sum, rounded, is at most
// the probability. 0 when a score is NaN.
func probabilityFloor(ls *LabelSet, scores []float64) float64 {
	t := ls.Temperature
	if t <= 0 {
		t = 1
	}
	mx := math.Inf(-1)
	scores = scores[:len(ls.Labels)]
	for _, score := range scores {
		mx = max(mx, score/t)
	}
	z := 0.0
	for _, score := range scores {
		if x := mx - score/t; x == 0 { // as softmaxParts' d == 0
			z++
		} else {
			z += (1 + 1e-9) / (1 + x + x*x/2)
		}
	}
	if !(z >= 1) { // NaN
		return 0
	}
	return round(1 / z)
}

// softmaxParts are the temperature, the highest scaled score and the
// softmax's denominator (scaled by exp(-max), so nothing overflows), and
// its terms, label by label in ls.Labels' order, appended to terms[:0]:
// label i's probability is terms[i] / z, the bits it would have if its
// term were worked out again. scores are labelScores'.
func softmaxParts(ls *LabelSet, scores []float64, terms []float64) (t, mx, z float64, _ []float64) {
	t = ls.Temperature
	if t <= 0 {
		t = 1
	}
	mx = math.Inf(-1)
	terms = slices.Grow(terms[:0], len(ls.Labels))[:len(ls.Labels)]
	for i, score := range scores[:len(terms)] {
		scaled := score / t
		terms[i] = scaled
		mx = max(mx, scaled)
	}
	for i, scaled := range terms {
		// The highest term is exp(0), 1: one call fewer a label set.
		if d := scaled - mx; d == 0 {
			terms[i] = 1
		} else {
			terms[i] = math.Exp(d)
		}
		z += terms[i]
	}
	return t, mx, z, terms
}

// CalibrationMap maps the probability the scores give a tag to the chance
// that the tag is right: sigmoid(Slope * logit(p) + Intercept), fitted by
// scripts/tune on rows the weights never saw (Platt scaling). The scores
// grow with every cue that fires, so a long abstract's softmax is surer
// than it should be and a short one's less sure: one temperature cannot
// mend both ends, the slope can. A rule file gives one map per task
// (calibration, intent_calibration) and may give one per label
// (calibration_by_label) and one for sentences whose cited marker is
// unknown (calibration_without_marker).
type CalibrationMap struct {
	Slope, Intercept float64
}

// Confidence is p calibrated. Slope 0 or the identity map (slope 1,
// intercept 0) leave p as it is.
func (c CalibrationMap) Confidence(p float64) float64 {
	if c.Slope == 0 || c.Slope == 1 && c.Intercept == 0 {
		return p
	}
	p = min(max(p, 1e-6), 1-1e-6)
	return round(1 / (1 + math.Exp(-(c.Slope*math.Log(p/(1-p)) + c.Intercept))))
}

// LabelConfidence is the confidence of a tag of label with probability p,
// markerKnown telling whether the cited marker's place was given (always
// true for a paper's pluralism): the file's map for sentences without a
// marker when the marker is unknown and the file has one
// (calibration_without_marker), else its map for that label when it has
// one (calibration_by_label), else its one map. The chance that a tag is
// right differs at the same probability: a bare neutral sentence is right
// more often than a supporting one full of praise words, and without a
// marker no cue weighs more for being near it, so the same probability
// comes from other scores.
func (ls *LabelSet) LabelConfidence(label string, p float64, markerKnown bool) float64 {
	return ls.calibration(label, markerKnown).Confidence(p)
}

// calibration is the map LabelConfidence reads.
func (ls *LabelSet) calibration(label string, markerKnown bool) CalibrationMap {
	if !markerKnown && ls.WithoutMarker != nil {
		return *ls.WithoutMarker
	}
	if m, ok := ls.ByLabel[label]; ok {
		return m
	}
	return ls.CalibrationMap
}

// reaches is a probability from which the confidence is at least most,
// or +Inf. Confidence rounds to thousandths, so it aims at the first
// thousandth at or above most (a cap of 0.3333 is only reached by 0.334:
// 0.333 is below it), and a little above the probability that gives that
// (1e-9: far beyond the rounding of log and exp), so that the confidence
// worked out from it on is never below most; and +Inf when the map does
// not rise with p, when most is no confidence's, or when Confidence
// would read the probability as 1-1e-6 below it.
func (c CalibrationMap) reaches(most float64) float64 {
	if c.Slope <= 0 || c.Slope == 1 && c.Intercept == 0 || most <= 0 || most >= 1 {
		return math.Inf(1)
	}
	grid := math.Ceil(most*1000-1e-9) / 1000 // 1e-9: 0.5 is 0.5, not 0.501
	if grid >= 1 {
		return math.Inf(1)
	}
	at := 1/(1+math.Exp(-(math.Log(grid/(1-grid))-c.Intercept)/c.Slope)) + 1e-9
	if at > 1-1e-6 {
		return math.Inf(1)
	}
	return at
}

// MarkerKnown tells whether span gives the cited marker's place, as the
// classifier reads it: two offsets, in order, not negative.
func MarkerKnown(span []int) bool {
	return len(span) == 2 && span[0] >= 0 && span[1] >= span[0]
}

// Intent is the SciCite intent of a role's scores (background, method or
// result): the intent whose roles (IntentOf) are together the most
// probable, and its confidence (IntentCalibration of that probability).
// The most probable role alone may lose: background 0.4 against uses 0.3
// and extends 0.3 is a method.
func Intent(ls *LabelSet, scores map[string]float64) (string, float64) {
	var buf, scored [16]float64
	_, _, z, terms := softmaxParts(ls, labelScores(ls, scores, scored[:0]), buf[:0])
	sum := map[string]float64{}
	for i, l := range ls.Labels {
		sum[IntentOf(l)] += terms[i] / z
	}
	best := ""
	for _, in := range TaskLabels(TaskIntent) { // a tie goes to background, then method
		if best == "" || sum[in] > sum[best]+1e-9 {
			best = in
		}
	}
	return best, ls.IntentCalibration.Confidence(round(sum[best]))
}

// Pluralism tags a paper from its title and abstract (its summary when it
// has no abstract) and, when given, the sentences in which it cites the
// hub's work. Cues in a sentence where the paper says what it does ("we
// propose", "our benchmark", the title) weigh more than cues it merely
// mentions; cues in the citing sentences weigh with their own factor and
// are told apart in the evidence (pluralism/cue-in-citing-sentence).
// The primary category is the most probable one, none included; another
// category applies too when its probability reaches the file's secondary.
func (c *Classifier) Pluralism(title, summary, abstract string, citing ...string) record.Pluralism {
	sc := c.scratch.Get().(*scratch)
	defer c.scratch.Put(sc)
	defer sc.forget()
	return c.pluralism(title, summary, abstract, citing, sc)
}

// pluralism is Pluralism in sc.
func (c *Classifier) pluralism(title, summary, abstract string, citing []string, sc *scratch) record.Pluralism {
	p := c.pluralismWithout(title, summary, abstract, citing, nil, sc)
	p.Evidence = append([]record.Evidence{}, sc.ev...) // [], not null, when there is none
	return p
}

// pluralismWithout is pluralism without its evidence, left in sc.ev; its
// Labels are appended to labels (pluralismOf).
func (c *Classifier) pluralismWithout(title, summary, abstract string, citing, labels []string, sc *scratch) record.Pluralism {
	body := abstract
	if body == "" {
		body = summary
	}
	lower, _ := sc.lowered(title, " . ", body)
	s := c.prepareLower(lower, nil, sc)
	return c.pluralismOf(&s, len(title), citing, labels, sc)
}

// pluralismOf is pluralismWithout of the paper's text prepared already
// (title and " . " first, titleLen bytes of title): its evidence is left
// in sc.ev, and s.m.own is set to where the paper says what it does. Its
// Labels are appended to labels (nil, or space of the caller's).
func (c *Classifier) pluralismOf(s *sentence, titleLen int, citing, labels []string, sc *scratch) record.Pluralism {
	ls := c.rules.Pluralism
	s.m.own = c.paperOwnWork(s, titleLen, sc)
	sc.ev = sc.ev[:0]
	// The paper's scores, rounded, in a list rather than a map until they
	// are told (a look-up in the map was a tenth of tagging a paper).
	c.tally(ls, s, "", sc)
	scores := slices.Grow(sc.paper[:0], len(sc.tally))[:len(sc.tally)] // by label number, as the tally
	for i, t := range sc.tally {
		scores[i] = tallySum{round(t.score), t.has}
	}
	if len(citing) > 0 && ls.CitingFactor > 0 {
		n := len(sc.tally)
		if sc.citingN != len(citing) || len(sc.citingSums) != len(citing)*n { // not stashed by tag: s is done with, its space free
			sc.citingN, sc.citingSums, sc.citingEv = 0, sc.citingSums[:0], sc.citingEv[:0]
			for _, text := range citing {
				cs := c.prepare(text, nil, sc)
				c.stashCiting(&cs, sc)
			}
		}
		for k := range citing {
			for i, t := range sc.citingSums[k*n : (k+1)*n] {
				if t.has { // a label without a score has 0
					scores[i] = tallySum{round(scores[i].score + round(t.score)*ls.CitingFactor), true}
				}
			}
		}
		sc.ev = append(sc.ev, sc.citingEv...)
		sc.citingN, sc.citingSums, sc.citingEv = 0, sc.citingSums[:0], sc.citingEv[:0]
		sc.sortEvidence(sc.ev)
	}
	// Probabilities(ls, scores)[l], without the map: a label not in the
	// set (labelAt(argmax) is "" when every score is -1 or less) has none.
	sc.paper = scores
	var buf, scored [16]float64
	byLabel := scored[:0]
	for _, s := range scores[:len(ls.Labels)] { // ls.Labels first
		byLabel = append(byLabel, s.score)
	}
	_, _, z, terms := softmaxParts(ls, byLabel, buf[:0])
	n := 0
	for _, s := range scores {
		if s.has {
			n++
		}
	}
	told := make(map[string]float64, n)
	names := c.sets[ls].labels
	for i, s := range scores {
		if s.has {
			told[names[i]] = s.score
		}
	}
	best := argmax(byLabel)
	p := record.Pluralism{Scores: told, Primary: labelAt(ls, best)}
	prob := 0.0 // a label not in the set has none
	if best >= 0 {
		prob = round(terms[best] / z)
	}
	p.Confidence = ls.LabelConfidence(p.Primary, prob, true)
	p.Labels = append(labels, p.Primary)
	if p.Primary != record.PluralismNone && ls.Secondary > 0 {
		for i, l := range ls.Labels {
			if i != best && l != record.PluralismNone && round(terms[i]/z) >= ls.Secondary {
				p.Labels = append(p.Labels, l)
			}
		}
	}
	return p
}

// stashCiting tallies the pluralism cues of a sentence that cites the
// hub's work (prepared, without its marker) and keeps, for pluralismOf,
// its sums (added to the paper's there, without the priors: the paper's
// count once) and its evidence, weighed as a citing sentence's. Tag does
// it while a context is prepared for its own tags: it was lowered and
// split again for the pluralism.
func (c *Classifier) stashCiting(cs *sentence, sc *scratch) {
	ls := c.rules.Pluralism
	from := len(sc.ev)
	c.tallyCues(ls, cs, "", false, sc)
	sc.citingN++
	sc.citingSums = append(sc.citingSums, sc.tally...)
	for i := range sc.ev[from:] {
		e := &sc.ev[from+i]
		e.Weight = round(e.Weight * ls.CitingFactor)
		e.Rule = ls.rule(ruleCitingSentence, false)
	}
	sc.citingEv = append(sc.citingEv, sc.ev[from:]...)
	sc.ev = sc.ev[:from]
}

// paperOwnWork finds the spans of lower (title first, titleLen bytes) where the
// paper says what it does itself: the title, and each sentence that
// matches one of the pluralism rules' own_work patterns.
func (c *Classifier) paperOwnWork(s *sentence, titleLen int, sc *scratch) [][2]int {
	if len(c.ownWork) == 0 {
		return nil
	}
	lower := s.lower
	own := append(sc.own[:0], [2]int{0, titleLen})
	for len(sc.ownAt) < len(c.ownWork) {
		sc.ownAt = append(sc.ownAt, nil)
	}
	for i, p := range c.ownWork {
		sc.ownAt[i] = p.candidates(lower, s.words, sc.ownAt[i][:0])
	}
	start := titleLen
	for start < len(lower) {
		end := strings.Index(lower[start:], ". ")
		if end < 0 {
			end = len(lower)
		} else {
			end += start + 1
		}
		for i, p := range c.ownWork {
			if p.matchesWithin(lower, start, end, sc.ownAt[i]) {
				own = append(own, [2]int{start, end})
				break
			}
		}
		start = end
	}
	sc.own = own // its space is the next call's
	return own
}

// Tag fills every tag of a record: each context's role and polarity, the
// record's role and polarity (from its contexts, or else from its summary),
// and its pluralism category, each with its confidence. A record the hub
// no longer lists (gone) is left as it is: it is counted as gone, not
// tagged again.
func (c *Classifier) Tag(r *record.Record) {
	if r.Gone {
		return
	}
	// One scratch for the whole record.
	sc := c.scratch.Get().(*scratch)
	defer c.scratch.Put(sc)
	defer sc.forget() // tag does too, but not when it panics: nothing of r may reach the next record
	c.tag(r, sc)
}

// tag is Tag in sc, which it leaves forgotten (scratch.forget).
func (c *Classifier) tag(r *record.Record, sc *scratch) {
	r.RulesVersion = c.rules.Version
	// The contexts' tags come without their scores, which a record does
	// not keep.
	citing := sc.citing[:0]
	var paper sentence // the text pluralism reads, when prepared already
	shared := false
	if len(r.Contexts) > 0 {
		roles := map[string]int{}
		roleConf := map[string]float64{}
		pols := map[string]int{}
		polConf := map[string]float64{}
		stash := c.rules.Pluralism.CitingFactor > 0
		for i := range r.Contexts {
			cx := &r.Contexts[i]
			s := c.prepare(cx.Text, cx.CiteSpan, sc)
			t := c.contextOf(&s, cx.Section, false, false, sc)
			t.Evidence = evidence(sc.ev)
			if stash { // the paper's pluralism reads it too, without its marker
				s.m = marker{}
				c.stashCiting(&s, sc)
			}
			cx.Role, cx.Polarity, cx.Evidence = t.Role, t.Polarity, t.Evidence
			cx.RoleConfidence, cx.PolarityConfidence = t.RoleConfidence, t.PolarityConfidence
			roles[t.Role]++
			roleConf[t.Role] += t.RoleConfidence
			pols[t.Polarity]++
			polConf[t.Polarity] = max(polConf[t.Polarity], t.PolarityConfidence)
			citing = append(citing, cx.Text)
		}
		r.Role, r.RoleSource, r.RoleEvidence = c.majorityRole(roles), record.RoleSourceContext, nil
		r.RoleConfidence = round(roleConf[r.Role] / float64(roles[r.Role]))
		r.Polarity = paperPolarity(pols)
		r.PolarityConfidence = polConf[r.Polarity]
	} else {
		// No citing sentence: judge from what the paper says of itself, a
		// guess about what it does with the cited work, so its confidence
		// is capped and the evidence says so.
		var s sentence
		if text := r.Paper.Summary; text != "" && r.Paper.Abstract == "" {
			// The summary ends the text pluralism reads (title . summary):
			// that text is lowered and split into words once, for both.
			lower, at := sc.lowered(r.Paper.Title, " . ", text)
			paper, shared = c.prepareLower(lower, nil, sc), true
			s = sc.suffix(&paper, at)
			sc.literalsSplit(c.rules.Pluralism.lits, lower, at)
		} else {
			if text == "" {
				text = r.Paper.Title
			}
			s = c.prepare(text, nil, sc)
		}
		t := c.contextOf(&s, "", false, true, sc)
		r.Role, r.RoleSource = t.Role, record.RoleSourceSummary
		r.RoleConfidence = min(t.RoleConfidence, c.rules.SummaryRoleConfidence)
		// The guess, then the summary's evidence (sc.ev, in one slice).
		// It is kept in sc.roleEv until the pluralism's evidence is known,
		// and both are copied into one array.
		sc.roleEv = append(append(sc.roleEv[:0], record.Evidence{Label: t.Role, Rule: "roles/summary-only-guess",
			Cue: "no citing sentence known: guessed from the paper's own summary", Weight: 0}), sc.ev...)
		r.Polarity = t.Polarity
		r.PolarityConfidence = min(t.PolarityConfidence, c.rules.SummaryRoleConfidence)
	}
	// The pluralism and its first labels in one allocation.
	box := new(struct {
		p      record.Pluralism
		labels [2]string
	})
	p := &box.p
	if shared {
		*p = c.pluralismOf(&paper, len(r.Paper.Title), citing, box.labels[:0], sc)
	} else {
		*p = c.pluralismWithout(r.Paper.Title, r.Paper.Summary, r.Paper.Abstract, citing, box.labels[:0], sc)
	}
	// Without the box's spare slot: two appends to the record's labels
	// would write the same place.
	p.Labels = slices.Clip(p.Labels)
	// The role's evidence (when it came from the summary) and the
	// pluralism's, in one array.
	ev := append(append(make([]record.Evidence, 0, len(sc.roleEv)+len(sc.ev)), sc.roleEv...), sc.ev...)
	if len(sc.roleEv) > 0 {
		r.RoleEvidence = ev[:len(sc.roleEv):len(sc.roleEv)]
	}
	p.Evidence = ev[len(sc.roleEv):]
	r.Pluralism = p
	clear(citing) // the pooled scratch must not keep the record's text alive
	sc.citing = citing[:0]
	sc.forget()
}

// majorityRole is the most frequent role, over the rule file's roles; a
// tie goes to the role listed first in the file that is not background,
// since a specific use says more than a mention.
func (c *Classifier) majorityRole(counts map[string]int) string {
	best, bestN := record.RoleBackground, counts[record.RoleBackground]
	for _, r := range c.rules.Role.Labels {
		if counts[r] > bestN {
			best, bestN = r, counts[r]
		}
	}
	return best
}

// paperPolarity: a paper that contrasts the work anywhere is contrasting;
// otherwise one that supports it anywhere is supporting.
func paperPolarity(counts map[string]int) string {
	switch {
	case counts[record.PolarityContrasting] > 0:
		return record.PolarityContrasting
	case counts[record.PolaritySupporting] > 0:
		return record.PolaritySupporting
	default:
		return record.PolarityNeutral
	}
}

// sentence is a lower-cased text ready for cues: its words, and where the
// cited work's marker is.
type sentence struct {
	lower string
	toks  []token
	ids   []int32 // each token's number in Classifier.words, -1 if it has none
	next  []int32 // each token's next token of the same number, or -1
	words *wordStarts
	m     marker
	// plainWords: the text has no ' nor -, so the words negatedHedged
	// reads (runs of letters, digits, ' and -) are its tokens.
	plainWords bool
}

// marker is where the cited work's marker is in the lowered sentence, in
// bytes; known is false when the caller gave no span.
type marker struct {
	known  bool
	at     [2]int   // the marker itself
	near   [2]int   // the window around it where cues weigh more
	others [][2]int // the markers of other citations in the sentence
	own    [][2]int // pluralism: where the paper says what it does itself
}

// prepare lower-cases text rune by rune (so rune offsets are kept), finds
// its words, and turns a rune span of the cited marker into byte spans of
// the lowered text: the marker, the window where cues weigh more, and the
// other citations' markers, so that cues about those can be told apart.
func (c *Classifier) prepare(text string, span []int, sc *scratch) sentence {
	lower, _ := sc.lowered(text)
	return c.prepareLower(lower, span, sc)
}

// prepareLower is prepare of a text already lowered as prepare lowers it.
func (c *Classifier) prepareLower(lower string, span []int, sc *scratch) sentence {
	var ascii bool
	sc.toks, sc.ids, ascii = c.wordTable.tokenize(lower, sc.toks[:0], sc.ids[:0])
	sc.next = sc.nextOf(sc.ids, sc.next, len(c.wordTable.words))
	if ascii && strings.IndexByte(lower, '_') < 0 {
		sc.words.indexTokens(lower, sc.toks)
	} else {
		sc.words.index(lower)
	}
	s := sentence{lower: lower, toks: sc.toks, ids: sc.ids, next: sc.next, words: &sc.words,
		plainWords: strings.IndexByte(lower, '\'') < 0 && strings.IndexByte(lower, '-') < 0}
	if !MarkerKnown(span) {
		return s
	}
	toByte := func(runes int) int { // the byte where rune number runes begins
		if ascii {
			return min(runes, len(lower))
		}
		return runeToByte(lower, runes)
	}
	lo, hi := max(span[0]-c.rules.Window, 0), span[1]+c.rules.Window
	s.m = marker{
		known: true,
		near:  [2]int{toByte(lo), toByte(hi)},
		at:    [2]int{toByte(span[0]), toByte(span[1])},
	}
	sc.others = sc.others[:0]
	for _, p := range c.markers {
		sc.spans, sc.at = p.findAllIn(lower, &sc.words, sc.spans[:0], sc.at)
		for _, o := range sc.spans {
			// Not the cited marker, nor a piece of the same citation right
			// next to it ("#AUTHOR_TAG, 2003", "Smith (2001)").
			if gap(o, s.m.at) > adjacent {
				sc.others = append(sc.others, o)
			}
		}
	}
	s.m.others = sc.others
	return s
}

// nextOf sets next[t] to the next token after t with the word number
// ids[t] (-1 for none or for a word without a number): a phrase found by
// its first word is looked for at those words only (findCue). words is
// how many word numbers there are.
func (sc *scratch) nextOf(ids, next []int32, words int) []int32 {
	for len(sc.lastTok) < words {
		sc.lastTok = append(sc.lastTok, -1)
	}
	next = slices.Grow(next[:0], len(ids))[:len(ids)]
	last := sc.lastTok
	for t := len(ids) - 1; t >= 0; t-- {
		next[t] = -1
		if id := ids[t]; id >= 0 {
			next[t], last[id] = last[id], int32(t)
		}
	}
	for _, id := range ids {
		if id >= 0 {
			last[id] = -1
		}
	}
	return next
}

// suffix is the sentence of s.lower[at:], a text of its own, made from s
// (which it leaves as it is) rather than prepared again: s.lower[at-1] is
// neither a letter, a digit nor a word byte, so its words and word starts
// are those of s from at on. It has no marker.
func (sc *scratch) suffix(s *sentence, at int) sentence {
	first := tokenFrom(s.toks, at) // the suffix's first token in s
	n := len(s.toks) - first
	toks, next := slices.Grow(sc.suffixToks[:0], n)[:n], slices.Grow(sc.suffixNext[:0], n)[:n]
	for i, t := range s.toks[first:][:n] {
		toks[i] = token{t.start - at, t.end - at}
	}
	for i, nt := range s.next[first:][:n] {
		next[i] = max(nt-int32(first), -1) // -1 stays -1
	}
	sc.suffixToks, sc.suffixNext = toks, next
	sc.suffixIDs = append(sc.suffixIDs[:0], s.ids[first:]...)
	sc.suffixWords.suffixOf(s.words, at)
	return sentence{lower: s.lower[at:], toks: sc.suffixToks, ids: sc.suffixIDs, next: sc.suffixNext, words: &sc.suffixWords,
		plainWords: s.plainWords}
}

// aboutOther tells whether the cue at pos is closer to another citation's
// marker than to the cited one: "[1] fails, while [2] is robust" says
// nothing bad of [2].
func (m *marker) aboutOther(pos [2]int) bool {
	if !m.known {
		return false
	}
	own := gap(pos, m.at)
	for _, o := range m.others {
		if gap(pos, o) < own {
			return true
		}
	}
	return false
}

// inOwnWork tells whether the cue at pos is where the paper says what it does.
func (m *marker) inOwnWork(pos [2]int) bool {
	for _, o := range m.own {
		if pos[0] >= o[0] && pos[1] <= o[1] {
			return true
		}
	}
	return false
}

// adjacent is how many bytes (", ", " (") may separate two markers that
// are parts of one citation.
const adjacent = 2

// gap is the number of bytes between two spans (0 when they touch or overlap).
func gap(a, b [2]int) int {
	return max(b[0]-a[1], a[0]-b[1], 0)
}

// lowered is strings.Map(unicode.ToLower, strings.Join(parts, "")) in one
// pass, ASCII without unicode's tables (most of the text), and where the
// last part, lowered, begins in it. The text is laid in sc.lower after
// the others lowered during the call, not in a string of its own (a
// record's title and summary were a sixth of the bytes tagging it
// allocated); it lasts until forget.
func (sc *scratch) lowered(parts ...string) (string, int) {
	n := 0
	for _, part := range parts {
		n += len(part)
	}
	if cap(sc.lower)-len(sc.lower) < n {
		// A new array: the texts lowered before keep the old one.
		sc.lower = make([]byte, 0, max(2*cap(sc.lower), n, 1024))
	}
	b := sc.lower
	from := len(b)
	last := from
	for _, part := range parts {
		last = len(b)
		// Most parts are ASCII: copied, then lowered in place eight bytes
		// at a time (a byte at a time was 4 % of tagging a summary).
		b = append(b, part...)
		if lowerASCII(b[last:]) {
			continue
		}
		b = b[:last] // not ASCII: rune by rune, a rune's lower case may be longer
		for i := 0; i < len(part); {
			if c := part[i]; c < utf8.RuneSelf {
				b = append(b, asciiLower[c])
				i++
				continue
			}
			// An invalid byte is utf8.RuneError, written as strings.Map writes it.
			r, w := utf8.DecodeRuneInString(part[i:])
			b = utf8.AppendRune(b, unicode.ToLower(r))
			i += w
		}
	}
	// When a lower case longer than its rune outgrew the array, append
	// moved it all to a new one: the texts before keep the old.
	sc.lower = b
	if len(b) == from {
		return "", 0
	}
	return unsafe.String(&b[from], len(b)-from), last - from // b[from:] is not written again until forget
}

// lowerASCII lowers p in place if it is all ASCII, and tells whether it
// is (else p is left partly lowered).
func lowerASCII(p []byte) bool {
	const ones, high = 0x0101010101010101, 0x8080808080808080
	for len(p) >= 8 {
		x := binary.LittleEndian.Uint64(p)
		if x&high != 0 {
			return false
		}
		// A byte's high bit is set by adding 0x80-'A' when it is 'A' or
		// above, by adding 0x80-'Z'-1 when it is above 'Z' (no carry
		// reaches the next byte: each is below 0x80); an upper case
		// letter gets 0x20.
		upper := (x + ones*(0x80-'A')) &^ (x + ones*(0x80-'Z'-1)) & high
		binary.LittleEndian.PutUint64(p, x|upper>>2)
		p = p[8:]
	}
	for i, c := range p {
		if c >= utf8.RuneSelf {
			return false
		}
		p[i] = asciiLower[c]
	}
	return true
}

// asciiLower is unicode.ToLower of each ASCII byte.
var asciiLower = func() (lower [256]byte) { // 256: no bounds check
	for b := range byte(utf8.RuneSelf) {
		lower[b] = byte(unicode.ToLower(rune(b)))
	}
	return lower
}()

func runeToByte(s string, runeIdx int) int {
	n := 0
	for i := range s {
		if n == runeIdx {
			return i
		}
		n++
	}
	return len(s)
}

// scores are the tally's, rounded; labels are its label set's (setWords.labels).
func (sc *scratch) scores(labels []string) map[string]float64 {
	scores := make(map[string]float64, len(sc.tally))
	for i, t := range sc.tally {
		if t.has {
			scores[labels[i]] = round(t.score)
		}
	}
	return scores
}

// talliedScores appends to dst[:0] the tally's scores, as scores has
// them, of the first n labels (the label set's Labels, in order; 0 for
// a label without), as labelScores does of a map.
func (sc *scratch) talliedScores(n int, dst []float64) []float64 {
	dst = dst[:0]
	for _, t := range sc.tally[:n] {
		dst = append(dst, round(t.score)) // round(0) is 0
	}
	return dst
}

// tally adds up a label set's priors, section priors and cues, leaving
// the labels' sums, not yet rounded, in sc.tally, and appends the
// evidence, highest weight first, to sc.ev.
func (c *Classifier) tally(ls *LabelSet, s *sentence, section string, sc *scratch) {
	c.tallyCues(ls, s, section, true, sc)
}

// tallyCues is tally, with ls's priors or without. ls is one of the
// rules' label sets (its words are numbered in c.sets).
func (c *Classifier) tallyCues(ls *LabelSet, s *sentence, section string, priors bool, sc *scratch) {
	sw := c.sets[ls]
	sc.tally = slices.Grow(sc.tally[:0], len(sw.labels))[:len(sw.labels)]
	clear(sc.tally)
	if priors {
		for _, p := range sw.priors { // in a fixed order: float sums must not vary
			sc.add(p.label, p.score)
		}
	}
	evFrom := len(sc.ev)
	if section != "" {
		for k, sp := range ls.Sections {
			if strings.Contains(section, sp.Key) {
				for i, l := range sp.Labels {
					sc.add(sw.sections[k][i], sp.Weights[i])
					sc.ev = append(sc.ev, record.Evidence{Label: l, Rule: ls.rule(ruleSection, false), Cue: sp.Key, Weight: sp.Weights[i]})
				}
			}
		}
	}
	cues := sc.candidates(ls, s, sw)
	sc.scope = sc.scope[:0]
	if ls.Contrast != nil && slices.ContainsFunc(cues, func(set uint64) bool { return set != 0 }) {
		sc.scope = contrastSpans(s, sw.contrast, sc.scope)
	}
	for w, set := range cues {
		for ; set != 0; set &= set - 1 {
			i := w<<6 | bits.TrailingZeros64(set)
			cue := &ls.Cues[i]
			sc.spans = c.findCue(cue, s, sc.cueTok[i], sc)
			for _, pos := range sc.spans {
				c.weigh(ls, cue, sw.cueLabel[i], pos, s, sc)
			}
		}
	}
	sc.sortEvidence(sc.ev[evFrom:])
}

// candidates sets in sc.cues a bit per cue of ls that may occur in s,
// so that they are looked for in file order (evidence and float sums
// must not vary): those whose first word (a pattern's lead word) is one
// of its words, a phrase of more words only where the text has its
// probe byte after the word (setWords.probe), and those that may begin
// anywhere; patterns only when the literal parts they need are in s;
// never a cue that weighs 0. For
// each, sc.cueTok keeps the first word where it may begin (a phrase may
// begin at its later ones too, by sentence.next), or -1: anywhere.
// sw is c.sets[ls].
func (sc *scratch) candidates(ls *LabelSet, s *sentence, sw *setWords) []uint64 {
	// cueTok is shared by the three rule files and not reset: a cue that
	// may begin anywhere (ls.rest: a pattern, or a phrase not beginning
	// with a letter or digit) may find another file's number there, and
	// findCue does not read it for those.
	for len(sc.cueTok) < len(ls.Cues) {
		sc.cueTok = append(sc.cueTok, -1)
	}
	ok := sc.possible(sw, sc.literalsIn(ls.lits, s.lower))
	cues := slices.Grow(sc.cues[:0], len(ok))[:len(ok)]
	rest := sw.rest[:len(ok)] // (slices of one length: no bounds checked in the loop)
	for k, set := range ok {
		cues[k] = set & rest[k]
	}
	for t, id := range s.ids {
		if id < 0 {
			continue
		}
		for _, f := range sw.first[id] {
			if i, bit := f.cue, uint64(1)<<(f.cue&63); ok[i>>6]&^cues[i>>6]&bit != 0 {
				if pr := f.probe; pr.at != 0 {
					if at := s.toks[t].start + int(pr.at); at >= len(s.lower) || s.lower[at] != pr.want {
						continue // not here; perhaps at a later token of the word
					}
				}
				cues[i>>6] |= bit
				sc.cueTok[i] = int32(t)
			}
		}
	}
	sc.cues = cues
	return cues
}

// possible returns (in sc.ok) a bit per cue of sw that weighs and whose
// literal parts, if it needs any, are in the text (present is the label
// set's lits.find of it): most patterns' are not, and this is far
// cheaper than looking for the pattern. (Whether a cue's first word or
// a pattern's lead word is in the text, the label set's index tells.)
func (sc *scratch) possible(sw *setWords, present []uint64) []uint64 {
	ok := append(sc.ok[:0], sw.free...)
	if len(sc.met) < len(sw.groups) {
		sc.met = make([]uint64, len(sw.groups))
	}
	met, groups := sc.met, sw.groups
	needed := sw.needed[:len(present)]
	for k, set := range present {
		for set &= needed[k]; set != 0; set &= set - 1 {
			for _, n := range sw.byLiteral[k<<6|bits.TrailingZeros64(set)] {
				if n.only { // most: no groups to count
					ok[n.cue>>6] |= 1 << (n.cue & 63)
					continue
				}
				m := &met[n.cue]
				if *m == 0 {
					sc.metCues = append(sc.metCues, n.cue)
				}
				*m |= n.bit
				if *m == groups[n.cue] {
					ok[n.cue>>6] |= 1 << (n.cue & 63)
				}
			}
		}
	}
	for _, i := range sc.metCues {
		met[i] = 0
	}
	sc.metCues, sc.ok = sc.metCues[:0], ok
	return ok
}

// weigh counts the cue found at pos: its label and weight as the place
// where it is found makes them (near the cited marker, in the paper's own
// work, about another citation, negated, hedged), and its evidence.
// labels are the numbers of its label and of its label flipped (setWords.cueLabel).
func (c *Classifier) weigh(ls *LabelSet, cue *Cue, labels [2]int32, pos [2]int, s *sentence, sc *scratch) {
	if cue.tag != "" && !strings.HasPrefix(c.tagger.tagAt(s.lower, pos[0], pos[1]), cue.tag) {
		return
	}
	if !onSide(cue.side, pos, &s.m) {
		return
	}
	w := cue.Weight
	kind := ruleCue
	label, at := cue.Label, labels[0]
	if s.m.known && pos[0] < s.m.near[1] && pos[1] > s.m.near[0] {
		w *= c.rules.NearBoost
		kind = ruleNear
	}
	if s.m.inOwnWork(pos) {
		w *= ls.OwnWorkBoost
		kind = ruleOwnWork
	}
	if s.m.aboutOther(pos) {
		w *= c.rules.OtherCitationFactor
		kind = ruleOtherCited
	}
	switch scopeAt(sc.scope, pos) {
	case scopeConceded:
		w *= ls.Contrast.Conceded
		kind = ruleConceded
	case scopeAfter:
		w *= ls.Contrast.After
		kind = ruleAfterContrast
	}
	negated, hedged := sc.negatedHedged(c, s, pos[0])
	if negated {
		if ls.Negated == "drop" {
			return
		}
		label, at = Flip(label), labels[1]
		kind = ruleNegated
	}
	if hedged {
		w *= c.rules.HedgeFactor
	}
	sc.add(at, w)
	sc.ev = append(sc.ev, record.Evidence{Label: label, Rule: ls.rule(kind, hedged), Cue: cue.Text, Weight: round(w)})
}

// negatedHedged tells whether a negator is among the rules' negation
// scope of words before pos in text, and whether a hedge is among their
// hedge scope (a word ending in n't counting as the negator or hedge
// n't). It reads the words backwards from pos (as appendWordsBefore
// finds them), a look-up each. It remembers its answers for the last
// text it was asked about: most places where a cue is found are weighed
// for other cues too.
func (sc *scratch) negatedHedged(c *Classifier, s *sentence, pos int) (negated, hedged bool) {
	text := s.lower
	if text != sc.scopeText { // the same string at once, most often
		sc.scopeText, sc.scopeAt = text, sc.scopeAt[:0]
	}
	for _, at := range sc.scopeAt {
		if at.pos == pos {
			return at.negated, at.hedged
		}
	}
	if s.plainWords {
		negated, hedged = c.scopeOfTokens(s, pos)
		sc.scopeAt = append(sc.scopeAt, scopeOfPlace{pos, negated, hedged})
		return negated, hedged
	}
	rules := c.rules
	end := pos
	for k := range max(rules.NegationScope, rules.HedgeScope) { // k: the kth word before pos
		for end > 0 { // skip separators, ASCII without a call
			if b := text[end-1]; b < utf8.RuneSelf {
				if asciiWordRune[b] {
					break
				}
			} else if wordRuneEnds(text[:end]) {
				break
			}
			end--
		}
		start := end
		for start > 0 {
			if b := text[start-1]; b < utf8.RuneSelf {
				if !asciiWordRune[b] {
					break
				}
				start--
				continue
			}
			r, size := utf8.DecodeLastRuneInString(text[:start])
			if !isWordRune(r) {
				break
			}
			start -= size
		}
		if start == end {
			break
		}
		w := text[start:end]
		is := c.scopeWord(w)
		if strings.HasSuffix(w, "n't") {
			is |= c.ntScope
		}
		negated = negated || k < rules.NegationScope && is&isNegator != 0
		hedged = hedged || k < rules.HedgeScope && is&isHedge != 0
		end = start
	}
	sc.scopeAt = append(sc.scopeAt, scopeOfPlace{pos, negated, hedged})
	return negated, hedged
}

// tokenFrom is the index of the first of toks (in text order) that begins
// at pos or after, len(toks) when none does. By hand: slices.BinarySearchFunc
// and its comparison closure cost 0.8 % more instructions in BenchmarkTag.
func tokenFrom(toks []token, pos int) int {
	t := len(toks)
	for lo := 0; lo < t; {
		if mid := int(uint(lo+t) >> 1); toks[mid].start < pos {
			lo = mid + 1
		} else {
			t = mid
		}
	}
	return t
}

// scopeOfTokens is negatedHedged of a sentence whose words are its
// tokens (sentence.plainWords), read from them rather than byte by byte:
// the kth word before pos is the kth token that begins before it, cut
// at pos (a place in a word reads the part before it as a word).
func (c *Classifier) scopeOfTokens(s *sentence, pos int) (negated, hedged bool) {
	rules := c.rules
	t := tokenFrom(s.toks, pos)
	for k := range max(rules.NegationScope, rules.HedgeScope) {
		if t == 0 {
			break
		}
		t--
		// No word ends in n't: the text has no '. A whole token is a
		// negator or hedge by its number (every one has a number).
		var is uint8
		if tok := s.toks[t]; tok.end <= pos {
			if id := s.ids[t]; id >= 0 {
				is = c.scopeOf[id]
			}
		} else {
			is = c.scopeWord(s.lower[tok.start:pos])
		}
		negated = negated || k < rules.NegationScope && is&isNegator != 0
		hedged = hedged || k < rules.HedgeScope && is&isHedge != 0
	}
	return negated, hedged
}

// scopeWord says whether a word (not empty) is a negator or a hedge
// (scopeWords), looking it up only when a word of its length begins
// with its first byte.
func (c *Classifier) scopeWord(w string) uint8 {
	if len(w) >= len(c.scopeFirst) || c.scopeFirst[len(w)][w[0]] {
		return c.scopeWords[w]
	}
	return 0
}

// scopeOfPlace is negatedHedged's answer for a place.
type scopeOfPlace struct {
	pos             int
	negated, hedged bool
}

// scopeSpan is a stretch of a sentence, in bytes, after a contrast word
// or in a concession (conceded).
type scopeSpan struct {
	start, end int
	conceded   bool
}

// Where a cue is against the sentence's contrast words (scopeAt).
const (
	scopeNone = iota
	scopeAfter
	scopeConceded
)

// contrastSpans appends the sentence's stretches after a contrast word (to its
// end) and in a concession (from the concession word to the next comma,
// semicolon or colon outside brackets, "(Koehn et al., 2003)" being part
// of the clause), the rest of the sentence after a concession counting
// as after a contrast word. kinds are setWords.contrast, what each
// word (by its number) is to the label set's Contrast.
func contrastSpans(s *sentence, kinds []uint8, dst []scopeSpan) []scopeSpan {
	for i, t := range s.toks {
		id := s.ids[i]
		if id < 0 {
			continue
		}
		switch kinds[id] {
		case scopeAfter:
			dst = append(dst, scopeSpan{t.end, len(s.lower), false})
		case scopeConceded:
			end := clauseEnd(s.lower, t.end)
			dst = append(dst, scopeSpan{t.end, end, true})
			if end < len(s.lower) {
				dst = append(dst, scopeSpan{end, len(s.lower), false})
			}
		}
	}
	return dst
}

// clauseEnd is the byte offset of the first comma, semicolon or colon at
// or after from that is not inside brackets, or len(s). A bracket never
// closed (a sentence cut mid-citation) would hide every comma after it:
// the first comma at any depth is taken then.
func clauseEnd(s string, from int) int {
	depth, first := 0, -1
	for i := from; i < len(s); i++ {
		switch s[i] {
		case '(', '[':
			depth++
		case ')', ']':
			depth = max(depth-1, 0)
		case ',', ';', ':':
			if depth == 0 {
				return i
			}
			if first < 0 {
				first = i
			}
		}
	}
	if depth > 0 && first >= 0 {
		return first
	}
	return len(s)
}

// scopeAt tells whether a cue at pos is in a concession, else after a
// contrast word, else neither.
func scopeAt(spans []scopeSpan, pos [2]int) int {
	at := scopeNone
	for _, sp := range spans {
		if pos[0] >= sp.start && pos[1] <= sp.end {
			if sp.conceded {
				return scopeConceded
			}
			at = scopeAfter
		}
	}
	return at
}

// add adds w to the score of label number i, the first w as it is.
func (sc *scratch) add(i int32, w float64) {
	if t := &sc.tally[i]; t.has {
		t.score += w
	} else {
		*t = tallySum{w, true}
	}
}

// sortEvidence puts the highest weights first, keeping the order of
// equals. It sorts the weights with their places, not the evidence (a
// sentence's few dozen pieces moved over and over by an insertion sort
// were a tenth of BenchmarkContext), then puts each piece in its place.
func (sc *scratch) sortEvidence(ev []record.Evidence) {
	byWeight := func(a, b record.Evidence) int { return cmp.Compare(b.Weight, a.Weight) }
	if slices.IsSortedFunc(ev, byWeight) {
		return
	}
	sc.order = sc.order[:0]
	for i, e := range ev {
		sc.order = append(sc.order, placed{e.Weight, i})
	}
	sortPlaced(sc.order)
	sc.evCopy = append(sc.evCopy[:0], ev...)
	for i, o := range sc.order {
		ev[i] = sc.evCopy[o.at]
	}
}

// placed is a weight and where its evidence was (sortEvidence).
type placed struct {
	weight float64
	at     int
}

// sortPlaced sorts by weight, highest first, then by place: a sentence's
// few dozen by insertion, without calling a comparison for each pair
// (slices.SortFunc's was half of sortEvidence), more as slices sorts them.
func sortPlaced(order []placed) {
	if len(order) > 64 {
		slices.SortFunc(order, func(a, b placed) int {
			return cmp.Or(cmp.Compare(b.weight, a.weight), cmp.Compare(a.at, b.at))
		})
		return
	}
	for i := 1; i < len(order); i++ {
		// order[:i] is sorted, and every place in it before order[i]'s: it
		// goes after the heavier and the equal (cmp.Compare's order: NaN last).
		x, j := order[i], i
		for ; j > 0 && cmp.Less(order[j-1].weight, x.weight); j-- {
			order[j] = order[j-1]
		}
		order[j] = x
	}
}

// evidence copies the evidence out of the scratch space; nil when there is none.
func evidence(ev []record.Evidence) []record.Evidence {
	if len(ev) == 0 {
		return nil
	}
	return slices.Clone(ev)
}

// onSide tells whether a cue at pos is on the side of the cited marker
// (at) that the cue asks for: "our parser outperforms [3]" judges [3]
// otherwise than "[3] outperforms ours". A sided cue needs a known marker.
func onSide(side string, pos [2]int, m *marker) bool {
	switch side {
	case "":
		return true
	case sideBefore:
		return m.known && pos[1] <= m.at[0]
	default:
		return m.known && pos[0] >= m.at[1]
	}
}

func ruleName(ls *LabelSet, kind string) string {
	return strings.TrimSuffix(ls.Name, ".yaml") + "/" + kind
}

// Flip swaps supporting and contrasting; anything else becomes neutral.
// It is what a negated polarity cue counts for.
func Flip(label string) string {
	switch label {
	case record.PolaritySupporting:
		return record.PolarityContrasting
	case record.PolarityContrasting:
		return record.PolaritySupporting
	default:
		return record.PolarityNeutral
	}
}

// wordsBefore returns up to n words that end before byte offset pos.
func wordsBefore(s string, pos, n int) []string {
	return appendWordsBefore(nil, s, pos, n)
}

// appendWordsBefore appends to dst, in reading order, up to n words that
// end before byte offset pos.
func appendWordsBefore(dst []string, s string, pos, n int) []string {
	from := len(dst)
	end := pos
	for len(dst)-from < n && end > 0 {
		// skip separators
		for end > 0 {
			r, size := lastRune(s[:end])
			if isWordRune(r) {
				break
			}
			end -= size
		}
		start := end
		for start > 0 {
			r, size := lastRune(s[:start])
			if !isWordRune(r) {
				break
			}
			start -= size
		}
		if start == end {
			break
		}
		dst = append(dst, s[start:end])
		end = start
	}
	slices.Reverse(dst[from:]) // into reading order
	return dst
}

// lastRune is utf8.DecodeLastRuneInString, an ASCII byte read as it is
// (most of the text; this runs over the words before every cue found).
func lastRune(s string) (rune, int) {
	if b := s[len(s)-1]; b < utf8.RuneSelf {
		return rune(b), 1
	}
	return utf8.DecodeLastRuneInString(s)
}

func isWordRune(r rune) bool {
	return isAlnum(r) || r == '\'' || r == '-'
}

// asciiWordRune is isWordRune of each ASCII byte.
var asciiWordRune = func() (word [utf8.RuneSelf]bool) {
	for b := range rune(utf8.RuneSelf) {
		word[b] = isWordRune(b)
	}
	return word
}()

// wordRuneEnds tells whether s (not empty, valid UTF-8 up to its end)
// ends with a word rune. negatedHedged skips a separator beyond ASCII a
// byte at a time: a rune cut short decodes as utf8.RuneError, no word
// rune, so all its bytes are skipped, as the rune would be.
func wordRuneEnds(s string) bool {
	if b := s[len(s)-1]; b < utf8.RuneSelf {
		return asciiWordRune[b]
	}
	r, _ := utf8.DecodeLastRuneInString(s)
	return isWordRune(r)
}

// findCue returns the byte spans where cue occurs in s as whole words
// (into sc.spans). tok is the first word of s where it may begin, the
// others following by s.next (a phrase that begins with a letter or digit
// can begin nowhere but at words equal to its first word), or -1: anywhere.
func (c *Classifier) findCue(cue *Cue, s *sentence, tok int32, sc *scratch) [][2]int {
	out := sc.spans[:0]
	if cue.pat != nil { // its literal parts are in s (candidates)
		out, sc.at = cue.pat.findAllIn(s.lower, s.words, out, sc.at)
		return out
	}
	p := cue.phrase
	if cue.atWord && tok >= 0 {
		for ; tok >= 0; tok = s.next[tok] {
			// A word that is the whole phrase is a match: a token is
			// the first word of its cues, whole.
			start := s.toks[tok].start
			// Most phrases found by their first word differ from the
			// text at the next word's first byte: one byte compared
			// rather than the whole phrase (as HasPrefix would, any byte
			// of p that differs means no match).
			if k := len(cue.first) + 1; !cue.oneWord && k < len(p) && (start+k >= len(s.lower) || s.lower[start+k] != p[k]) {
				continue
			}
			if cue.oneWord || strings.HasPrefix(s.lower[start:], p) && endsWord(s.lower, start+len(p), cue.endsWord) {
				out = append(out, [2]int{start, start + len(p)})
			}
		}
		return out
	}
	for from := 0; ; {
		i := strings.Index(s.lower[from:], p)
		if i < 0 {
			return out
		}
		start, end := from+i, from+i+len(p)
		if boundary(s.lower, start, end, p) {
			out = append(out, [2]int{start, end})
		}
		from = start + 1
	}
}

// endsWord: a match ending at end is not part of a longer word (only
// checked when the phrase ends with a letter or digit, alnum).
func endsWord(s string, end int, alnum bool) bool {
	if !alnum || end >= len(s) {
		return true
	}
	r, _ := utf8.DecodeRuneInString(s[end:])
	return !isAlnum(r)
}

// boundary: the match is not part of a longer word at either end (only
// checked where the phrase itself starts or ends with a letter or digit).
func boundary(s string, start, end int, p string) bool {
	first, _ := utf8.DecodeRuneInString(p)
	last, _ := utf8.DecodeLastRuneInString(p)
	if isAlnum(first) && start > 0 {
		if r, _ := utf8.DecodeLastRuneInString(s[:start]); isAlnum(r) {
			return false
		}
	}
	return endsWord(s, end, isAlnum(last))
}

// argmax is the place in ls.Labels of the label with the highest score,
// scores being labelScores'; ties go to the label listed first in the
// rule file (background, neutral come first); -1 (no label: labelAt's
// "") when every score is -1 or less.
func argmax(scores []float64) int {
	best, bestScore := -1, -1.0
	for i, s := range scores {
		if s > bestScore {
			best, bestScore = i, s
		}
	}
	return best
}

// labelAt is ls.Labels[i], or "" when i < 0 (argmax).
func labelAt(ls *LabelSet, i int) string {
	if i < 0 {
		return ""
	}
	return ls.Labels[i]
}

func round(x float64) float64 {
	return float64(int64(x*1000+0.5)) / 1000
}
