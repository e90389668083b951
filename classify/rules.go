package classify

import (
	"cmp"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path"
	"regexp"
	"regexp/syntax"
	"slices"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"

	"gopkg.in/yaml.v3"

	"github.com/citecrawl/citecrawl/configs"
	"github.com/citecrawl/citecrawl/record"
)

// Rules are the parsed rule files of configs/rules.
type Rules struct {
	Version   string
	Window    int
	NearBoost float64
	// CitationMarkers find citations' markers in a sentence; a cue closer
	// to another citation's marker than to the cited one weighs
	// OtherCitationFactor times as much.
	CitationMarkers     []*regexp.Regexp
	OtherCitationFactor float64
	NegationScope       int
	Negators            map[string]bool
	HedgeScope          int
	HedgeFactor         float64
	Hedges              map[string]bool
	// SummaryRoleConfidence caps the confidence of a record's role when
	// no citing sentence is known and the role is guessed from what the
	// paper says of itself, which is not what it does with the cited work.
	SummaryRoleConfidence float64

	Role      *LabelSet
	Polarity  *LabelSet
	Pluralism *LabelSet
}

// LabelSet is one rule file: cues per label, priors, section priors.
type LabelSet struct {
	Name    string
	Prior   map[string]float64
	Negated string // "drop" or "flip"
	// Temperature turns scores into probabilities: softmax(score/T). It
	// is fitted by scripts/tune on rows the weights were not fitted on.
	Temperature float64
	// CalibrationMap maps the softmax probability of a tag to its confidence
	// (see CalibrationMap.Confidence); fitted with the temperature.
	CalibrationMap
	// ByLabel (calibration_by_label) are maps for tags of one label, used
	// instead of CalibrationMap for that label (LabelConfidence).
	ByLabel map[string]CalibrationMap
	// WithoutMarker (calibration_without_marker), when the file has one,
	// is the map for sentences whose cited marker is unknown, used
	// instead of the others (LabelConfidence).
	WithoutMarker *CalibrationMap
	// IntentCalibration (roles) maps the probability of a SciCite intent,
	// the sum of its roles' probabilities, to its confidence: the intents'
	// chances of being right are not the roles'.
	IntentCalibration CalibrationMap
	// Secondary (pluralism): a category other than the primary one
	// applies too when its probability is at least this.
	Secondary float64
	// OwnWork (pluralism) finds the sentences where the paper says what it
	// does; cues in them (and in the title) weigh OwnWorkBoost times more.
	OwnWork      []*regexp.Regexp
	OwnWorkBoost float64
	// CitingFactor (pluralism) is what a cue in a sentence citing the
	// hub's work weighs, against 1 in the paper's abstract.
	CitingFactor float64
	// Contrast, when the file has it (polarity), weighs a cue by where
	// it is against the sentence's contrast words (contrastSpans, scopeAt).
	Contrast *Contrast
	Sections []SectionPrior // sorted, so scores and evidence come out the same every time
	Cues     []Cue
	Labels   []string // labels in file order
	// byFirst indexes the cues by the word they start with (a pattern by
	// each of its lead words), rest are the others: a sentence's two dozen
	// words pick the few cues worth looking for out of hundreds.
	byFirst map[string][]int32
	rest    []int32
	// lits finds, in one pass over a text, which of the literal parts
	// the patterns need (Cue.needs) are in it; the files share one, as
	// they read the same texts (a sentence's role and polarity, a
	// summary's role and the paper's pluralism, citing sentences for
	// their role and the paper's pluralism).
	lits  *literals
	rules [ruleKinds][2]string // rule names by kind, unhedged and hedged
}

// Kinds of rule a cue fires by, named in its evidence.
const (
	ruleCue            = iota // "cue"
	ruleNear                  // "cue-near-citation"
	ruleOwnWork               // "cue-in-own-work"
	ruleOtherCited            // "cue-about-other-citation"
	ruleNegated               // "negated-cue"
	ruleSection               // "section"
	ruleCitingSentence        // "cue-in-citing-sentence"
	ruleAfterContrast         // "cue-after-contrast"
	ruleConceded              // "cue-in-concession"
	ruleKinds
)

var ruleKindNames = [ruleKinds]string{"cue", "cue-near-citation", "cue-in-own-work", "cue-about-other-citation", "negated-cue", "section", "cue-in-citing-sentence",
	"cue-after-contrast", "cue-in-concession"}

