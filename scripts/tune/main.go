// Command tune fits the weights of one rule file to labelled dev data and,
// with -write, puts them back into the file (comments and order kept).
//
// The cues themselves are never invented here: a linguist writes them, and
// tune only weighs them. It runs the classifier once per row with every cue
// and section weight set to 1, so the evidence of a row says which cues fired
// and with what multiplier (near the cited marker, hedged, negated). Scores
// are linear in the weights, so the weights are fitted as a multinomial
// logistic regression: class-balanced (macro-F1 is what counts), each cue
// weight pulled towards 1 (a cue a linguist listed is worth 1 until the data
// says otherwise, so cues the data never shows keep weight 1) and kept
// non-negative (a cue is evidence for its label, never against it). Then
// the priors alone are searched for the best mean macro-F1. -folds k first
// reports k-fold cross-validated figures, the honest estimate of what the
// weights do on rows they were not fitted on.
//
//	go run ./scripts/tune -task polarity -gold ../shared/data/athar/dev.tsv,../shared/data/clinical/dev.jsonl -folds 5
package main

import (
	"bufio"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/citecrawl/citecrawl/classify"
	"github.com/citecrawl/citecrawl/record"
)

type options struct {
	lambda  float64 // L2 pull of cue weights towards 1
	balance float64 // 0: every row counts the same; 1: every class counts the same
	size    float64 // 0: every dataset counts the same; 1: in proportion to its rows
	iters   int
	seed    uint64 // of the folds
}

func main() {
	task := flag.String("task", "polarity", "role or polarity (role files under scicite are scored as intent)")
	gold := flag.String("gold", "", "comma-separated gold files (format from the path)")
	rulesDir := flag.String("rules", "configs/rules", "rules directory")
	folds := flag.Int("folds", 0, "report k-fold cross-validated macro-F1 first (0: skip)")
	write := flag.Bool("write", false, "write the fitted weights into the rule file")
	var o options
	flag.Float64Var(&o.lambda, "lambda", 0.0001, "pull of each cue weight towards 1 (L2)")
	flag.Float64Var(&o.balance, "balance", 0.85, "class balancing exponent (0..1)")
	flag.Float64Var(&o.size, "size", 0.75, "dataset size exponent (0: each gold file weighs the same, 1: by its rows)")
	flag.IntVar(&o.iters, "iters", 1500, "gradient steps")
	flag.Uint64Var(&o.seed, "seed", 1, "seed of the cross-validation folds")
	flag.Parse()
	if *gold == "" {
		fail(fmt.Errorf("-gold: name one or more labelled files, comma-separated"))
	}

	rules, err := classify.LoadRules(*rulesDir)
	if err != nil {
		fail(err)
	}
	ls, file := rules.Role, "roles.yaml"
	switch *task {
	case classify.TaskRole:
	case classify.TaskPolarity:
		ls, file = rules.Polarity, "polarity.yaml"
	default:
		fail(fmt.Errorf("task %q: tune fits role or polarity (pluralism picks labels by threshold, not by the best score)", *task))
	}
	m := newModel(ls)
	var sets []dataset
	for _, g := range strings.Split(*gold, ",") {
		t := *task
		if strings.Contains(g, "scicite") && t == classify.TaskRole {
			t = classify.TaskIntent
		}
		exs, err := classify.ReadGold(g, classify.GuessFormat(g), t)
		if err != nil {
			fail(err)
		}
		sets = append(sets, m.dataset(rules, t, filepath.Base(filepath.Dir(g)), exs))
	}

	fmt.Printf("rules as written: %s\n", m.describe(sets, m.theta))
	if *folds > 1 {
		fmt.Printf("%d-fold cross-validated: %s\n", *folds, m.crossValidate(sets, *folds, o))
	}
	theta := m.fit(sets, nil, o)
	fmt.Printf("fitted on all rows: %s\n", m.describe(sets, theta))
	if *write {
		path := filepath.Join(*rulesDir, file)
		if err := m.write(path, theta); err != nil {
			fail(err)
		}
		fmt.Println("wrote", path, "(change the version in rules.yaml)")
	}
}

// param is one weight of the rule file.
type param struct {
	kind  string // "prior", "section" or "cue"
	label string // the label it is written under
	key   string // section key or cue text
}

// feat says that param p adds v times its weight to label's score.
type feat struct {
	p, label int
	v        float64
}

type row struct {
	feats []feat
	gold  []int // labels that count as right (several for an intent)
}

type dataset struct {
	name   string
	task   string
	labels []string         // the task's labels
	of     func(int) string // model label -> task label
	rows   []row
}

