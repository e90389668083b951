// Package classify tags citing sentences with a citation role and a
// polarity, and citing papers with pluralism categories, by weighing cue
// phrases read from the rule files in configs/rules. Every label comes
// with the cues that fired for it.
package classify

import (
	"math"
	"slices"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/citecrawl/citecrawl/record"
)

// Classifier applies one set of rules. It is safe for concurrent use: it
// holds nothing but the rules, which it never changes.
type Classifier struct {
	rules  *Rules
	tagger *tagger // for "pos:" cues; loads its model on first use
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
func New(rules *Rules) *Classifier { return &Classifier{rules: rules, tagger: &tagger{}} }

// Version is the rules version every tagged output carries.
func (c *Classifier) Version() string { return c.rules.Version }

// ContextTags are the tags of one citing sentence.
type ContextTags struct {
	Role     string
	Polarity string
	// RoleConfidence and PolarityConfidence are the chances that Role and
	// Polarity are right (LabelSet.Confidence of their probabilities).
	RoleConfidence     float64
	PolarityConfidence float64
	Evidence           []record.Evidence // role and polarity cues, told apart by Label
	RoleScores         map[string]float64
	PolarityScores     map[string]float64
}

// Context tags one citing sentence. section may be empty; span, when it
// has two elements, is the [start, end) rune span of the cited marker.
func (c *Classifier) Context(text, section string, span []int) ContextTags {
	lower, m := c.prepare(text, span)
	sec := strings.ToLower(section)
	ws := wordSet(lower)
	roleScores, roleEv := c.score(c.rules.Role, lower, ws, m, sec)
	polScores, polEv := c.score(c.rules.Polarity, lower, ws, m, sec)
	t := ContextTags{
		Role:           argmax(c.rules.Role, roleScores),
		Polarity:       argmax(c.rules.Polarity, polScores),
		Evidence:       append(roleEv, polEv...),
		RoleScores:     roleScores,
		PolarityScores: polScores,
	}
	t.RoleConfidence = c.rules.Role.Confidence(probability(c.rules.Role, roleScores, t.Role))
	t.PolarityConfidence = c.rules.Polarity.Confidence(probability(c.rules.Polarity, polScores, t.Polarity))
	return t
}

// Probabilities turns a label set's scores into probabilities:
// softmax(score / temperature) over the set's labels, the temperature
// fitted by scripts/tune.
func Probabilities(ls *LabelSet, scores map[string]float64) map[string]float64 {
	t, mx, z := softmaxParts(ls, scores)
	p := make(map[string]float64, len(ls.Labels))
	for _, l := range ls.Labels {
		p[l] = round(math.Exp(scores[l]/t-mx) / z)
	}
	return p
}

// probability is Probabilities(ls, scores)[label], without the map (it is
// on the path of every sentence).
func probability(ls *LabelSet, scores map[string]float64, label string) float64 {
	t, mx, z := softmaxParts(ls, scores)
	return round(math.Exp(scores[label]/t-mx) / z)
}

// softmaxParts are the temperature, the highest scaled score and the
// softmax's denominator (scaled by exp(-max), so nothing overflows).
func softmaxParts(ls *LabelSet, scores map[string]float64) (t, mx, z float64) {
	t = ls.Temperature
	if t <= 0 {
		t = 1
	}
	mx = math.Inf(-1)
	for _, l := range ls.Labels {
		mx = max(mx, scores[l]/t)
	}
	for _, l := range ls.Labels {
		z += math.Exp(scores[l]/t - mx)
	}
	return t, mx, z
}

// Confidence maps the probability the scores give a tag to the chance
// that the tag is right: sigmoid(slope * logit(p) + intercept), fitted by
// scripts/tune on rows the weights never saw (Platt scaling). The scores
// grow with every cue that fires, so a long abstract's softmax is surer
// than it should be and a short one's less sure: one temperature cannot
// mend both ends, the slope can. Slope 1, intercept 0 leave p as it is.
func (ls *LabelSet) Confidence(p float64) float64 {
	if ls.Slope == 0 || ls.Slope == 1 && ls.Intercept == 0 {
		return p
	}
	p = min(max(p, 1e-6), 1-1e-6)
	return round(1 / (1 + math.Exp(-(ls.Slope*math.Log(p/(1-p)) + ls.Intercept))))
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
	body := abstract
	if body == "" {
		body = summary
	}
	text := title + " . " + body
	ls := c.rules.Pluralism
	lower, m := c.prepare(text, nil)
	m.own = c.ownWork(lower, len(title))
	scores, ev := c.score(ls, lower, wordSet(lower), m, "")
	if len(citing) > 0 && ls.CitingFactor > 0 {
		cues := *ls
		cues.Prior = nil // the paper's priors count once
		for _, s := range citing {
			cl, cm := c.prepare(s, nil)
			cs, cev := c.score(&cues, cl, wordSet(cl), cm, "")
			for l, v := range cs {
				scores[l] = round(scores[l] + v*ls.CitingFactor)
			}
			for _, e := range cev {
				e.Weight = round(e.Weight * ls.CitingFactor)
				e.Rule = ruleName(ls, "cue-in-citing-sentence")
				ev = append(ev, e)
			}
		}
		sort.SliceStable(ev, func(i, j int) bool { return ev[i].Weight > ev[j].Weight })
	}
	probs := Probabilities(ls, scores)
	p := record.Pluralism{Scores: scores, Evidence: ev, Primary: argmax(ls, scores)}
	p.Confidence = ls.Confidence(probs[p.Primary])
	p.Labels = []string{p.Primary}
	if p.Primary != record.PluralismNone {
		for _, l := range ls.Labels {
			if l != p.Primary && l != record.PluralismNone && probs[l] >= ls.Secondary && ls.Secondary > 0 {
				p.Labels = append(p.Labels, l)
			}
		}
	}
	if p.Evidence == nil {
		p.Evidence = []record.Evidence{}
	}
	return p
}

// ownWork finds the spans of lower (title first, titleLen bytes) where the
// paper says what it does itself: the title, and each sentence that
// matches one of the pluralism rules' own_work patterns.
func (c *Classifier) ownWork(lower string, titleLen int) [][2]int {
	ls := c.rules.Pluralism
	if len(ls.OwnWork) == 0 {
		return nil
	}
	own := [][2]int{{0, titleLen}}
	start := titleLen
	for start < len(lower) {
		end := strings.Index(lower[start:], ". ")
		if end < 0 {
			end = len(lower)
		} else {
			end += start + 1
		}
		for _, re := range ls.OwnWork {
			if re.MatchString(lower[start:end]) {
				own = append(own, [2]int{start, end})
				break
			}
		}
		start = end
	}
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
	r.RulesVersion = c.rules.Version
	var citing []string
	if len(r.Contexts) > 0 {
		roles := map[string]int{}
		roleConf := map[string]float64{}
		pols := map[string]int{}
		polConf := map[string]float64{}
		for i := range r.Contexts {
			cx := &r.Contexts[i]
			t := c.Context(cx.Text, cx.Section, cx.CiteSpan)
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
		text := r.Paper.Summary
		if text == "" {
			text = r.Paper.Title
		}
		t := c.Context(text, "", nil)
		r.Role, r.RoleSource = t.Role, record.RoleSourceSummary
		r.RoleConfidence = min(t.RoleConfidence, c.rules.SummaryRoleConfidence)
		r.RoleEvidence = append([]record.Evidence{{Label: t.Role, Rule: "roles/summary-only-guess",
			Cue: "no citing sentence known: guessed from the paper's own summary", Weight: 0}}, t.Evidence...)
		r.Polarity = t.Polarity
		r.PolarityConfidence = min(t.PolarityConfidence, c.rules.SummaryRoleConfidence)
	}
	p := c.Pluralism(r.Paper.Title, r.Paper.Summary, r.Paper.Abstract, citing...)
	r.Pluralism = &p
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

// mayMatch tells whether the words a cue must start with, and the
// literal parts a pattern needs, are in the text: most cues' are not, and
// this is far cheaper than looking for the cue.
func mayMatch(cue *Cue, lower string, present map[string]struct{}) bool {
	if cue.first != "" {
		_, ok := present[cue.first]
		return ok
	}
	if len(cue.lead) > 0 && !slices.ContainsFunc(cue.lead, func(w string) bool { _, ok := present[w]; return ok }) {
		return false
	}
	for _, choices := range cue.needs {
		if !slices.ContainsFunc(choices, func(s string) bool { return strings.Contains(lower, s) }) {
			return false
		}
	}
	return true
}

// wordSet is the set of words in lower-cased text.
func wordSet(lower string) map[string]struct{} {
	ws := words(lower)
	set := make(map[string]struct{}, len(ws))
	for _, w := range ws {
		set[w] = struct{}{}
	}
	return set
}

// marker is where the cited work's marker is in the lowered sentence, in
// bytes; all nil when the caller gave no span.
type marker struct {
	at     []int    // the marker itself
	near   []int    // the window around it where cues weigh more
	others [][2]int // the markers of other citations in the sentence
	own    [][2]int // pluralism: where the paper says what it does itself
}

// prepare lower-cases text rune by rune (so rune offsets are kept) and
// turns a rune span of the cited marker into byte spans of the lowered
// text: the marker, the window where cues weigh more, and the other
// citations' markers, so that cues about those can be told apart.
func (c *Classifier) prepare(text string, span []int) (string, marker) {
	lower := strings.Map(unicode.ToLower, text)
	if len(span) != 2 || span[0] < 0 || span[1] < span[0] {
		return lower, marker{}
	}
	lo, hi := max(span[0]-c.rules.Window, 0), span[1]+c.rules.Window
	m := marker{
		near: []int{runeToByte(lower, lo), runeToByte(lower, hi)},
		at:   []int{runeToByte(lower, span[0]), runeToByte(lower, span[1])},
	}
	for _, re := range c.rules.CitationMarkers {
		for _, o := range re.FindAllStringIndex(lower, -1) {
			// Not the cited marker, nor a piece of the same citation right
			// next to it ("#AUTHOR_TAG, 2003", "Smith (2001)").
			if gap([2]int{o[0], o[1]}, [2]int{m.at[0], m.at[1]}) > adjacent {
				m.others = append(m.others, [2]int{o[0], o[1]})
			}
		}
	}
	return lower, m
}

// aboutOther tells whether the cue at pos is closer to another citation's
// marker than to the cited one: "[1] fails, while [2] is robust" says
// nothing bad of [2].
func (m marker) aboutOther(pos [2]int) bool {
	if m.at == nil {
		return false
	}
	own := gap(pos, [2]int{m.at[0], m.at[1]})
	for _, o := range m.others {
		if gap(pos, o) < own {
			return true
		}
	}
	return false
}

// inOwnWork tells whether the cue at pos is where the paper says what it does.
func (m marker) inOwnWork(pos [2]int) bool {
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

// score adds up a label set's priors, section priors and cues.
func (c *Classifier) score(ls *LabelSet, lower string, present map[string]struct{}, m marker, section string) (map[string]float64, []record.Evidence) {
	scores := make(map[string]float64, len(ls.Labels))
	for _, l := range ls.Labels { // in a fixed order: float sums must not vary
		if w, ok := ls.Prior[l]; ok {
			scores[l] += w
		}
	}
	var ev []record.Evidence
	if section != "" {
		for _, sp := range ls.Sections {
			if strings.Contains(section, sp.Key) {
				for i, l := range sp.Labels {
					scores[l] += sp.Weights[i]
					ev = append(ev, record.Evidence{Label: l, Rule: ruleName(ls, "section"), Cue: sp.Key, Weight: sp.Weights[i]})
				}
			}
		}
	}
	for _, i := range ls.candidates(present) {
		cue := &ls.Cues[i]
		if cue.Weight == 0 || !mayMatch(cue, lower, present) {
			continue // cheap pre-check: most cues' first word is absent
		}
		for _, pos := range findCue(cue, lower) {
			if cue.tag != "" && !strings.HasPrefix(c.tagger.tagAt(lower, pos[0], pos[1]), cue.tag) {
				continue
			}
			if !onSide(cue.side, pos, m.at) {
				continue
			}
			w := cue.Weight
			rule := ruleName(ls, "cue")
			label := cue.Label
			if m.near != nil && pos[0] < m.near[1] && pos[1] > m.near[0] {
				w *= c.rules.NearBoost
				rule = ruleName(ls, "cue-near-citation")
			}
			if m.inOwnWork(pos) {
				w *= ls.OwnWorkBoost
				rule = ruleName(ls, "cue-in-own-work")
			}
			if m.aboutOther(pos) {
				w *= c.rules.OtherCitationFactor
				rule = ruleName(ls, "cue-about-other-citation")
			}
			before := wordsBefore(lower, pos[0], max(c.rules.NegationScope, c.rules.HedgeScope))
			if c.anyIn(before, c.rules.NegationScope, c.rules.Negators) {
				if ls.Negated == "drop" {
					continue
				}
				label = Flip(label)
				rule = ruleName(ls, "negated-cue")
			}
			if c.anyIn(before, c.rules.HedgeScope, c.rules.Hedges) {
				w *= c.rules.HedgeFactor
				rule += "+hedged"
			}
			scores[label] += w
			ev = append(ev, record.Evidence{Label: label, Rule: rule, Cue: cue.Text, Weight: round(w)})
		}
	}
	sort.SliceStable(ev, func(i, j int) bool { return ev[i].Weight > ev[j].Weight })
	for l, s := range scores {
		scores[l] = round(s)
	}
	return scores, ev
}

// onSide tells whether a cue at pos is on the side of the cited marker
// (at) that the cue asks for: "our parser outperforms [3]" judges [3]
// otherwise than "[3] outperforms ours". A sided cue needs a known marker.
func onSide(side string, pos [2]int, at []int) bool {
	switch side {
	case "":
		return true
	case sideBefore:
		return at != nil && pos[1] <= at[0]
	default:
		return at != nil && pos[0] >= at[1]
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

// anyIn reports whether one of the last scope words is in set. A word
// ending in n't counts as the negator n't.
func (c *Classifier) anyIn(words []string, scope int, set map[string]bool) bool {
	start := max(len(words)-scope, 0)
	for _, w := range words[start:] {
		if set[w] || (strings.HasSuffix(w, "n't") && set["n't"]) {
			return true
		}
	}
	return false
}

// wordsBefore returns up to n words that end before byte offset pos.
func wordsBefore(s string, pos, n int) []string {
	var words []string
	end := pos
	for len(words) < n && end > 0 {
		// skip separators
		for end > 0 {
			r, size := utf8.DecodeLastRuneInString(s[:end])
			if isWordRune(r) {
				break
			}
			end -= size
		}
		start := end
		for start > 0 {
			r, size := utf8.DecodeLastRuneInString(s[:start])
			if !isWordRune(r) {
				break
			}
			start -= size
		}
		if start == end {
			break
		}
		words = append(words, s[start:end])
		end = start
	}
	// reverse into reading order
	for i, j := 0, len(words)-1; i < j; i, j = i+1, j-1 {
		words[i], words[j] = words[j], words[i]
	}
	return words
}

func isWordRune(r rune) bool {
	return unicode.IsLetter(r) || unicode.IsDigit(r) || r == '\'' || r == '-'
}

// findCue returns the byte spans where cue occurs in lower as whole words.
func findCue(cue *Cue, lower string) [][2]int {
	if cue.re != nil {
		var out [][2]int
		for _, m := range cue.re.FindAllStringIndex(lower, -1) {
			out = append(out, [2]int{m[0], m[1]})
		}
		return out
	}
	var out [][2]int
	p := cue.phrase
	for from := 0; ; {
		i := strings.Index(lower[from:], p)
		if i < 0 {
			return out
		}
		start, end := from+i, from+i+len(p)
		if boundary(lower, start, end, p) {
			out = append(out, [2]int{start, end})
		}
		from = start + 1
	}
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
	if isAlnum(last) && end < len(s) {
		if r, _ := utf8.DecodeRuneInString(s[end:]); isAlnum(r) {
			return false
		}
	}
	return true
}

func isAlnum(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }

// argmax picks the label with the highest score; ties go to the label
// listed first in the rule file (background, neutral come first).
func argmax(ls *LabelSet, scores map[string]float64) string {
	best, bestScore := "", -1.0
	for _, l := range ls.Labels {
		if s := scores[l]; s > bestScore {
			best, bestScore = l, s
		}
	}
	return best
}

func round(x float64) float64 {
	return float64(int64(x*1000+0.5)) / 1000
}