// Contrast is a rule file's contrast scope: after a contrast word ("but",
// "however") a sentence says its point, so a cue there weighs After times
// as much ("[3] is fast, but fails on long inputs"); a concession word
// ("although", "while") opens a clause, up to the next comma, semicolon
// or colon, that concedes what the rest of the sentence outweighs: a cue
// in it weighs Conceded times as much, and one after it After times
// ("although [3] is popular, it fails on long inputs").
type Contrast struct {
	Words       map[string]bool
	After       float64
	Concessions map[string]bool
	Conceded    float64
}

// contrastFile is the contrast block as written.
type contrastFile struct {
	Words       []string `yaml:"words"`
	After       *float64 `yaml:"after"`
	Concessions []string `yaml:"concessions"`
	Conceded    *float64 `yaml:"conceded"`
}

// index builds byFirst, rest and the rule names, once, when the file is read.
func (ls *LabelSet) index() {
	ls.byFirst = map[string][]int32{}
	ls.rest = nil
	for i, c := range ls.Cues {
		switch {
		case c.first != "":
			ls.byFirst[c.first] = append(ls.byFirst[c.first], int32(i))
		case len(c.lead) > 0:
			for _, w := range slices.Compact(slices.Sorted(slices.Values(c.lead))) {
				ls.byFirst[w] = append(ls.byFirst[w], int32(i))
			}
		default:
			ls.rest = append(ls.rest, int32(i))
		}
	}
	for k, kind := range ruleKindNames {
		ls.rules[k] = [2]string{ruleName(ls, kind), ruleName(ls, kind) + "+hedged"}
	}
}

// indexLiterals numbers the literal parts that the patterns of sets need
// (Cue.needs, by number in Cue.needIDs) and gives the sets one automaton
// (lits) that finds them all in one pass over a text.
func indexLiterals(sets ...*LabelSet) {
	var texts []string
	ids := map[string]int32{}
	for _, ls := range sets {
		for i := range ls.Cues {
			c := &ls.Cues[i]
			c.needIDs = nil
			for _, choices := range c.needs {
				group := make([]int32, len(choices))
				for j, t := range choices {
					id, ok := ids[t]
					if !ok {
						id = int32(len(texts))
						ids[t] = id
						texts = append(texts, t)
					}
					group[j] = id
				}
				c.needIDs = append(c.needIDs, group)
			}
		}
	}
	var lits *literals
	if len(texts) > 0 {
		lits = newLiterals(texts)
	}
	for _, ls := range sets {
		ls.lits = lits
	}
}

// rule names a kind of rule of this file, "roles/cue" or "roles/cue+hedged".
func (ls *LabelSet) rule(kind int, hedged bool) string {
	h := 0
	if hedged {
		h = 1
	}
	if ls.rules[kind][h] == "" { // a label set not read from a file
		return ruleName(ls, ruleKindNames[kind]) + [2]string{"", "+hedged"}[h]
	}
	return ls.rules[kind][h]
}

// SectionPrior adds weight to labels when the section title contains Key.
type SectionPrior struct {
	Key     string
	Labels  []string
	Weights []float64
}

// Cue is one phrase or pattern that is evidence for a label.
type Cue struct {
	Label  string
	Text   string // as written in the rule file
	Weight float64
	phrase string // lower-case phrase, or ""
	// atWord: the phrase begins with a letter or digit, so it can only
	// begin where a word of its first word begins; endsWord: it ends with
	// one, so it cannot be followed by another.
	atWord, endsWord bool
	oneWord          bool           // the phrase is its first word: found wherever the word is
	tag              string         // with phrase: the part of speech it must have ("pos:used/VBN"), a prefix
	side             string         // sideBefore or sideAfter the cited marker, or "" for anywhere
	first            string         // the phrase's first word: a text without it cannot match
	re               *regexp.Regexp // or a pattern
	pat              *pattern       // re, compiled for looking for it fast
	lead             []string       // a pattern's possible first words, when plain: one must be present
	needs            [][]string     // a pattern's literal parts: one text of each must be in the text
	needIDs          [][]int32      // needs, by their numbers in the label set's lits (indexLiterals)
}