type model struct {
	ls     *classify.LabelSet
	params []param
	index  map[param]int
	theta  []float64 // the weights as written
}

func newModel(ls *classify.LabelSet) *model {
	m := &model{ls: ls, index: map[param]int{}}
	add := func(p param, w float64) {
		if _, ok := m.index[p]; !ok {
			m.index[p] = len(m.params)
			m.params = append(m.params, p)
			m.theta = append(m.theta, w)
		}
	}
	for _, l := range ls.Labels {
		add(param{"prior", l, ""}, ls.Prior[l])
	}
	for _, sp := range ls.Sections {
		for i, l := range sp.Labels { // only the labels the author gave the section
			add(param{"section", l, sp.Key}, sp.Weights[i])
		}
	}
	for _, c := range ls.Cues {
		add(param{"cue", c.Label, c.Text}, c.Weight)
	}
	return m
}

// unit is the label set with no priors and every weight 1.
func (m *model) unit() *classify.LabelSet {
	u := *m.ls
	u.Prior = nil
	u.Cues = slices.Clone(m.ls.Cues)
	for i := range u.Cues {
		u.Cues[i].Weight = 1
	}
	u.Sections = slices.Clone(m.ls.Sections)
	for i, sp := range u.Sections {
		u.Sections[i].Weights = make([]float64, len(sp.Labels))
		for j := range sp.Weights {
			u.Sections[i].Weights[j] = 1
		}
	}
	return &u
}

func (m *model) dataset(rules *classify.Rules, task, name string, exs []classify.Example) dataset {
	r := *rules
	u := m.unit()
	var evidence func(e classify.Example) []record.Evidence
	switch task {
	case classify.TaskPolarity:
		r.Polarity = u
		c := classify.New(&r)
		evidence = func(e classify.Example) []record.Evidence {
			return own(c.Context(e.Text, e.Section, e.Span).Evidence, "polarity/")
		}
	default:
		r.Role = u
		c := classify.New(&r)
		evidence = func(e classify.Example) []record.Evidence {
			return own(c.Context(e.Text, e.Section, e.Span).Evidence, "roles/")
		}
	}
	d := dataset{name: name, task: task, of: func(i int) string { return m.ls.Labels[i] }}
	present := map[string]bool{}
	for _, e := range exs {
		present[e.Gold] = true
	}
	for _, l := range classify.TaskLabels(task) { // macro-F1 over the classes present, as eval does
		if present[l] {
			d.labels = append(d.labels, l)
		}
	}
	if task == classify.TaskIntent {
		d.of = func(i int) string { return classify.IntentOf(m.ls.Labels[i]) }
	}
	for _, e := range exs {
		var rw row
		for li := range m.ls.Labels {
			rw.feats = append(rw.feats, feat{m.index[param{"prior", m.ls.Labels[li], ""}], li, 1})
			if d.of(li) == e.Gold {
				rw.gold = append(rw.gold, li)
			}
		}
		for _, ev := range evidence(e) {
			li := slices.Index(m.ls.Labels, ev.Label)
			p := param{"cue", ev.Label, ev.Cue}
			switch {
			case strings.HasSuffix(ev.Rule, "/section"):
				p.kind = "section"
			case strings.Contains(ev.Rule, "negated-cue"): // the cue is written under the other side
				p.label = classify.Flip(ev.Label)
			}
			pi, ok := m.index[p]
			if !ok || li < 0 {
				fail(fmt.Errorf("evidence %+v matches no weight of the rule file", ev))
			}
			rw.feats = append(rw.feats, feat{pi, li, ev.Weight})
		}
		if len(rw.gold) == 0 {
			fmt.Fprintf(os.Stderr, "tune: %s line %d: gold label %q is none of the rule file's labels; row left out\n", name, e.Line, e.Gold)
			continue
		}
		d.rows = append(d.rows, rw)
	}
	return d
}

func own(ev []record.Evidence, prefix string) []record.Evidence {
	var out []record.Evidence
	for _, e := range ev {
		if strings.HasPrefix(e.Rule, prefix) {
			out = append(out, e)
		}
	}
	return out
}

func (m *model) scores(rw row, theta []float64, s []float64) {
	clear(s)
	for _, f := range rw.feats {
		s[f.label] += theta[f.p] * f.v
	}
}

// predict picks the best label; a tie goes to the label listed first, as
// the classifier does.
func (m *model) predict(rw row, theta []float64, s []float64) int {
	m.scores(rw, theta, s)
	best := 0
	for i := range s {
		if s[i] > s[best]+1e-9 {
			best = i
		}
	}
	return best
}

