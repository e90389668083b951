// Command tune fits the weights of one rule file to labelled data and,
// with -write, puts them back into the file (comments and order kept).
//
// The cues are written by a linguist, and tune weighs them; with -induce
// it also reads phrase cues off the rows it fits on (lexicon.go), kept in
// their own block of the rule file and pulled towards 0. It runs the
// classifier once per row with every cue and section weight set to 1, so
// the evidence of a row says which cues fired
// and with what multiplier (near the cited marker, hedged, negated, after a
// contrast word or in a concession, in the
// paper's own work). Scores are linear in the weights, so the weights are
// fitted as a multinomial logistic regression: class-balanced (macro-F1 is
// what counts), each cue weight pulled towards 1 (a cue a linguist listed is
// worth 1 until the data says otherwise) and kept non-negative (a cue is
// evidence for its label, never against it). Section weights are fitted
// too, signed and from 0, when some fitted row names its section (SciCite
// dev as a -cv file); else they stay as written. Then the priors alone are
// searched for the best macro-F1 on the training rows.
//
// Every figure it prints is on rows the weights were not fitted on:
//
//   - -train files are fitted on and never scored;
//   - -dev files are never fitted on: the settings (-lambda, -balance,
//     with -grid), the scale of hand-written section weights, the
//     temperature and calibration maps and, for pluralism, the secondary
//     threshold are chosen on them, and they are scored with the weights
//     fitted on the training rows;
//   - -cv files (corpora without a train split, and dev files whose rows
//     carry what no train file has, such as SciCite's section names) are
//     scored by k-fold cross-validation: fitted on the training rows and
//     k-1 folds, scored on the fold left out; the weights written are
//     fitted on all their rows.
//
// The temperature T and the calibration maps (a tag's confidence is
// sigmoid(slope*logit(p) + intercept) of p = softmax(score/T); one map per
// task, SciCite's intents having their own, one for sentences whose cited
// marker is unknown, and with -by-label one per predicted label) are
// fitted last, on the held-out scores of the dev and cross-validated rows
// (with -cal-train the maps also on held-out scores of the train rows),
// by the least log loss; the ones written are fitted on all those rows.
// Macro-F1 and expected calibration error are then printed per corpus,
// each row's tag and confidence from the temperature and maps fitted
// without its fold (cross-fitting), so that no ECE is measured on the
// rows its calibration was fitted on; a dev file some of whose sentences
// a train file has is also scored on its other rows alone. With -cv-train
// the train rows of the file's task are scored too, by k-fold
// cross-validation grouped by sentence (trainfolds.go): ACL-ARC's 114 dev
// rows are too few for a 10-bin ECE to tell 0.05 from noise, its 1,588
// train rows are not.
//
//	go run ./scripts/tune -task role -train ../shared/data/scicite/train.jsonl,../shared/data/acl-arc/train.jsonl \
//	    -dev ../shared/data/acl-arc/dev.jsonl -cv ../shared/data/act-3c/dev.csv,../shared/data/scicite/dev.jsonl
package main

import (
	"bufio"
	"cmp"
	"flag"
	"fmt"
	"maps"
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
	lambda      float64 // L2 pull of cue weights towards 1
	balance     float64 // 0: every row counts the same; 1: every class counts the same
	size        float64 // 0: every dataset counts the same; 1: in proportion to its rows
	iters       int
	folds       int
	seed        uint64  // of the folds
	reliability bool    // print each corpus's reliability table
	errors      int     // print up to this many held-out mistakes per corpus
	minWeight   float64 // cue weights fitted under this are written as 0
	byLabel     bool    // a calibration map per predicted label
	maxSlope    float64 // of the calibration maps
	minPerLabel int     // held-out tags a label needs for its own map (-by-label)
	calTrain    bool    // calibrate on held-out scores of train rows too
	cvTrain     bool    // also score the train rows by k-fold cross-validation grouped by sentence
	// The map for sentences whose cited marker is unknown: its steepest
	// slope (0: maxSlope) and the share of its fit the dev rows weigh
	// together, against the train rows' held-out scores (0: every row
	// the same).
	maxSlopeNoMarker float64
	devShareNoMarker float64
	// The induced lexicon (lexicon.go): at most induce phrases per label,
	// each in at least induceMinRows texts of its label, their weights
	// pulled towards 0 by induceLambda.
	induce        int
	induceMinRows int
	induceLambda  float64
	induceSided   bool // also phrases on one side of the cited marker ("before-cited: our method")
}

// Uses of a gold file.
const (
	useTrain = "train"
	useDev   = "dev"
	useCV    = "cv"
)