// A cue written "before-cited: outperforms" counts only before the cited
// work's marker, "after-cited: ..." only after it.
const (
	sideBefore = "before-cited"
	sideAfter  = "after-cited"
)

// manifest mirrors rules.yaml.
type manifest struct {
	Version       string   `yaml:"version"`
	Window        int      `yaml:"window"`
	NearBoost     float64  `yaml:"near_boost"`
	Markers       []string `yaml:"citation_markers"`
	OtherFactor   *float64 `yaml:"other_citation_factor"`
	NegationScope int      `yaml:"negation_scope"`
	Negators      []string `yaml:"negators"`
	HedgeScope    int      `yaml:"hedge_scope"`
	HedgeFactor   float64  `yaml:"hedge_factor"`
	Hedges        []string `yaml:"hedges"`
	SummaryRole   *float64 `yaml:"summary_role_confidence"`
}

// labelFile mirrors roles.yaml, polarity.yaml and pluralism.yaml. Labels
// is a yaml.Node so the file's order of labels is kept.
type labelFile struct {
	Prior             map[string]float64            `yaml:"prior"`
	Negated           string                        `yaml:"negated"`
	Temperature       float64                       `yaml:"temperature"`
	Calibration       calibrationFile               `yaml:"calibration"`
	ByLabel           map[string]calibrationFile    `yaml:"calibration_by_label"`
	WithoutMarker     *calibrationFile              `yaml:"calibration_without_marker"`
	IntentCalibration calibrationFile               `yaml:"intent_calibration"`
	Secondary         float64                       `yaml:"secondary"`
	OwnWork           []string                      `yaml:"own_work"`
	OwnBoost          float64                       `yaml:"own_work_boost"`
	Citing            float64                       `yaml:"citing_factor"`
	Contrast          *contrastFile                 `yaml:"contrast"`
	Sections          map[string]map[string]float64 `yaml:"sections"`
	Labels            yaml.Node                     `yaml:"labels"`
}

// calibrationFile is a calibration map as written, {slope, intercept};
// the slope is 1 when left out.
type calibrationFile struct {
	Slope     *float64 `yaml:"slope"`
	Intercept float64  `yaml:"intercept"`
}

func (f calibrationFile) calibration() CalibrationMap {
	c := CalibrationMap{Slope: 1, Intercept: f.Intercept}
	if f.Slope != nil {
		c.Slope = *f.Slope
	}
	return c
}

// LoadRules reads the rules from dir; an empty dir means the rules
// compiled into the binary (a copy of configs/rules).
func LoadRules(dir string) (*Rules, error) {
	if dir == "" {
		sub, err := fs.Sub(configs.FS, "rules")
		if err != nil {
			return nil, err
		}
		return LoadRulesFS(sub, "embedded rules")
	}
	return LoadRulesFS(os.DirFS(dir), dir)
}

// LoadRulesFS reads rules.yaml, roles.yaml, polarity.yaml and
// pluralism.yaml from fsys. name is used in errors.
func LoadRulesFS(fsys fs.FS, name string) (*Rules, error) {
	var m manifest
	if err := readYAML(fsys, name, "rules.yaml", &m); err != nil {
		return nil, err
	}
	if m.Version == "" {
		return nil, fmt.Errorf("%s: rules.yaml has no version", path.Join(name, "rules.yaml"))
	}
	r := &Rules{
		Version: m.Version, Window: m.Window, NearBoost: m.NearBoost,
		NegationScope: m.NegationScope, Negators: set(m.Negators),
		HedgeScope: m.HedgeScope, HedgeFactor: m.HedgeFactor, Hedges: set(m.Hedges),
	}
	if r.NearBoost == 0 {
		r.NearBoost = 1
	}
	if r.HedgeFactor == 0 {
		r.HedgeFactor = 1
	}
	r.SummaryRoleConfidence = 0.5
	if m.SummaryRole != nil {
		r.SummaryRoleConfidence = *m.SummaryRole
	}
	r.OtherCitationFactor = 1
	if m.OtherFactor != nil {
		r.OtherCitationFactor = *m.OtherFactor
	}
	for _, pat := range m.Markers {
		re, err := regexp.Compile(pat)
		if err != nil {
			return nil, fmt.Errorf("%s: citation_markers: %q: %w", path.Join(name, "rules.yaml"), pat, err)
		}
		r.CitationMarkers = append(r.CitationMarkers, re)
	}
	var err error
	if r.Role, err = loadLabelSet(fsys, name, "roles.yaml", "role"); err != nil {
		return nil, err
	}
	if r.Polarity, err = loadLabelSet(fsys, name, "polarity.yaml", "polarity"); err != nil {
		return nil, err
	}
	if r.Pluralism, err = loadLabelSet(fsys, name, "pluralism.yaml", "pluralism"); err != nil {
		return nil, err
	}
	indexLiterals(r.Role, r.Polarity, r.Pluralism)
	return r, nil
}

