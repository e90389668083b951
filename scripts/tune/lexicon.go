package main

// The induced lexicon: phrase cues read off the training rows, beside the
// hand-written ones. Most judged rows say their judgement in words no cue
// list holds, so for each fold tune picks word n-grams (one to three
// words, never a sentence) that tell a label apart in THAT fold's training
// rows, by the log-odds ratio with an informative Dirichlet prior (Monroe,
// Colaresi and Quinn 2008, "Fightin' words"), adds them as phrase cues of
// their label and fits them with the hand-written cues in the same
// regression, pulled towards 0 rather than 1 (the data proposed them, no
// linguist did). The fold's held-out rows are then scored, so the figures
// stay on rows neither the weights nor the choice of cues saw. -write
// induces from all fitted rows and writes the cues into the rule file, in
// a commented block at the end of each label's cues, where a reader can
// see, edit or move them (a cue moved out of the block is hand-written
// from then on).

import (
	"cmp"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"unicode"

	"github.com/citecrawl/citecrawl/classify"
)

// The lines that open and close a label's induced block in a rule file.
// tune drops what is between them when it reads the file (a fit starts
// from the hand-written cues alone) and writes them anew with -write.
const (
	inducedBegin = "    # induced by scripts/tune: begin"
	inducedEnd   = "    # induced by scripts/tune: end"
	inducedNote  = "    # Word n-grams that told this label apart in the fitted rows, weighed by\n" +
		"    # the same fit (scripts/tune -induce; README, \"Weights\"). Rewritten by\n" +
		"    # -write: to keep or change one by hand, move it above this block."
)

// maxWords is the longest induced phrase, in words.
const maxWords = 3

// stopWords are function words: no induced phrase begins with one.
var stopWords = set(`a about above after again against all also am an and any are as at be because been before
being below between both but by can could did do does doing down during each either few for from further
had has have having he her here hers him his how i if in into is it its itself just may me might more most
much must my no nor not of off on once only or other our ours out over own same she should so some such
than that the their theirs them then there these they this those through to too under until up upon very
was we were what when where which while who whom why will with within would yet you your`)

// markerWords are pieces of citation markers ("et al.", ACT's
// #AUTHOR_TAG): a phrase with one speaks of how a corpus marks citations.
var markerWords = set("et al author tag cit ibid")

func set(words string) map[string]bool {
	m := map[string]bool{}
	for _, w := range strings.Fields(words) {
		m[w] = true
	}
	return m
}

// lexicon is what was induced: for each fold left out (-1: none, the fit
// that is written), the induced cues' parameters that fold may fit.
type lexicon map[int]map[int]bool

// word is one word of a text: where it is, lower-cased, and whether it
// is capitalised where a sentence does not begin (a name, most often).
type word struct {
	start, end   int
	lower        string
	mid, capital bool
}

// words splits text into runs of letters and digits, as classify does
// when it looks for a phrase's first word.
func words(text string) []word {
	var out []word
	start := -1
	flush := func(end int) {
		w := text[start:end]
		first := []rune(w)[0]
		mid := len(out) > 0 && !strings.ContainsAny(text[out[len(out)-1].end:start], ".!?")
		out = append(out, word{start, end, strings.Map(unicode.ToLower, w), mid, mid && unicode.IsUpper(first)})
		start = -1
	}
	for i, r := range text {
		alnum := unicode.IsLetter(r) || unicode.IsDigit(r)
		switch {
		case alnum && start < 0:
			start = i
		case !alnum && start >= 0:
			flush(i)
		}
	}
	if start >= 0 {
		flush(len(text))
	}
	return out
}

// phrases are the distinct n-grams of a text that may become cues, each
// as the lower-cased text it spans (so that, as a phrase cue, it matches
// where it occurs): words joined by one space or hyphen, none with a
// digit or a piece of a marker, the first not a function word. (A phrase
// cue is looked for where its first word occurs: "the present" would be
// tried at every "the", and costs a sentence more than ten rarer cues.)
func phrases(ws []word, text string) []string {
	return sidedPhrases(ws, text, nil)
}