func main() {
	task := flag.String("task", "polarity", "role, polarity or pluralism (role files under scicite are scored as intent)")
	train := flag.String("train", "", "comma-separated gold files to fit on (never scored)")
	dev := flag.String("dev", "", "comma-separated gold files to choose settings on and score (never fitted on)")
	cv := flag.String("cv", "", "comma-separated gold files without a train split: scored by k-fold cross-validation, all rows fitted on for -write")
	rulesDir := flag.String("rules", "configs/rules", "rules directory")
	write := flag.Bool("write", false, "write the fitted weights and temperature into the rule file")
	writeCal := flag.Bool("write-calibration", false, "write only the calibration maps into the rule file (weights, priors, temperature and secondary stay as written)")
	grid := flag.Bool("grid", false, "choose -lambda and -balance among a few values by the mean held-out macro-F1")
	var o options
	flag.Float64Var(&o.lambda, "lambda", 0.0001, "pull of each cue weight towards 1 (L2)")
	flag.Float64Var(&o.balance, "balance", 0.85, "class balancing exponent (0..1)")
	flag.Float64Var(&o.size, "size", 0.75, "dataset size exponent (0: each gold file weighs the same, 1: by its rows)")
	flag.IntVar(&o.iters, "iters", 1500, "gradient steps")
	flag.IntVar(&o.folds, "folds", 5, "folds of the cross-validation of -cv files")
	flag.Uint64Var(&o.seed, "seed", 1, "seed of the cross-validation folds")
	flag.BoolVar(&o.reliability, "reliability", false, "print each corpus's 10-bin reliability table")
	flag.Float64Var(&o.minWeight, "min-weight", 0.1, "cue weights fitted under this become 0 (never looked for: faster)")
	flag.BoolVar(&o.byLabel, "by-label", false, "fit a calibration map per predicted label (each with at least -min-per-label held-out tags; the others share one)")
	flag.IntVar(&o.minPerLabel, "min-per-label", 100, "held-out tags a label needs for a map of its own (-by-label); the other labels share one")
	flag.Float64Var(&o.maxSlope, "max-slope", 2, "steepest calibration slope tried (a small set's map, fitted on a few hundred rows, overfits when steep)")
	flag.Float64Var(&o.maxSlopeNoMarker, "max-slope-without-marker", 0, "steepest slope of the map for sentences whose cited marker is unknown (0: -max-slope)")
	flag.Float64Var(&o.devShareNoMarker, "dev-share-without-marker", 0, "share (0..1) of the map for sentences without a marker that the dev rows weigh together, the train rows' held-out scores (-cal-train) the rest (0: every row the same)")
	flag.BoolVar(&o.calTrain, "cal-train", false, "give train rows of the file's task held-out scores (k more fits, folds grouped by sentence) and fit the calibration maps on them too")
	flag.BoolVar(&o.cvTrain, "cv-train", false, "also score the train rows of the file's task by k-fold cross-validation grouped by sentence, each tag's confidence from maps fitted without its fold (k more fits, none with -cal-train, whose folds these are)")
	flag.IntVar(&o.errors, "errors", 0, "print up to N held-out mistakes per corpus (gold, predicted, text)")
	flag.IntVar(&o.induce, "induce", 0, "induce up to N phrase cues per label from each fold's training rows (0: none)")
	flag.IntVar(&o.induceMinRows, "induce-min-rows", 8, "an induced phrase occurs in at least this many distinct texts of its label")
	flag.Float64Var(&o.induceLambda, "induce-lambda", 0.01, "pull of each induced cue weight towards 0 (L2)")
	flag.BoolVar(&o.induceSided, "induce-sided", false, "also induce phrases on one side of the cited marker (before-cited:, after-cited:) where rows give its place")
	flag.Parse()
	if *dev == "" && *cv == "" {
		fail(fmt.Errorf("name rows to score: -dev (with -train) or -cv files, comma-separated"))
	}
	if o.devShareNoMarker < 0 || o.devShareNoMarker >= 1 {
		fail(fmt.Errorf("-dev-share-without-marker %g: give a share from 0 up to, not including, 1", o.devShareNoMarker))
	}
	if o.cvTrain && o.induce > 0 {
		// The induced cues of the train rows' folds would be read off every row.
		fail(fmt.Errorf("-cv-train with -induce: the induced cues are not picked per train fold"))
	}
	if o.folds < 2 && (*cv != "" || o.cvTrain) {
		fail(fmt.Errorf("-folds %d: cross-validation needs at least 2", o.folds))
	}

	var sources []source
	for _, u := range []struct{ use, files string }{{useTrain, *train}, {useDev, *dev}, {useCV, *cv}} {
		if u.files == "" {
			continue
		}
		for _, g := range strings.Split(u.files, ",") {
			sources = append(sources, source{u.use, g})
		}
	}
	m, sets, err := setup(*rulesDir, *task, sources, o)
	if err != nil {
		fail(err)
	}
	_, file := labelSet(&classify.Rules{}, *task)

	if *grid {
		o = m.chooseSettings(sets, o)
	}
	res := m.evaluate(sets, o)
	fmt.Printf("settings: -lambda %g -balance %g -size %g -iters %d; section weights as written times %g (best on dev);\n"+
		"  temperature %g, calibration %s (least log loss on the held-out rows; each figure below uses the ones fitted without its fold)\n",
		o.lambda, o.balance, o.size, o.iters, res.sectionScale, res.cal.temperature, res.cal.describe())
	for _, line := range res.lines {
		fmt.Println(line)
	}
	if o.induce > 0 {
		fmt.Printf("induced: %d phrase cues over the folds, %d with a weight in the fit on all rows\n", len(m.induced), m.countInduced(res.theta))
	}
	if *write {
		path := filepath.Join(*rulesDir, file)
		if err := m.write(path, res.theta, res); err != nil {
			fail(err)
		}
		fmt.Println("wrote", path, "(change the version in rules.yaml)")
	} else if *writeCal {
		path := filepath.Join(*rulesDir, file)
		ls := m.ls
		if o.induce > 0 {
			// The induced cues are read at weight 1 and fitted again: only
			// -write writes them back as fitted.
			fail(fmt.Errorf("-write-calibration with -induce: use -write"))
		}
		if res.cal.temperature != ls.Temperature {
			// The maps take the probabilities at the fitted temperature.
			fail(fmt.Errorf("-write-calibration: the fitted temperature %g is not %s's %g (its weights are not those this command fits): use -write", res.cal.temperature, file, ls.Temperature))
		}
		res.cal.secondary = ls.Secondary
		if err := m.write(path, m.theta, res); err != nil {
			fail(err)
		}
		fmt.Println("wrote the calibration maps of", path, "(change the version in rules.yaml)")
	}
}

// load reads one gold file for a use (train, dev or cv).
func (m *model) load(rules *classify.Rules, task, use, path string) (dataset, error) {
	t := task
	if strings.Contains(path, "scicite") && t == classify.TaskRole {
		t = classify.TaskIntent
	}
	exs, err := classify.ReadGold(path, classify.GuessFormat(path), t)
	if err != nil {
		return dataset{}, err
	}
	d := m.dataset(rules, t, filepath.Base(filepath.Dir(path))+"/"+strings.TrimSuffix(filepath.Base(path), filepath.Ext(path)), exs)
	d.use = use
	return d, nil
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
	feats  []feat
	gold   []int    // labels that count as right (several for an intent)
	set    []string // pluralism: every category that applies
	text   string   // for -errors
	marker bool     // the cited marker's place is known (span given)
	at     []int    // where the cited marker is in text (bytes), when known
}