// knownLabels refuses a label the record schema does not know: it would
// be written into records that then fail their own schema, and reports
// and summaries (which list the schema's labels) would never count it.
// A new label is added to record/schema.json first, then to a rule file.
func knownLabels(ls *LabelSet, where, kind string) error {
	known := record.SchemaLabels(kind)
	labels := slices.Clone(ls.Labels)
	for _, sp := range ls.Sections {
		labels = append(labels, sp.Labels...)
	}
	for _, l := range labels {
		if !slices.Contains(known, l) {
			return fmt.Errorf("%s: label %q is not a %s that record/schema.json knows (%s); add it to $defs.%s there first",
				where, l, kind, strings.Join(known, ", "), kind)
		}
	}
	return nil
}

func readYAML(fsys fs.FS, dir, file string, v any) error {
	b, err := fs.ReadFile(fsys, file)
	if err != nil {
		return fmt.Errorf("reading rules %s: %w", path.Join(dir, file), err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		return fmt.Errorf("rules %s: %w", path.Join(dir, file), err)
	}
	return nil
}

func loadLabelSet(fsys fs.FS, dir, file, kind string) (*LabelSet, error) {
	var f labelFile
	if err := readYAML(fsys, dir, file, &f); err != nil {
		return nil, err
	}
	where := path.Join(dir, file)
	ls := &LabelSet{Name: file, Prior: f.Prior, Negated: f.Negated, Temperature: f.Temperature, Secondary: f.Secondary,
		OwnWorkBoost: f.OwnBoost, CitingFactor: f.Citing}
	if ls.OwnWorkBoost == 0 {
		ls.OwnWorkBoost = 1
	}
	for _, pat := range f.OwnWork {
		re, err := regexp.Compile(pat)
		if err != nil {
			return nil, fmt.Errorf("%s: own_work: %q: %w", where, pat, err)
		}
		ls.OwnWork = append(ls.OwnWork, re)
	}
	if ls.Temperature == 0 {
		ls.Temperature = 1
	}
	if c := f.Contrast; c != nil {
		ls.Contrast = &Contrast{Words: set(c.Words), Concessions: set(c.Concessions), After: 1, Conceded: 1}
		if c.After != nil {
			ls.Contrast.After = *c.After
		}
		if c.Conceded != nil {
			ls.Contrast.Conceded = *c.Conceded
		}
		for _, w := range slices.Concat(c.Words, c.Concessions) {
			// The sentence is matched word by word: "even though" would never be found.
			if w == "" || strings.ContainsFunc(w, func(r rune) bool { return !isAlnum(r) }) {
				return nil, fmt.Errorf("%s: contrast: %q is not one word (contrast words and concessions are single words)", where, w)
			}
		}
		if ls.Contrast.After < 0 || ls.Contrast.Conceded < 0 {
			return nil, fmt.Errorf("%s: contrast: after and conceded are factors, at least 0, not %g and %g", where, ls.Contrast.After, ls.Contrast.Conceded)
		}
	}
	ls.CalibrationMap, ls.IntentCalibration = f.Calibration.calibration(), f.IntentCalibration.calibration()
	if f.WithoutMarker != nil {
		m := f.WithoutMarker.calibration()
		ls.WithoutMarker = &m
	}
	for l, c := range f.ByLabel {
		if ls.ByLabel == nil {
			ls.ByLabel = map[string]CalibrationMap{}
		}
		ls.ByLabel[l] = c.calibration()
	}
	if ls.Temperature < 0 || ls.Secondary < 0 || ls.Secondary > 1 {
		return nil, fmt.Errorf("%s: temperature must be above 0 and secondary within [0, 1], not %g and %g", where, ls.Temperature, ls.Secondary)
	}
	for _, key := range slices.Sorted(maps.Keys(f.Sections)) {
		sp := SectionPrior{Key: key}
		for _, l := range slices.Sorted(maps.Keys(f.Sections[key])) {
			sp.Labels = append(sp.Labels, l)
			sp.Weights = append(sp.Weights, f.Sections[key][l])
		}
		ls.Sections = append(ls.Sections, sp)
	}
	if ls.Prior == nil {
		ls.Prior = map[string]float64{}
	}
	// Labels with a prior come first, highest prior first, so that a tie
	// goes to the default label (background, neutral).
	ls.Labels = slices.SortedFunc(maps.Keys(f.Prior), func(a, b string) int {
		if f.Prior[a] != f.Prior[b] {
			return cmp.Compare(f.Prior[b], f.Prior[a])
		}
		return strings.Compare(a, b)
	})
	if ls.Negated != "drop" && ls.Negated != "flip" {
		return nil, fmt.Errorf("%s: negated must be drop or flip, not %q", where, ls.Negated)
	}
	if f.Labels.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%s: labels must be a mapping of label to cues", where)
	}
	listed := map[string]int{} // label -> its line under labels
	for i := 0; i+1 < len(f.Labels.Content); i += 2 {
		label := f.Labels.Content[i].Value
		// A label written twice would weigh twice in the softmax.
		if line, ok := listed[label]; ok {
			return nil, fmt.Errorf("%s: label %s is listed twice under labels (lines %d and %d)", where, label, line, f.Labels.Content[i].Line)
		}
		listed[label] = f.Labels.Content[i].Line
		var cues map[string]float64
		if err := f.Labels.Content[i+1].Decode(&cues); err != nil {
			return nil, fmt.Errorf("%s: label %s (line %d): %w", where, label, f.Labels.Content[i].Line, err)
		}
		if i := slices.Index(ls.Labels, label); i >= 0 {
			// One string for each label, as in ls.Labels: the tally
			// compares labels, and equal strings at one place compare
			// at once.
			label = ls.Labels[i]
		} else {
			ls.Labels = append(ls.Labels, label)
		}
		texts := make([]string, 0, len(cues))
		for t := range cues {
			texts = append(texts, t)
		}
		sort.Strings(texts) // deterministic evidence order
		for _, t := range texts {
			c := Cue{Label: label, Text: t, Weight: cues[t]}
			for _, side := range []string{sideBefore, sideAfter} {
				if rest, ok := strings.CutPrefix(t, side+":"); ok {
					c.side, t = side, strings.TrimSpace(rest)
				}
			}
			if pat, ok := strings.CutPrefix(t, "re:"); ok {
				re, err := regexp.Compile(pat)
				if err != nil {
					return nil, fmt.Errorf("%s: label %s: pattern %q: %w", where, label, pat, err)
				}
				c.re, c.pat = re, compilePattern(re)
				c.lead = leadWords(pat)
				c.needs = literalNeeds(pat)
			} else if wt, ok := strings.CutPrefix(t, "pos:"); ok {
				word, tag, found := strings.Cut(wt, "/")
				if !found || word == "" || tag == "" || strings.ContainsAny(word, " \t") {
					return nil, fmt.Errorf("%s: label %s: %q: want pos:WORD/TAG, one word and a Penn tag (prefix)", where, label, t)
				}
				c.phrase, c.first, c.tag = strings.ToLower(word), strings.ToLower(word), tag
			} else {
				if t == "" { // it would be found at every byte
					return nil, fmt.Errorf("%s: label %s: an empty cue (%q); write a phrase", where, label, c.Text)
				}
				c.phrase = strings.ToLower(t)
				if ws := words(c.phrase); len(ws) > 0 {
					c.first = ws[0]
				}
			}
			if c.phrase != "" {
				first, _ := utf8.DecodeRuneInString(c.phrase)
				last, _ := utf8.DecodeLastRuneInString(c.phrase)
				c.atWord, c.endsWord = isAlnum(first), isAlnum(last)
				c.oneWord = c.phrase == c.first
			}
			ls.Cues = append(ls.Cues, c)
		}
	}
	if err := knownLabels(ls, where, kind); err != nil {
		return nil, err
	}
	for _, l := range slices.Sorted(maps.Keys(ls.ByLabel)) {
		if !slices.Contains(ls.Labels, l) {
			return nil, fmt.Errorf("%s: calibration_by_label: %q is none of the file's labels (%s)", where, l, strings.Join(ls.Labels, ", "))
		}
	}
	ls.index()
	return ls, nil
}