// macroF1 of one dataset's rows under theta (only rows where keep is true, when given).
func (m *model) macroF1(d dataset, theta []float64, keep func(int) bool) float64 {
	var gold, pred []string
	s := make([]float64, len(m.ls.Labels))
	for i, rw := range d.rows {
		if keep != nil && !keep(i) {
			continue
		}
		gold = append(gold, d.of(rw.gold[0]))
		pred = append(pred, d.of(m.predict(rw, theta, s)))
	}
	return classify.Score(d.task, d.labels, gold, pred).MacroF1
}

func (m *model) describe(sets []dataset, theta []float64) string {
	var parts []string
	for _, d := range sets {
		parts = append(parts, fmt.Sprintf("%s %.3f", d.name, m.macroF1(d, theta, nil)))
	}
	return "macro-F1 " + strings.Join(parts, ", ")
}

// fit returns weights fitted on the rows where train is true (all when nil).
func (m *model) fit(sets []dataset, train map[[2]int]bool, o options) []float64 {
	type wrow struct {
		row
		w float64
	}
	var rows []wrow
	total := 0.0
	for di, d := range sets {
		counts := map[int]int{}
		n := 0
		for i, rw := range d.rows {
			if train == nil || train[[2]int{di, i}] {
				counts[rw.gold[0]]++
				n++
			}
		}
		for i, rw := range d.rows {
			if train == nil || train[[2]int{di, i}] {
				// A dataset weighs n^size; within it, classes by balance.
				w := math.Pow(float64(n)/float64(counts[rw.gold[0]]*len(counts)), o.balance) * math.Pow(float64(n), o.size-1)
				rows = append(rows, wrow{rw, w})
				total += w
			}
		}
	}
	// Start from no knowledge of the file's current weights, so that a
	// fit does not depend on the one before it: cues at 1, the rest at 0.
	theta := make([]float64, len(m.params))
	for i, p := range m.params {
		if p.kind == "cue" {
			theta[i] = 1
		}
	}
	// Adam on the mean weighted log loss plus the L2 penalty.
	mom := make([]float64, len(theta))
	vel := make([]float64, len(theta))
	grad := make([]float64, len(theta))
	s := make([]float64, len(m.ls.Labels))
	const rate, b1, b2 = 0.05, 0.9, 0.999
	for it := 1; it <= o.iters; it++ {
		clear(grad)
		for _, rw := range rows {
			m.scores(rw.row, theta, s)
			mx := slices.Max(s)
			z, zg := 0.0, 0.0
			for i := range s {
				s[i] = math.Exp(s[i] - mx)
				z += s[i]
			}
			for _, g := range rw.gold {
				zg += s[g]
			}
			// d(-log P(gold))/d score_l = p_l - [l in gold] p_l / P(gold)
			for _, f := range rw.feats {
				p := s[f.label] / z
				d := p
				if slices.Contains(rw.gold, f.label) {
					d -= s[f.label] / zg
				}
				grad[f.p] += rw.w / total * d * f.v
			}
		}
		for i, p := range m.params {
			switch p.kind {
			case "cue": // a listed cue is worth 1 until the data says otherwise
				grad[i] += o.lambda * (theta[i] - 1)
			case "section":
				grad[i] += o.lambda * theta[i]
			}
			mom[i] = b1*mom[i] + (1-b1)*grad[i]
			vel[i] = b2*vel[i] + (1-b2)*grad[i]*grad[i]
			mh := mom[i] / (1 - math.Pow(b1, float64(it)))
			vh := vel[i] / (1 - math.Pow(b2, float64(it)))
			theta[i] -= rate * mh / (math.Sqrt(vh) + 1e-8)
			if p.kind != "prior" && theta[i] < 0 {
				theta[i] = 0
			}
		}
	}
	m.tunePriors(sets, train, theta)
	for i := range theta {
		theta[i] = math.Round(theta[i]*100) / 100
	}
	return theta
}

// tunePriors moves the priors alone, by coordinate search, to the best
// mean macro-F1 on the training rows: the log loss balances classes, but
// macro-F1 rewards a little more daring on rare ones.
func (m *model) tunePriors(sets []dataset, train map[[2]int]bool, theta []float64) {
	score := func() float64 {
		sum := 0.0
		for di, d := range sets {
			sum += m.macroF1(d, theta, func(i int) bool { return train == nil || train[[2]int{di, i}] })
		}
		return sum / float64(len(sets))
	}
	best := score()
	for range 3 {
		for i, p := range m.params {
			if p.kind != "prior" {
				continue
			}
			for _, d := range []float64{-0.4, -0.2, -0.1, -0.05, 0.05, 0.1, 0.2, 0.4} {
				old := theta[i]
				theta[i] += d
				if s := score(); s > best+1e-4 {
					best = s
				} else {
					theta[i] = old
				}
			}
		}
	}
}