type dataset struct {
	name     string
	use      string // useTrain, useDev or useCV
	sections bool   // some rows name their section
	task     string
	labels   []string         // the task's labels
	of       func(int) string // model label -> task label
	rows     []row
}

type model struct {
	ls     *classify.LabelSet
	params []param
	index  map[param]int
	theta  []float64 // the weights as written
	// induced are the params of induced cues; lexicon says which of them
	// each fold may fit (the others stay 0).
	induced map[int]bool
	lexicon lexicon
}

// countInduced is how many induced cues theta weighs.
func (m *model) countInduced(theta []float64) int {
	n := 0
	for i := range m.induced {
		if theta[i] > 0 {
			n++
		}
	}
	return n
}

func newModel(ls *classify.LabelSet) *model {
	// The model's labels are in alphabetical order, not the file's (highest
	// prior first): a fit then does not depend on the priors of the fit
	// before it, whose order breaks ties, so running the same command on
	// the file it wrote writes the same file again.
	canon := *ls
	canon.Labels = slices.Sorted(slices.Values(ls.Labels))
	ls = &canon
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
	case classify.TaskPluralism:
		r.Pluralism = u
		c := classify.New(&r)
		evidence = func(e classify.Example) []record.Evidence {
			return c.Pluralism(e.Title, e.Summary, "").Evidence
		}
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
		d.sections = d.sections || e.Section != ""
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
		rw := row{set: e.GoldSet, text: e.Text, marker: classify.MarkerKnown(e.Span) || task == classify.TaskPluralism}
		if e.Title != "" {
			rw.text = e.Title + " . " + e.Summary
		} else if classify.MarkerKnown(e.Span) {
			rw.at = []int{runeOffset(e.Text, e.Span[0]), runeOffset(e.Text, e.Span[1])}
		}
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

// decide is the task label of a row's scores: the best label's, or for
// an intent the intent whose roles together are the most probable
// (softmax at temperature t), as classify does.
func (d dataset) decide(s []float64, t float64) string {
	if d.task != classify.TaskIntent {
		return d.of(argmax(s))
	}
	sum := map[string]float64{}
	for i, p := range softmax(s, t) {
		sum[d.of(i)] += p
	}
	best := d.labels[0]
	for _, l := range classify.TaskLabels(d.task) {
		if sum[l] > sum[best]+1e-9 {
			best = l
		}
	}
	return best
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

// macroF1 of one dataset's rows under theta (only rows where keep is true, when given).
func (m *model) macroF1(d dataset, theta []float64, keep func(int) bool) float64 {
	var gold, pred []string
	s := make([]float64, len(m.ls.Labels))
	for i, rw := range d.rows {
		if keep != nil && !keep(i) {
			continue
		}
		gold = append(gold, d.of(rw.gold[0]))
		m.scores(rw, theta, s)
		pred = append(pred, d.decide(s, 1))
	}
	return classify.Score(d.task, d.labels, gold, pred).MacroF1
}

// fit returns weights fitted on the rows where train is true (all when
// nil), with the induced cues of the fold leftOut (-1: of all rows).
func (m *model) fit(sets []dataset, train map[[2]int]bool, leftOut int, o options) []float64 {
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
	// Section weights are fitted, signed and from 0, when some fitted row
	// names its section (SciCite dev, fitted by cross-validation); else
	// they stay as written and are only scaled on dev (chooseSectionScale):
	// SciCite's and ACL-ARC's train files are bare sentences.
	fitSections := slices.ContainsFunc(rows, func(rw wrow) bool {
		return slices.ContainsFunc(rw.feats, func(f feat) bool { return m.params[f.p].kind == "section" })
	})
	// Start from no knowledge of the file's current weights, so that a
	// fit does not depend on the one before it: cues at 1, priors at 0.
	theta := make([]float64, len(m.params))
	for i, p := range m.params {
		switch {
		case m.induced[i]: // the data proposed it: worth nothing until the data says otherwise
		case p.kind == "cue":
			theta[i] = 1
		case p.kind == "section":
			if !fitSections {
				theta[i] = m.theta[i]
			}
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
			switch {
			case m.induced[i]:
				if !m.lexicon[leftOut][i] {
					continue // not induced from this fold's rows: stays 0
				}
				grad[i] += o.induceLambda * theta[i]
			case p.kind == "cue": // a listed cue is worth 1 until the data says otherwise
				grad[i] += o.lambda * (theta[i] - 1)
			case p.kind == "section":
				if !fitSections {
					continue
				}
				grad[i] += o.lambda * theta[i] // no section says anything until the data does
			}
			mom[i] = b1*mom[i] + (1-b1)*grad[i]
			vel[i] = b2*vel[i] + (1-b2)*grad[i]*grad[i]
			mh := mom[i] / (1 - math.Pow(b1, float64(it)))
			vh := vel[i] / (1 - math.Pow(b2, float64(it)))
			theta[i] -= rate * mh / (math.Sqrt(vh) + 1e-8)
			if p.kind == "cue" && theta[i] < 0 {
				theta[i] = 0
			}
		}
	}
	// A cue fitted to almost nothing is set to nothing: it is then never
	// looked for, which is what keeps tagging fast.
	for i, p := range m.params {
		if p.kind == "cue" && theta[i] < o.minWeight {
			theta[i] = 0
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

// result is what evaluate measures: the weights fitted on every row that
// may be fitted on, the temperature and (pluralism) secondary threshold
// chosen on the held-out rows, and a line of figures per scored corpus.
type result struct {
	theta        []float64
	cal          calibration // fitted on every held-out row: the one written
	sectionScale float64     // what the section weights as written were multiplied by
	mean         float64     // mean held-out macro-F1 over the scored corpora
	figures      []figure
	lines        []string
}

// figure is what one scored corpus measured on its held-out rows.
type figure struct {
	name            string
	macroF1, ece    float64
	vsNone, microF1 float64 // pluralism
}

// evaluate scores every dev and cv row with weights that were not fitted
// on it: cv rows by k-fold cross-validation (fitted on the train rows and
// the other folds), dev rows by the fit on all train and cv rows, which
// is also the fit it returns.
func (m *model) evaluate(sets []dataset, o options) result {
	heldOut := make([][][]float64, len(sets))
	for di, d := range sets {
		heldOut[di] = make([][]float64, len(d.rows))
	}
	fold, rng := assignFolds(sets, o)
	rows := func(leftOut int) map[[2]int]bool { return trainRows(sets, fold, leftOut) }
	if len(fold) > 0 {
		for f := range o.folds {
			theta := m.fit(sets, rows(f), f, o)
			for key, fk := range fold {
				if fk == f {
					heldOut[key[0]][key[1]] = m.scoreVec(sets[key[0]].rows[key[1]], theta)
				}
			}
		}
	}
	all := rows(-1)
	if len(all) == 0 {
		fail(fmt.Errorf("no rows to fit on: give -train or -cv files"))
	}
	res := result{theta: m.fit(sets, all, -1, o)}
	res.sectionScale = m.chooseSectionScale(sets, res.theta)
	for di, d := range sets {
		if d.use == useDev {
			for i, rw := range d.rows {
				heldOut[di][i] = m.scoreVec(rw, res.theta)
			}
		}
	}
	// The temperature, calibration maps and (pluralism) secondary threshold
	// are fitted on held-out scores. The ones written are fitted on all of
	// them; the figures printed use, for each row, the ones fitted on the
	// other folds' rows (cross-fitting), so that no figure is measured on
	// the rows its calibration was fitted on.
	calFold := map[[2]int]int{}
	for di, d := range sets {
		for i := range d.rows {
			if heldOut[di][i] == nil {
				continue
			}
			if f, ok := fold[[2]int{di, i}]; ok {
				calFold[[2]int{di, i}] = f
			} else {
				calFold[[2]int{di, i}] = rng.IntN(o.folds)
			}
		}
	}
	m.trainHeldOut(sets, heldOut, all, o)
	res.cal = m.fitCalibration(sets, heldOut, nil, o)
	perFold := make([]calibration, o.folds)
	for f := range o.folds {
		perFold[f] = m.fitCalibration(sets, heldOut, func(di, i int) bool {
			g, ok := calFold[[2]int{di, i}]
			return !ok || g != f // train rows calibrate every fold: they are never scored
		}, o)
	}
	// Each scored row's label, confidence (by the calibration fitted
	// without its fold) and whether it is right.
	type scoredSet struct {
		gold, pred        []string
		conf              []float64
		right             []bool
		agree, tp, fp, fn int
		shown             int
		mistakes          []string
	}
	ss := make([]scoredSet, len(sets))
	for di, d := range sets {
		if d.use == useTrain {
			continue
		}
		s := &ss[di]
		for i, rw := range d.rows {
			cal := perFold[calFold[[2]int{di, i}]]
			g := d.of(rw.gold[0])
			l, conf := cal.tag(d, rw, heldOut[di][i])
			s.gold, s.pred = append(s.gold, g), append(s.pred, l)
			s.conf, s.right = append(s.conf, conf), append(s.right, g == l)
			if g != l && s.shown < o.errors {
				s.shown++
				s.mistakes = append(s.mistakes, fmt.Sprintf("    gold %s, predicted %s: %.200s", g, l, rw.text))
			}
			if rw.set != nil {
				if (g == record.PluralismNone) == (l == record.PluralismNone) {
					s.agree++
				}
				p := softmax(heldOut[di][i], cal.temperature)
				a, b, c := setMatch(rw.set, m.labelSet(p, argmax(heldOut[di][i]), cal.secondary))
				s.tp, s.fp, s.fn = s.tp+a, s.fp+b, s.fn+c
			}
		}
	}
	trainText := map[string]bool{}
	for _, d := range sets {
		if d.use == useTrain {
			for _, rw := range d.rows {
				trainText[rw.text] = true
			}
		}
	}
	scored := 0
	for di, d := range sets {
		if d.use == useTrain {
			continue
		}
		s := &ss[di]
		gold, pred, right := s.gold, s.pred, s.right
		agree, tp, fp, fn := s.agree, s.tp, s.fp, s.fn
		how := "dev, never fitted on"
		if d.use == useCV {
			how = fmt.Sprintf("%d-fold cross-validated, seed %d", o.folds, o.seed)
		}
		fig, line, bins := scoreFigure(d, d.name, d.name, how, gold, pred, s.conf, right)
		if tp > 0 {
			pr, rc := float64(tp)/float64(tp+fp), float64(tp)/float64(tp+fn)
			fig.vsNone, fig.microF1 = float64(agree)/float64(len(d.rows)), 2*pr*rc/(pr+rc)
			line += fmt.Sprintf("  pluralism-vs-none accuracy %.3f  label-set micro-F1 %.3f",
				fig.vsNone, fig.microF1)
		}
		res.figures = append(res.figures, fig)
		res.lines = append(res.lines, line)
		if d.use == useDev {
			if fig, l := unseen(d, s.gold, s.pred, s.conf, s.right, trainText); l != "" {
				res.figures = append(res.figures, fig)
				res.lines = append(res.lines, l)
			}
		}
		res.lines = append(res.lines, s.mistakes...)
		if o.reliability {
			res.lines = append(res.lines, reliabilityLines(bins)...)
		}
		res.mean += fig.macroF1
		scored++
	}
	res.mean /= float64(max(scored, 1))
	if o.cvTrain { // not in res.mean: -grid chooses on the dev and cv rows alone
		figs, lines := m.crossValidateTrain(sets, heldOut, all, o)
		res.figures, res.lines = append(res.figures, figs...), append(res.lines, lines...)
	}
	return res
}

// unseen is the figures of a dev file's rows whose sentence is in no
// train file, and their line ("" when every row's is, or none's): ACL-ARC's
// dev rows share a third of their sentences with its train file (one
// sentence cites several works, each a row), and those rows are right far
// more often (0.71 against 0.58), so they say how well the weights do on
// text they saw rather than on new text. Its name is the file's with
// "/unseen" added.
func unseen(d dataset, gold, pred []string, conf []float64, right []bool, trainText map[string]bool) (figure, string) {
	var g, p []string
	var c []float64
	var r []bool
	for i, rw := range d.rows {
		if !trainText[rw.text] {
			g, p, c, r = append(g, gold[i]), append(p, pred[i]), append(c, conf[i]), append(r, right[i])
		}
	}
	if len(g) == 0 || len(g) == len(d.rows) {
		return figure{}, ""
	}
	fig, line, _ := scoreFigure(d, d.name+"/unseen", "", fmt.Sprintf("%d rows whose sentence no train row has", len(g)), g, p, c, r)
	return fig, line
}

// scoreFigure scores d's tags pred (with their confidences conf, and
// whether each is right) against gold: the figure named name, its line
// (column: the name printed; how: how its rows were held out) and the
// reliability table's bins.
func scoreFigure(d dataset, name, column, how string, gold, pred []string, conf []float64, right []bool) (figure, string, []classify.Bin) {
	fig := figure{name: name, macroF1: classify.Score(d.task, d.labels, gold, pred).MacroF1}
	var bins []classify.Bin
	fig.ece, bins = classify.Calibration(conf, right)
	line := fmt.Sprintf("%-22s %-34s macro-F1 %.3f  ECE %.3f (calibrated: %.3f)", column, "("+how+")", fig.macroF1, fig.ece, calibratedECE(conf, eceDraws))
	return fig, line, bins
}

// reliabilityLines are the lines of a reliability table's bins that hold tags.
func reliabilityLines(bins []classify.Bin) []string {
	var lines []string
	for _, b := range bins {
		if b.N > 0 {
			lines = append(lines, fmt.Sprintf("    confidence %.1f-%.1f: %5d tags, mean confidence %.3f, accuracy %.3f", b.Lo, b.Hi, b.N, b.Confidence, b.Accuracy))
		}
	}
	return lines
}

// eceDraws is how many times calibratedECE draws the tags' rightness.
const eceDraws = 1000

// calibratedECE is the mean expected calibration error (10 bins) of a
// perfectly calibrated tagger with these confidences: each tag right with
// the chance its confidence says, drawn draws times (seeded, so the
// figure is the same every run). On a few rows the binned ECE is far
// from 0 even then (ACL-ARC's 114 dev rows: about 0.06, over 0.05 in
// two draws of three), which says how much of a measured ECE is noise.
func calibratedECE(conf []float64, draws int) float64 {
	if len(conf) == 0 || draws <= 0 {
		return 0
	}
	rng := rand.New(rand.NewPCG(1, 1))
	right := make([]bool, len(conf))
	sum := 0.0
	for range draws {
		for i, p := range conf {
			right[i] = rng.Float64() < p
		}
		e, _ := classify.Calibration(conf, right)
		sum += e
	}
	return sum / float64(draws)
}

// trainHeldOut gives the rows of train files of the file's own task
// (not SciCite's intents) held-out scores, from k fits each without one
// fold of them (and with every other row of all): they are never scored,
// but they give the calibration maps many more rows than the dev files
// (ACL-ARC: 1,588 train rows against 114 dev rows, and the only rows
// whose cited marker is unknown besides those 114). The folds are grouped
// by sentence (groupedFolds): dealt row by row, a row would be scored by
// weights fitted on its sentence's twins and be right more often than
// new text, and the maps fitted on such scores are overconfident.
func (m *model) trainHeldOut(sets []dataset, heldOut [][][]float64, all map[[2]int]bool, o options) {
	if !o.calTrain {
		return
	}
	fold := groupedFolds(sets, o)
	// With -induce, the cues induced from every row: these scores only
	// fit the maps, never a figure.
	m.scoreFolds(sets, all, fold, heldOut, o)
}

// scoreFolds gives each row of fold, in scores, what weights fitted on
// every row of all outside its fold score it.
func (m *model) scoreFolds(sets []dataset, all map[[2]int]bool, fold map[[2]int]int, scores [][][]float64, o options) {
	if len(fold) == 0 {
		return
	}
	for f := range o.folds {
		train := map[[2]int]bool{}
		for key := range all {
			if g, ok := fold[key]; !ok || g != f {
				train[key] = true
			}
		}
		theta := m.fit(sets, train, -1, o)
		for key, g := range fold {
			if g == f {
				scores[key[0]][key[1]] = m.scoreVec(sets[key[0]].rows[key[1]], theta)
			}
		}
	}
}

// assignFolds deals the rows of the -cv files into o.folds folds at
// random (seeded), and returns the generator to go on with.
func assignFolds(sets []dataset, o options) (map[[2]int]int, *rand.Rand) {
	fold := map[[2]int]int{}
	rng := rand.New(rand.NewPCG(o.seed, 2))
	for di, d := range sets {
		if d.use == useCV {
			for _, i := range rng.Perm(len(d.rows)) {
				fold[[2]int{di, i}] = len(fold) % o.folds
			}
		}
	}
	return fold, rng
}

// trainRows are the rows fitted on when fold leftOut is scored: the
// -train files and the other folds of the -cv files (-1: all of them).
func trainRows(sets []dataset, fold map[[2]int]int, leftOut int) map[[2]int]bool {
	train := map[[2]int]bool{}
	for di, d := range sets {
		for i := range d.rows {
			f, isCV := fold[[2]int{di, i}]
			if d.use == useTrain || isCV && f != leftOut {
				train[[2]int{di, i}] = true
			}
		}
	}
	return train
}

// chooseSettings tries a few values of -lambda and -balance and keeps the
// pair with the best mean held-out macro-F1.
func (m *model) chooseSettings(sets []dataset, o options) options {
	best, bestMean := o, -1.0
	for _, lambda := range []float64{0.0001, 0.001, 0.01} {
		for _, balance := range []float64{0.5, 0.85, 1} {
			try := o
			try.lambda, try.balance = lambda, balance
			r := m.evaluate(sets, try)
			fmt.Fprintf(os.Stderr, "tune: -lambda %g -balance %g: mean held-out macro-F1 %.3f\n", lambda, balance, r.mean)
			if r.mean > bestMean+1e-4 {
				best, bestMean = try, r.mean
			}
		}
	}
	return best
}

// chooseSectionScale multiplies the hand-written section weights by the
// factor with the best mean macro-F1 on the dev files that name sections
// (1 when none does), and returns it; theta is changed in place.
func (m *model) chooseSectionScale(sets []dataset, theta []float64) float64 {
	var secs []int
	for i, p := range m.params {
		if p.kind == "section" {
			secs = append(secs, i)
		}
	}
	written := slices.Clone(theta)
	apply := func(k float64) {
		for _, i := range secs {
			theta[i] = math.Round(written[i]*k*100) / 100
		}
	}
	best, bestF := 1.0, -1.0
	for _, k := range []float64{0, 0.5, 1, 1.5, 2, 3, 4} {
		apply(k)
		sum, n := 0.0, 0
		for _, d := range sets {
			if d.use == useDev && d.sections {
				sum += m.macroF1(d, theta, nil)
				n++
			}
		}
		if n == 0 {
			break
		}
		if sum/float64(n) > bestF+1e-4 {
			best, bestF = k, sum/float64(n)
		}
	}
	apply(best)
	return best
}

// calibration turns a row's scores into its tag and the tag's
// confidence as the classifier does (classify's own arithmetic): the
// temperature T of softmax(score/T), then the maps of a
// classify.LabelSet: the file's task's (CalibrationMap, and with
// -by-label one per predicted label, ByLabel) and, for rows scored as
// SciCite intents, the intents' (IntentCalibration); for pluralism also
// the secondary threshold.
type calibration struct {
	temperature float64
	maps        classify.LabelSet // CalibrationMap, ByLabel and IntentCalibration
	own, intent bool              // which maps were fitted (rows of the file's task, of intents): only those are written
	secondary   float64
	names       []string // the model's labels, by index
}

// minWithoutMarker is how many held-out tags of the file's task whose
// cited marker is unknown they need for a map of their own
// (calibration_without_marker); with fewer they share the others' maps.
const minWithoutMarker = 50

// fitCalibration fits a calibration on the held-out scores of the rows
// where keep is true (all when nil), by the least log loss: the
// temperature on every dev and cross-validated row, then each map on the
// rows it calibrates. Rows of the file's task whose cited marker is
// unknown get their own map when there are enough of them (no cue is
// boosted near an unknown marker, so the same probability means another
// thing; ACL-ARC's rows give no marker, ACT's do), and the other maps
// are fitted on the rows with a marker. With -by-label, a label with at
// least -min-per-label tags gets its own map and the shared map is fitted
// on the tags of the other labels (on all when every label has its own).
func (m *model) fitCalibration(sets []dataset, heldOut [][][]float64, keep func(di, i int) bool, o options) calibration {
	c := calibration{temperature: m.fitTemperature(sets, heldOut, keep), names: m.ls.Labels}
	if m.ls.Name == "pluralism.yaml" {
		c.secondary = m.chooseSecondary(sets, heldOut, keep, c.temperature)
	}
	var intent calRows
	// By predicted label, of the file's task: rows with the cited marker
	// known, and without.
	byLabel, noMarker := map[string]*calRows{}, map[string]*calRows{}
	nNoMarker := 0
	for di, d := range sets {
		for i, rw := range d.rows {
			if heldOut[di][i] == nil || keep != nil && !keep(di, i) {
				continue
			}
			l, p := c.raw(d, heldOut[di][i])
			right := l == d.of(rw.gold[0])
			if d.task == classify.TaskIntent {
				intent.add(p, right, false)
				continue
			}
			to := byLabel
			if !rw.marker {
				to, nNoMarker = noMarker, nNoMarker+1
			}
			best := m.ls.Labels[argmax(heldOut[di][i])]
			if to[best] == nil {
				to[best] = &calRows{}
			}
			to[best].add(p, right, d.use == useTrain)
		}
	}
	if nNoMarker >= minWithoutMarker && len(byLabel) > 0 {
		var cr calRows
		for _, l := range slices.Sorted(maps.Keys(noMarker)) {
			n := noMarker[l]
			cr.conf, cr.right, cr.train = append(cr.conf, n.conf...), append(cr.right, n.right...), append(cr.train, n.train...)
		}
		slope := o.maxSlope
		if o.maxSlopeNoMarker > 0 {
			slope = o.maxSlopeNoMarker
		}
		c.maps.WithoutMarker = ptr(fitPlatt(cr.conf, cr.right, cr.weights(o.devShareNoMarker), slope))
	} else { // too few without a marker (or none with one): they share the maps
		for _, l := range slices.Sorted(maps.Keys(noMarker)) {
			cr := noMarker[l]
			if byLabel[l] == nil {
				byLabel[l] = &calRows{}
			}
			b := byLabel[l]
			b.conf, b.right, b.train = append(b.conf, cr.conf...), append(b.right, cr.right...), append(b.train, cr.train...)
		}
	}
	minPerLabel := o.minPerLabel
	if minPerLabel <= 0 { // as an options literal leaves it: the flag's default
		minPerLabel = 100
	}
	var shared, all calRows
	for _, l := range slices.Sorted(maps.Keys(byLabel)) {
		cr := byLabel[l]
		all.conf, all.right = append(all.conf, cr.conf...), append(all.right, cr.right...)
		if o.byLabel && len(cr.conf) >= minPerLabel {
			if c.maps.ByLabel == nil {
				c.maps.ByLabel = map[string]classify.CalibrationMap{}
			}
			c.maps.ByLabel[l] = fitPlatt(cr.conf, cr.right, nil, o.maxSlope)
			continue
		}
		shared.conf, shared.right = append(shared.conf, cr.conf...), append(shared.right, cr.right...)
	}
	if len(shared.conf) == 0 {
		shared = all
	}
	c.own, c.intent = len(all.conf) > 0, len(intent.conf) > 0
	c.maps.CalibrationMap = fitPlatt(shared.conf, shared.right, nil, o.maxSlope)
	c.maps.IntentCalibration = fitPlatt(intent.conf, intent.right, nil, o.maxSlope)
	return c
}

func ptr[T any](v T) *T { return &v }

// runeOffset is the byte offset of the n-th rune of s (len(s) past its end).
func runeOffset(s string, n int) int {
	for i := range s {
		if n == 0 {
			return i
		}
		n--
	}
	return len(s)
}

// calRows are the rows one calibration map is fitted on: each row's raw
// confidence, whether its tag was right and whether it is a train row
// (its held-out score from -cal-train) rather than a dev or
// cross-validated one.
type calRows struct {
	conf  []float64
	right []bool
	train []bool
}

func (cr *calRows) add(conf float64, right, train bool) {
	cr.conf, cr.right, cr.train = append(cr.conf, conf), append(cr.right, right), append(cr.train, train)
}

// weights are the rows' weights in a fit where the scored rows (dev and
// cross-validated) weigh devShare of the whole together and the train
// rows the rest, each row of a side the same; nil (every row 1) when
// devShare is 0 or one side has no rows. The scored rows are the text
// the confidences are for (ACL-ARC's dev rows: a third of their
// sentences are also train sentences, and those tags are right more
// often), the train rows' held-out scores the many rows that keep a map
// from following a fold's few.
func (cr calRows) weights(devShare float64) []float64 {
	nTrain := 0
	for _, t := range cr.train {
		if t {
			nTrain++
		}
	}
	nDev := len(cr.train) - nTrain
	if devShare <= 0 || nTrain == 0 || nDev == 0 {
		return nil
	}
	w := make([]float64, len(cr.train))
	for i, t := range cr.train {
		if t {
			w[i] = (1 - devShare) * float64(len(w)) / float64(nTrain)
		} else {
			w[i] = devShare * float64(len(w)) / float64(nDev)
		}
	}
	return w
}

// tag is what the classifier would say of a row with these scores: its
// task label and that label's confidence.
func (c calibration) tag(d dataset, rw row, scores []float64) (string, float64) {
	l, p := c.raw(d, scores)
	if d.task == classify.TaskIntent {
		return l, c.maps.IntentCalibration.Confidence(p)
	}
	return l, c.maps.LabelConfidence(c.names[argmax(scores)], p, rw.marker)
}

// raw is the row's task label (decide) and its softmax probability, not
// yet calibrated (for an intent, of the roles that map to it together).
func (c calibration) raw(d dataset, scores []float64) (string, float64) {
	l := d.decide(scores, c.temperature)
	p := 0.0
	for j, pj := range softmax(scores, c.temperature) {
		if d.of(j) == l {
			p += pj
		}
	}
	return l, p
}

// fitTemperature is the T of softmax(score/T) with the least log loss of
// the gold label on the held-out rows.
func (m *model) fitTemperature(sets []dataset, heldOut [][][]float64, keep func(di, i int) bool) float64 {
	best, bestLoss := 1.0, math.Inf(1)
	for i := 0; i <= 200; i++ {
		t := math.Exp(math.Log(0.05) + float64(i)/200*math.Log(20/0.05))
		loss := 0.0
		for di, d := range sets {
			for ri, rw := range d.rows {
				if heldOut[di][ri] == nil || d.use == useTrain || keep != nil && !keep(di, ri) {
					continue
				}
				p := softmax(heldOut[di][ri], t)
				pg := 0.0
				for _, g := range rw.gold {
					pg += p[g]
				}
				loss -= math.Log(max(pg, 1e-12))
			}
		}
		if loss < bestLoss {
			best, bestLoss = t, loss
		}
	}
	return math.Round(best*100) / 100
}

// fitPlatt fits confidence = sigmoid(slope*logit(p) + intercept) to
// whether the tags were right, by the least log loss, each row's loss
// times its weight (nil: all 1) (a grid: two numbers, the slope at most
// maxSlope; 0, as an options literal leaves it, means the flag's
// default, 2). No rows give the identity map.
func fitPlatt(conf []float64, right []bool, weight []float64, maxSlope float64) classify.CalibrationMap {
	if len(conf) == 0 {
		return classify.CalibrationMap{Slope: 1}
	}
	if maxSlope <= 0 {
		maxSlope = 2
	}
	logit := make([]float64, len(conf))
	for i, p := range conf {
		p = min(max(p, 1e-6), 1-1e-6)
		logit[i] = math.Log(p / (1 - p))
	}
	best, bestA, bestB := math.Inf(1), 1.0, 0.0
	for a := 0.05; a <= maxSlope+0.001; a += 0.05 {
		for b := -3.0; b <= 3.001; b += 0.05 {
			loss := 0.0
			for i, z := range logit {
				q := 1 / (1 + math.Exp(-(a*z + b)))
				if !right[i] {
					q = 1 - q
				}
				w := 1.0
				if weight != nil {
					w = weight[i]
				}
				loss -= w * math.Log(max(q, 1e-12))
			}
			if loss < best {
				best, bestA, bestB = loss, a, b
			}
		}
	}
	return classify.CalibrationMap{Slope: math.Round(bestA*100) / 100, Intercept: math.Round(bestB*100)/100 + 0} // + 0: no "-0"
}

// chooseSecondary (pluralism) is the probability a category other than
// the primary one needs to apply too, for the best label-set micro-F1 on
// the held-out rows; 0 means the primary alone.
func (m *model) chooseSecondary(sets []dataset, heldOut [][][]float64, keep func(di, i int) bool, t float64) float64 {
	best, bestF := 0.0, -1.0
	for _, sec := range []float64{0, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4} {
		tp, fp, fn := 0, 0, 0
		for di, d := range sets {
			for ri, rw := range d.rows {
				if heldOut[di][ri] == nil || d.use == useTrain || keep != nil && !keep(di, ri) {
					continue
				}
				p := softmax(heldOut[di][ri], t)
				a, b, c := setMatch(rw.set, m.labelSet(p, argmax(heldOut[di][ri]), sec))
				tp, fp, fn = tp+a, fp+b, fn+c
			}
		}
		if f := 2 * float64(tp) / float64(max(2*tp+fp+fn, 1)); f > bestF+1e-9 {
			best, bestF = sec, f
		}
	}
	return best
}

// labelSet is what classify.Pluralism gives: the primary category, and
// the others (not none) whose probability reaches secondary.
func (m *model) labelSet(p []float64, primary int, secondary float64) []string {
	out := []string{m.ls.Labels[primary]}
	if out[0] == record.PluralismNone || secondary <= 0 {
		return out
	}
	for i, l := range m.ls.Labels {
		if i != primary && l != record.PluralismNone && p[i] >= secondary {
			out = append(out, l)
		}
	}
	return out
}

// setMatch counts true positives, false positives and false negatives of
// a predicted label set against the gold one.
func setMatch(gold, pred []string) (tp, fp, fn int) {
	for _, l := range pred {
		if slices.Contains(gold, l) {
			tp++
		} else {
			fp++
		}
	}
	for _, l := range gold {
		if !slices.Contains(pred, l) {
			fn++
		}
	}
	return tp, fp, fn
}

func (m *model) scoreVec(rw row, theta []float64) []float64 {
	s := make([]float64, len(m.ls.Labels))
	m.scores(rw, theta, s)
	return s
}

// argmax is the best label; a tie goes to the model's label listed first
// (alphabetical), where the classifier gives it to the higher prior: the
// two differ only on an exact tie, which fitted weights make rare.
func argmax(s []float64) int {
	best := 0
	for i := range s {
		if s[i] > s[best]+1e-9 {
			best = i
		}
	}
	return best
}

func softmax(s []float64, t float64) []float64 {
	p := make([]float64, len(s))
	mx, z := slices.Max(s), 0.0
	for i := range s {
		p[i] = math.Exp((s[i] - mx) / t)
		z += p[i]
	}
	for i := range p {
		p[i] /= z
	}
	return p
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
func (m *model) write(path string, theta []float64, res result) error {
	// Top-level settings written as one line each: replaced where the file
	// has them, else added at its end.
	settings := map[string]string{
		"temperature": num(res.cal.temperature),
	}
	if res.cal.own {
		settings["calibration"] = mapYAML(res.cal.maps.CalibrationMap)
		settings["calibration_by_label"] = res.cal.byLabelYAML()
		settings["calibration_without_marker"] = noSetting
		if wm := res.cal.maps.WithoutMarker; wm != nil {
			settings["calibration_without_marker"] = mapYAML(*wm)
		}
	}
	if res.cal.intent {
		settings["intent_calibration"] = mapYAML(res.cal.maps.IntentCalibration)
	}
	if m.ls.Name == "pluralism.yaml" {
		settings["secondary"] = num(res.cal.secondary)
	}
	if res.cal.temperature <= 0 {
		settings = nil
	}
	written := map[string]bool{}
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	// A map the file does not have yet goes right after its calibration
	// line, where a reader looks for it.
	has := map[string]bool{}
	for _, line := range strings.Split(string(b), "\n") {
		if key, _, ok := strings.Cut(line, ":"); ok {
			has[key] = true
		}
	}
	// The induced cues the fit weighs go in their block, most weight first.
	induced := map[string][]weighedCue{}
	for i := range m.induced {
		if p := m.params[i]; theta[i] > 0 {
			induced[p.label] = append(induced[p.label], weighedCue{p.key, theta[i]})
		}
	}
	for _, cues := range induced {
		slices.SortFunc(cues, func(a, b weighedCue) int {
			return cmp.Or(cmp.Compare(b.weight, a.weight), strings.Compare(a.text, b.text))
		})
	}
	var out []string
	block, label := "", ""
	sc := bufio.NewScanner(strings.NewReader(withInduced(string(b), induced)))
	for sc.Scan() {
		line := sc.Text()
		if key, _, ok := strings.Cut(line, ":"); ok && settings[key] != "" {
			if settings[key] != noSetting { // a setting the fit no longer makes is dropped
				out = append(out, key+": "+settings[key])
			}
			written[key] = true
			if key == "calibration" {
				for _, k := range []string{"calibration_by_label", "calibration_without_marker", "intent_calibration"} {
					if !has[k] && settings[k] != "" && settings[k] != noSetting {
						out = append(out, k+": "+settings[k])
						written[k] = true
					}
				}
			}
			continue
		}
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
					if p.kind == "section" && p.key == key { // 0 kept: the label stays listed, to be fitted again
						ws = append(ws, fmt.Sprintf("%s: %s", p.label, num(theta[i])))
					}
				}
				line = fmt.Sprintf("  %s: {%s}%s", mm[1], strings.Join(ws, ", "), mm[2])
			}
		}
		out = append(out, line)
	}
	for _, key := range []string{"temperature", "calibration", "calibration_by_label", "calibration_without_marker", "intent_calibration", "secondary"} {
		if settings[key] != "" && settings[key] != noSetting && !written[key] {
			out = append(out, key+": "+settings[key])
		}
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(strings.Join(out, "\n")+"\n"), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// noSetting marks a setting to drop from the rule file.
const noSetting = "-"

func mapYAML(p classify.CalibrationMap) string {
	return fmt.Sprintf("{slope: %s, intercept: %s}", num(p.Slope), num(p.Intercept))
}

// byLabelYAML is the calibration_by_label line's value, in label order;
// noSetting when there is no map per label.
func (c calibration) byLabelYAML() string {
	var parts []string
	for _, l := range c.names {
		if p, ok := c.maps.ByLabel[l]; ok {
			parts = append(parts, l+": "+mapYAML(p))
		}
	}
	if len(parts) == 0 {
		return noSetting
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

// describe says what the calibration is, for the settings line.
func (c calibration) describe() string {
	var parts []string
	if c.own {
		parts = append(parts, "slope "+num(c.maps.Slope)+" intercept "+num(c.maps.Intercept))
		if b := c.byLabelYAML(); b != noSetting {
			parts = append(parts, "by label "+b)
		}
		if wm := c.maps.WithoutMarker; wm != nil {
			parts = append(parts, "without a marker slope "+num(wm.Slope)+" intercept "+num(wm.Intercept))
		}
	}
	if c.intent {
		parts = append(parts, "intents slope "+num(c.maps.IntentCalibration.Slope)+" intercept "+num(c.maps.IntentCalibration.Intercept))
	}
	s := strings.Join(parts, ", ")
	if c.secondary > 0 {
		s += ", secondary " + num(c.secondary)
	}
	return s
}

func num(x float64) string { return strconv.FormatFloat(x, 'f', -1, 64) }

func fail(err error) {
	fmt.Fprintln(os.Stderr, "tune:", err)
	os.Exit(2)
}