func set(xs []string) map[string]bool {
	m := make(map[string]bool, len(xs))
	for _, x := range xs {
		m[strings.ToLower(x)] = true
	}
	return m
}

// words splits lower-cased text into runs of letters and digits.
func words(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
}

// literalNeeds reads the literal texts a match of pat must contain: for
// the start and each part of the pattern that is a word or a choice of
// words, the choices ("\\bdeliberat(ion|ive)\\b.{0,9}\\b(views|opinions)"
// needs "deliberat" and one of "views", "opinions"). A text lacking one of
// them skips the (slow) pattern. Choices shorter than 3 bytes are left out.
func literalNeeds(pat string) [][]string {
	re, err := syntax.Parse(pat, syntax.Perl)
	if err != nil {
		return nil
	}
	re = re.Simplify()
	for re.Op == syntax.OpCapture {
		re = re.Sub[0]
	}
	var needs [][]string
	add := func(choices []string) {
		for _, s := range choices {
			if len(s) < 3 {
				return
			}
		}
		// Left out when an earlier need implies it ("summary" or
		// "summaries" present means "summar" is).
		implied := slices.ContainsFunc(needs, func(have []string) bool {
			return !slices.ContainsFunc(have, func(h string) bool {
				return !slices.ContainsFunc(choices, func(c string) bool { return strings.Contains(h, c) })
			})
		})
		if choices != nil && !implied {
			needs = append(needs, choices)
		}
	}
	add(firstLiterals(re))
	if re.Op == syntax.OpConcat {
		for _, sub := range re.Sub {
			add(firstLiterals(sub))
		}
	}
	return needs
}