// crossValidate fits on k-1 folds and scores the held-out fold, k times,
// and reports the macro-F1 of all held-out predictions per dataset.
func (m *model) crossValidate(sets []dataset, k int, o options) string {
	rng := rand.New(rand.NewPCG(o.seed, 2))
	fold := map[[2]int]int{}
	for di, d := range sets {
		for _, i := range rng.Perm(len(d.rows)) {
			fold[[2]int{di, i}] = len(fold) % k
		}
	}
	preds := make([][]int, len(sets))
	for di, d := range sets {
		preds[di] = make([]int, len(d.rows))
	}
	s := make([]float64, len(m.ls.Labels))
	for f := range k {
		train := map[[2]int]bool{}
		for key, fk := range fold {
			if fk != f {
				train[key] = true
			}
		}
		theta := m.fit(sets, train, o)
		for di, d := range sets {
			for i, rw := range d.rows {
				if fold[[2]int{di, i}] == f {
					preds[di][i] = m.predict(rw, theta, s)
				}
			}
		}
	}
	var parts []string
	for di, d := range sets {
		var gold, pred []string
		for i, rw := range d.rows {
			gold = append(gold, d.of(rw.gold[0]))
			pred = append(pred, d.of(preds[di][i]))
		}
		parts = append(parts, fmt.Sprintf("%s %.3f", d.name, classify.Score(d.task, d.labels, gold, pred).MacroF1))
	}
	return "macro-F1 " + strings.Join(parts, ", ")
}

var (
	reLabel   = regexp.MustCompile(`^  ([a-z_]+):\s*$`)
	reCue     = regexp.MustCompile(`^(    )("(?:[^"\\]|\\.)*")(:\s*)(-?[0-9.]+)(.*)$`)
	reSection = regexp.MustCompile(`^  ("(?:[^"\\]|\\.)*"):\s*\{.*\}(.*)$`)
	reBlock   = regexp.MustCompile(`^([a-z_]+):\s*$`)
)

// write puts theta into the rule file at path, line by line, so that
// comments, order and layout stay as the author left them. The prior block
// is rewritten whole; a scale block, if any, is dropped (the weights are
// now absolute).
func (m *model) write(path string, theta []float64) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var out []string
	block, label := "", ""
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	for sc.Scan() {
		line := sc.Text()
		if mm := reBlock.FindStringSubmatch(line); mm != nil {
			block = mm[1]
			if block == "prior" {
				out = append(out, line)
				for i, p := range m.params {
					if p.kind == "prior" && theta[i] != 0 {
						out = append(out, fmt.Sprintf("  %s: %s", p.label, num(theta[i])))
					}
				}
				continue
			}
			if block == "scale" {
				continue
			}
			out = append(out, line)
			continue
		}
		switch block {
		case "prior", "scale":
			if strings.HasPrefix(line, " ") {
				continue // replaced above
			}
		case "labels":
			if mm := reLabel.FindStringSubmatch(line); mm != nil {
				label = mm[1]
			} else if mm := reCue.FindStringSubmatch(line); mm != nil {
				text, err := strconv.Unquote(mm[2])
				if err != nil {
					return fmt.Errorf("%s: %q: %w", path, line, err)
				}
				if i, ok := m.index[param{"cue", label, text}]; ok {
					line = mm[1] + mm[2] + mm[3] + num(theta[i]) + mm[5]
				}
			}
		case "sections":
			if mm := reSection.FindStringSubmatch(line); mm != nil {
				key, err := strconv.Unquote(mm[1])
				if err != nil {
					return fmt.Errorf("%s: %q: %w", path, line, err)
				}
				var ws []string
				for i, p := range m.params {
					if p.kind == "section" && p.key == key && theta[i] != 0 {
						ws = append(ws, fmt.Sprintf("%s: %s", p.label, num(theta[i])))
					}
				}
				line = fmt.Sprintf("  %s: {%s}%s", mm[1], strings.Join(ws, ", "), mm[2])
			}
		}
		out = append(out, line)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(strings.Join(out, "\n")+"\n"), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func num(x float64) string { return strconv.FormatFloat(x, 'f', -1, 64) }

func fail(err error) {
	fmt.Fprintln(os.Stderr, "tune:", err)
	os.Exit(2)
}
