package main

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"unicode"

	"github.com/citecrawl/citecrawl/classify"
)

// sentenceKey is what the rows of one sentence share: its letters,
// lower-cased, so that copies differing in case, spacing, punctuation or
// citation numbers count as one sentence.
func sentenceKey(text string) string {
	var b strings.Builder
	space := false
	for _, r := range strings.ToLower(text) {
		if unicode.IsLetter(r) {
			if space && b.Len() > 0 {
				b.WriteByte(' ')
			}
			b.WriteRune(r)
			space = false
		} else {
			space = true
		}
	}
	return b.String()
}

// groupedFolds deals the rows of the train files of the file's own task
// (not SciCite's intents) into o.folds folds at random (seeded), every
// row of a sentence (sentenceKey) in the same fold: ACL-ARC's train rows
// share many sentences (one sentence cites several works, each a row),
// and a fold scored with its sentences' twins fitted on would look
// better than new text. Each sentence goes, in a shuffled order, to the
// fold with the fewest rows so far, which keeps the folds even.
func groupedFolds(sets []dataset, o options) map[[2]int]int {
	groups := map[string][][2]int{}
	var keys []string // in the order first met, so the shuffle alone decides
	for di, d := range sets {
		if d.use != useTrain || d.task == classify.TaskIntent {
			continue
		}
		for i, rw := range d.rows {
			k := sentenceKey(rw.text)
			if groups[k] == nil {
				keys = append(keys, k)
			}
			groups[k] = append(groups[k], [2]int{di, i})
		}
	}
	rng := rand.New(rand.NewPCG(o.seed, 4))
	rng.Shuffle(len(keys), func(i, j int) { keys[i], keys[j] = keys[j], keys[i] })
	size := make([]int, o.folds)
	fold := map[[2]int]int{}
	for _, k := range keys {
		f := slices.Index(size, slices.Min(size))
		for _, key := range groups[k] {
			fold[key] = f
		}
		size[f] += len(groups[k])
	}
	return fold
}

// crossValidateTrain scores the train rows of the file's own task by
// k-fold cross-validation grouped by sentence (groupedFolds), and returns
// a figure and a line per train file: each row's scores come from
// weights fitted without its fold (and with every other row that
// may be fitted on, all the given), its tag and confidence from a
// temperature and maps fitted without its fold (crossFit). heldOut holds
// the other rows' held-out scores (dev and cross-validated rows), which
// fit the maps as they do in evaluate, and with -cal-train the train
// rows' scores of these same folds (trainHeldOut deals them alike), which
// are then used as they are; it is not changed.
func (m *model) crossValidateTrain(sets []dataset, heldOut [][][]float64, all map[[2]int]bool, o options) ([]figure, []string) {
	fold := groupedFolds(sets, o)
	if len(fold) == 0 {
		return nil, nil
	}
	scores := make([][][]float64, len(sets))
	for di := range sets {
		scores[di] = slices.Clone(heldOut[di])
	}
	if !o.calTrain { // with -cal-train the train rows already have the scores of these folds
		m.scoreFolds(sets, all, fold, scores, o)
	}
	tags := m.crossFit(sets, scores, fold, o)
	var figs []figure
	var lines []string
	for di, d := range sets {
		var gold, pred []string
		var conf []float64
		var right []bool
		for i, rw := range d.rows {
			t, ok := tags[[2]int{di, i}]
			if !ok {
				continue
			}
			g := d.of(rw.gold[0])
			gold, pred = append(gold, g), append(pred, t.label)
			conf, right = append(conf, t.conf), append(right, g == t.label)
		}
		if len(gold) == 0 {
			continue
		}
		how := fmt.Sprintf("%d-fold cross-validated, grouped by sentence, seed %d", o.folds, o.seed)
		fig, line, bins := scoreFigure(d, d.name, d.name, how, gold, pred, conf, right)
		figs, lines = append(figs, fig), append(lines, line)
		if o.reliability {
			lines = append(lines, reliabilityLines(bins)...)
		}
	}
	return figs, lines
}

// tagged is a row's label and confidence.
type tagged struct {
	label string
	conf  float64
}

// crossFit tags the rows that fold deals into folds, each with the
// temperature and maps fitted without its fold: on the held-out scores
// of every row outside the folds, and (with -cal-train, as the maps
// written are fitted) of the other folds' rows, so that no confidence is
// measured by a map fitted on its own row.
func (m *model) crossFit(sets []dataset, heldOut [][][]float64, fold map[[2]int]int, o options) map[[2]int]tagged {
	tags := map[[2]int]tagged{}
	for f := range o.folds {
		cal := m.fitCalibration(sets, heldOut, func(di, i int) bool {
			g, ok := fold[[2]int{di, i}]
			return !ok || o.calTrain && g != f
		}, o)
		for key, g := range fold {
			if g == f {
				d := sets[key[0]]
				l, p := cal.tag(d, d.rows[key[1]], heldOut[key[0]][key[1]])
				tags[key] = tagged{l, p}
			}
		}
	}
	return tags
}