func firstLiterals(re *syntax.Regexp) []string {
	switch re.Op {
	case syntax.OpLiteral:
		if re.Flags&syntax.FoldCase != 0 {
			return nil
		}
		return []string{string(re.Rune)}
	case syntax.OpCapture, syntax.OpPlus:
		return firstLiterals(re.Sub[0])
	case syntax.OpConcat:
		for i, sub := range re.Sub {
			switch sub.Op {
			case syntax.OpWordBoundary, syntax.OpBeginText, syntax.OpBeginLine:
				continue // takes no text
			}
			first := firstLiterals(sub)
			// The parser factors "votes|voting" into "vot(es|ing)": a
			// literal followed by more, whose starts lengthen it.
			if sub.Op == syntax.OpLiteral && first != nil && i+1 < len(re.Sub) {
				if rest := firstLiterals(re.Sub[i+1]); rest != nil {
					for j := range rest {
						rest[j] = first[0] + rest[j]
					}
					return rest
				}
			}
			return first
		}
	case syntax.OpAlternate:
		var out []string
		for _, sub := range re.Sub {
			s := firstLiterals(sub)
			if s == nil {
				return nil
			}
			out = append(out, s...)
		}
		return out
	}
	return nil
}

var rePlainWord = regexp.MustCompile(`^[a-z]+$`)

// leadWords reads the words a pattern must start with, when it starts with
// a plain word or a group of plain alternatives ("\\b(we|our)\\b..."), so
// texts without any of them can skip the (slow) regular expression.
func leadWords(pat string) []string {
	p := strings.TrimPrefix(pat, `\b`)
	var alts []string
	if strings.HasPrefix(p, "(") {
		end := strings.Index(p, ")")
		if end < 0 {
			return nil
		}
		alts = strings.Split(strings.TrimPrefix(p[1:end], "?:"), "|")
	} else {
		i := 0
		for i < len(p) && p[i] >= 'a' && p[i] <= 'z' {
			i++
		}
		// A word followed by a quantifier or nothing word-like is not required as is.
		if i == 0 || i < len(p) && strings.ContainsRune("?*+{(|[", rune(p[i])) {
			return nil
		}
		alts = []string{p[:i]}
	}
	for _, a := range alts {
		if !rePlainWord.MatchString(a) {
			return nil
		}
	}
	return alts
}
