// Command tune searches the priors and per-label cue scales of one rule
// file for the best mean macro-F1 over gold files, and prints them for the
// rule file's `prior:` and `scale:` blocks. It tunes a handful of numbers,
// never the cues themselves, so the rules stay what a linguist wrote.
//
//	go run ./scripts/tune -task polarity -gold ../shared/data/athar/dev.tsv,../shared/data/clinical/dev.jsonl
package main

import (
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/citecrawl/citecrawl/classify"
)

func main() {
	task := flag.String("task", "polarity", "role, intent, polarity or pluralism")
	gold := flag.String("gold", "", "comma-separated gold files (format from the path); intent files are scored as intent")
	rulesDir := flag.String("rules", "configs/rules", "rules directory")
	rounds := flag.Int("rounds", 3, "coordinate-search rounds")
	flag.Parse()
	rules, err := classify.LoadRules(*rulesDir)
	if err != nil {
		fail(err)
	}
	type set struct {
		task string
		exs  []classify.Example
	}
	var sets []set
	for _, g := range strings.Split(*gold, ",") {
		t := *task
		if strings.Contains(g, "scicite") && t == classify.TaskRole {
			t = classify.TaskIntent
		}
		exs, err := classify.ReadGold(g, classify.GuessFormat(g), t)
		if err != nil {
			fail(err)
		}
		sets = append(sets, set{t, exs})
	}
	ls := rules.Role
	if *task == classify.TaskPolarity {
		ls = rules.Polarity
	} else if *task == classify.TaskPluralism {
		ls = rules.Pluralism
	}
	prior := map[string]float64{}
	scale := map[string]float64{}
	for _, l := range ls.Labels {
		prior[l] = ls.Prior[l]
		scale[l] = 1
	}
	score := func() float64 {
		r := *rules
		t := ls.Tuned(prior, scale)
		switch *task {
		case classify.TaskPolarity:
			r.Polarity = t
		case classify.TaskPluralism:
			r.Pluralism = t
		default:
			r.Role = t
		}
		c := classify.New(&r)
		sum := 0.0
		for _, s := range sets {
			sum += c.Evaluate(s.task, s.exs).MacroF1
		}
		return sum / float64(len(sets))
	}
	best := score()
	fmt.Printf("start: mean macro-F1 %.4f\n", best)
	steps := []float64{-0.5, -0.25, -0.1, 0.1, 0.25, 0.5}
	for round := 0; round < *rounds; round++ {
		for _, l := range ls.Labels {
			for _, m := range []map[string]float64{prior, scale} {
				for _, d := range steps {
					old := m[l]
					m[l] = max(0, old+d)
					if s := score(); s > best+1e-4 {
						best = s
					} else {
						m[l] = old
					}
				}
			}
		}
		fmt.Printf("round %d: mean macro-F1 %.4f\n", round+1, best)
	}
	keys := make([]string, 0, len(prior))
	for k := range prior {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	fmt.Println("prior:")
	for _, k := range keys {
		if prior[k] != 0 {
			fmt.Printf("  %s: %.2f\n", k, prior[k])
		}
	}
	fmt.Println("scale:")
	for _, k := range keys {
		fmt.Printf("  %s: %.2f\n", k, scale[k])
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "tune:", err)
	os.Exit(2)
}