// sidedPhrases are phrases, and when the cited marker's place is known
// (at, byte offsets of text), each phrase again as a sided cue of the side
// it is on: "before-cited: our method" and "after-cited: fails to" say
// who does what ("our method outperforms [3]" against "[3] outperforms
// ours"), which the plain phrase cannot.
func sidedPhrases(ws []word, text string, at []int) []string {
	var out []string
	for i := range ws {
		if stopWords[ws[i].lower] {
			continue
		}
		for n := 1; n <= maxWords && i+n <= len(ws); n++ {
			w := ws[i+n-1]
			if n > 1 {
				if gap := text[ws[i+n-2].end:w.start]; gap != " " && gap != "-" {
					break
				}
			}
			if markerWords[w.lower] || len([]rune(w.lower)) < 2 || strings.ContainsFunc(w.lower, unicode.IsDigit) {
				break
			}
			p := strings.Map(unicode.ToLower, text[ws[i].start:w.end])
			out = append(out, p)
			switch {
			case at == nil:
			case w.end <= at[0]:
				out = append(out, "before-cited: "+p)
			case ws[i].start >= at[1]:
				out = append(out, "after-cited: "+p)
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// lexRow is one distinct text of one label, as the association test
// counts it (a sentence citing three works is three rows, one text).
type lexRow struct {
	text  string
	at    [2]int // the cited marker's place in text (bytes), when sided phrases are read
	sided bool
	label int
}

// place is what r's phrases depend on (its text, marker and sidedness),
// the key of the phrases read off it once.
type place struct {
	text  string
	at    [2]int
	sided bool
}

func (r lexRow) place() place { return place{r.text, r.at, r.sided} }

// phrasesOf are the phrases of r's text, sided ones too when asked.
func (r lexRow) phrasesOf(ws []word) []string {
	if !r.sided {
		return phrases(ws, r.text)
	}
	return sidedPhrases(ws, r.text, r.at[:])
}

// inducePhrases picks, for each label, up to perLabel phrases that occur
// in at least minRows of its texts and are most over-represented in them
// against the other labels' (z-score of the log-odds ratio with an
// informative Dirichlet prior, at least 2). Phrases with a word
// capitalised in most of its places inside a sentence are left out
// (names: the cited authors, a system, a data set), and so are phrases
// in skip (the hand-written cues), phrases elsewhere refuses, and a
// phrase found in exactly the rows of a shorter or longer one already
// picked.
func inducePhrases(rows []lexRow, nLabels, perLabel, minRows int, skip map[string]bool, elsewhere func(string) bool) [][]string {
	count := make([]map[string]int, nLabels) // texts of the label holding the phrase
	all := map[string]int{}
	total := make([]float64, nLabels)
	capital, seen := map[string]int{}, map[string]int{}
	textsPhrases := map[place][]string{}
	seenText := map[string]bool{}
	// A phrase counts once per text of a label, a sided one once per
	// text and side: a text that cites two works is two rows.
	type labelled struct {
		label        int
		text, phrase string
	}
	counted := map[labelled]bool{}
	for _, r := range rows {
		var ws []word // the text's words, read once when needed
		ps, ok := textsPhrases[r.place()]
		if !ok {
			ws = words(r.text)
			ps = r.phrasesOf(ws)
			textsPhrases[r.place()] = ps
		}
		if !seenText[r.text] {
			seenText[r.text] = true
			if ws == nil {
				ws = words(r.text)
			}
			for _, w := range ws {
				if w.mid {
					seen[w.lower]++
					if w.capital {
						capital[w.lower]++
					}
				}
			}
		}
		if count[r.label] == nil {
			count[r.label] = map[string]int{}
		}
		for _, p := range ps {
			key := labelled{r.label, r.text, p}
			if counted[key] {
				continue
			}
			counted[key] = true
			count[r.label][p]++
			all[p]++
			total[r.label]++
		}
	}
	name := func(p string) bool {
		for _, w := range words(p) {
			if 2*capital[w.lower] > seen[w.lower] {
				return true
			}
		}
		return false
	}
	sum := 0.0
	a0 := math.Inf(1) // the prior weighs as much as the smallest label's counts
	for _, t := range total {
		sum += t
		if t > 0 {
			a0 = min(a0, t)
		}
	}
	out := make([][]string, nLabels)
	for l := range nLabels {
		type cand struct {
			text   string
			z      float64
			in, of int
		}
		var cands []cand
		nl, nr := total[l], sum-total[l]
		for p, y := range count[l] {
			if y < minRows || skip[p] || !elsewhere(p) {
				continue
			}
			yr := float64(all[p] - y)
			a := a0 * float64(all[p]) / sum
			delta := math.Log((float64(y)+a)/(nl+a0-float64(y)-a)) - math.Log((yr+a)/(nr+a0-yr-a))
			z := delta / math.Sqrt(1/(float64(y)+a)+1/(yr+a))
			if z >= 2 {
				cands = append(cands, cand{p, z, y, all[p]})
			}
		}
		slices.SortFunc(cands, func(a, b cand) int { return cmp.Or(cmp.Compare(b.z, a.z), strings.Compare(a.text, b.text)) })
		var picked []cand
		for _, c := range cands {
			if len(picked) == perLabel {
				break
			}
			if name(c.text) || slices.ContainsFunc(picked, func(p cand) bool {
				return p.in == c.in && p.of == c.of && (strings.Contains(c.text, p.text) || strings.Contains(p.text, c.text))
			}) {
				continue
			}
			picked = append(picked, c)
			out[l] = append(out[l], c.text)
		}
	}
	return out
}

// induce picks the phrases of each fold (from the rows it fits on) and of
// the fit on all rows, and returns them by label (their union) and by
// fold. Each gold file is read on its own, so that a phrase is picked for
// how it tells labels apart within one corpus, not for the corpus it
// comes from (clinical rows judge more often than Athar's, so clinical
// topics would pass for judgements), and no phrase is picked for the
// file's most frequent label. Rows scored as intents (SciCite's, several
// roles right at once) do not say which role a phrase speaks for, and
// are left out.
func (m *model) induce(sets []dataset, o options) (map[string][]string, map[int]map[[2]string]bool) {
	skip := map[string]bool{}
	for _, c := range m.ls.Cues {
		skip[strings.ToLower(c.Text)] = true
	}
	fold, _ := assignFolds(sets, o)
	leftOuts := []int{-1}
	if len(fold) > 0 {
		for f := range o.folds {
			leftOuts = append(leftOuts, f)
		}
	}
	union := map[string][]string{}
	byFold := map[int]map[[2]string]bool{}
	cache := map[place][]string{}
	for _, f := range leftOuts {
		train := trainRows(sets, fold, f)
		byFold[f] = map[[2]string]bool{}
		// In how many distinct training texts of each gold file a phrase
		// occurs, whatever their labels.
		in := make([]map[string]int, len(sets))
		for di, d := range sets {
			in[di] = map[string]int{}
			seen := map[[2]string]bool{}
			for i, rw := range d.rows {
				if !train[[2]int{di, i}] {
					continue
				}
				r := m.lexRow(rw, o)
				ps, ok := cache[r.place()]
				if !ok {
					ps = r.phrasesOf(words(r.text))
					cache[r.place()] = ps
				}
				for _, p := range ps {
					if !seen[[2]string{r.text, p}] { // distinct texts
						seen[[2]string{r.text, p}] = true
						in[di][p]++
					}
				}
			}
		}
		fitted := 0
		for di := range sets {
			if len(in[di]) > 0 {
				fitted++
			}
		}
		for di, d := range sets {
			if d.task == classify.TaskIntent {
				continue
			}
			var rows []lexRow
			have := map[lexRow]bool{}
			n := make([]int, len(m.ls.Labels))
			for i, rw := range d.rows {
				r := m.lexRow(rw, o)
				if train[[2]int{di, i}] && !have[r] {
					have[r] = true
					rows = append(rows, r)
					n[r.label]++
				}
			}
			majority := slices.Index(n, slices.Max(n))
			// A phrase must be written in the other corpora too (in at
			// least as many texts): one corpus's topics (parsing models,
			// injections), common in the rows of a label because many of
			// them cite the same few works, are not how a judgement is
			// said. With one corpus to fit on, there is no other to ask.
			elsewhere := func(p string) bool {
				if fitted < 2 {
					return true
				}
				n := 0
				for dj := range sets {
					if dj != di {
						n += in[dj][p]
					}
				}
				return n >= o.induceMinRows
			}
			for l, ps := range inducePhrases(rows, len(m.ls.Labels), o.induce, o.induceMinRows, skip, elsewhere) {
				if l == majority {
					// What is left when nothing is judged (neutral,
					// background): its phrases are the corpus's topics
					// (decoder, corpus, inflammatory), not how a label is said.
					continue
				}
				label := m.ls.Labels[l]
				for _, p := range ps {
					byFold[f][[2]string{label, p}] = true
					if !slices.Contains(union[label], p) {
						union[label] = append(union[label], p)
					}
				}
			}
		}
	}
	return union, byFold
}

// lexRow is rw as the association test reads it: its text and label,
// and with -induce-sided the cited marker's place, when known.
func (m *model) lexRow(rw row, o options) lexRow {
	r := lexRow{text: rw.text, label: rw.gold[0]}
	if o.induceSided && rw.at != nil {
		r.at, r.sided = [2]int{rw.at[0], rw.at[1]}, true
	}
	return r
}

// source is a gold file and its use (useTrain, useDev or useCV).
type source struct{ use, path string }

// setup reads the rules, the task's rule file without its induced cues
// (a fit starts from the hand-written cues alone, so the same command on
// the file it wrote writes the same file), and the gold files; with
// o.induce it induces phrase cues for each fold and reads everything
// again with them added, so that each row's evidence says where they fire.
func setup(rulesDir, task string, sources []source, o options) (*model, []dataset, error) {
	rules, err := loadRules(rulesDir, task, nil)
	if err != nil {
		return nil, nil, err
	}
	read := func(rules *classify.Rules) (*model, []dataset, error) {
		ls, _ := labelSet(rules, task)
		m := newModel(ls)
		var sets []dataset
		for _, s := range sources {
			d, err := m.load(rules, task, s.use, s.path)
			if err != nil {
				return nil, nil, err
			}
			sets = append(sets, d)
		}
		return m, sets, nil
	}
	m, sets, err := read(rules)
	if err != nil || o.induce <= 0 {
		return m, sets, err
	}
	union, byFold := m.induce(sets, o)
	if rules, err = loadRules(rulesDir, task, union); err != nil {
		return nil, nil, err
	}
	if m, sets, err = read(rules); err != nil {
		return nil, nil, err
	}
	m.induced = map[int]bool{}
	for label, ps := range union {
		for _, p := range ps {
			m.induced[m.index[param{"cue", label, p}]] = true
		}
	}
	m.lexicon = lexicon{}
	for f, cues := range byFold {
		m.lexicon[f] = map[int]bool{}
		for c := range cues {
			m.lexicon[f][m.index[param{"cue", c[0], c[1]}]] = true
		}
	}
	return m, sets, nil
}

// labelSet is the task's label set and the file it is read from.
func labelSet(rules *classify.Rules, task string) (*classify.LabelSet, string) {
	switch task {
	case classify.TaskRole:
		return rules.Role, "roles.yaml"
	case classify.TaskPolarity:
		return rules.Polarity, "polarity.yaml"
	case classify.TaskPluralism:
		return rules.Pluralism, "pluralism.yaml"
	}
	return nil, ""
}

// loadRules reads the rules in dir with the task's rule file's induced
// blocks replaced by induced (each cue at weight 1; none when nil), by
// way of a copy of the folder: the classifier reads cues from files only.
func loadRules(dir, task string, induced map[string][]string) (*classify.Rules, error) {
	_, file := labelSet(&classify.Rules{}, task)
	if file == "" {
		return nil, fmt.Errorf("-task %q: want role, polarity or pluralism", task)
	}
	text, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil {
		return nil, err
	}
	weighed := map[string][]weighedCue{}
	for label, ps := range induced {
		for _, p := range ps {
			weighed[label] = append(weighed[label], weighedCue{p, 1})
		}
	}
	edited := withInduced(string(text), weighed)
	if edited == string(text) {
		return classify.LoadRules(dir)
	}
	tmp, err := os.MkdirTemp("", "tune-rules-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".yaml") {
			continue
		}
		b := []byte(edited)
		if e.Name() != file {
			if b, err = os.ReadFile(filepath.Join(dir, e.Name())); err != nil {
				return nil, err
			}
		}
		if err := os.WriteFile(filepath.Join(tmp, e.Name()), b, 0o644); err != nil {
			return nil, err
		}
	}
	return classify.LoadRules(tmp)
}

// weighedCue is an induced cue as written.
type weighedCue struct {
	text   string
	weight float64
}

// withInduced returns a rule file's text with its induced blocks
// replaced: by label, a block of cues after the label's last cue line
// (none where a label has no induced cue).
func withInduced(text string, induced map[string][]weighedCue) string {
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	var out []string
	block, label := "", ""
	last := -1 // where the label's last cue line is in out
	in := false
	flush := func() {
		cues := induced[label]
		if label == "" || len(cues) == 0 || last < 0 {
			return
		}
		add := []string{inducedBegin, inducedNote}
		for _, c := range cues {
			add = append(add, fmt.Sprintf("    %q: %s", c.text, num(c.weight)))
		}
		add = append(add, inducedEnd)
		out = slices.Insert(out, last+1, add...)
	}
	for _, line := range lines {
		switch {
		case line == inducedBegin:
			in = true
			continue
		case in:
			in = line != inducedEnd
			continue
		}
		if mm := reBlock.FindStringSubmatch(line); mm != nil {
			if block == "labels" {
				flush()
			}
			block, label, last = mm[1], "", -1
		} else if block == "labels" {
			if mm := reLabel.FindStringSubmatch(line); mm != nil {
				flush()
				label, last = mm[1], -1
			} else if reCue.MatchString(line) {
				last = len(out)
			}
		}
		out = append(out, line)
	}
	if block == "labels" {
		flush()
	}
	return strings.Join(out, "\n") + "\n"
}
