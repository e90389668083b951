package main

import (
	"fmt"
	"math/rand/v2"
	"os"

	"github.com/citecrawl/citecrawl/classify"
)

func main() {
	r, _ := classify.LoadRules("configs/rules")
	c := classify.New(r)
	exs, _ := classify.ReadGold(os.Args[1], classify.GuessFormat(os.Args[1]), "polarity")
	rng := rand.New(rand.NewPCG(1, 1))
	rng.Shuffle(len(exs), func(i, j int) { exs[i], exs[j] = exs[j], exs[i] })
	n := 0
	for _, e := range exs {
		t := c.Context(e.Text, e.Section, e.Span)
		if t.Polarity != e.Gold && (e.Gold == os.Args[2] || t.Polarity == os.Args[2]) && n < 25 {
			n++
			var cues []string
			for _, ev := range t.Evidence {
				cues = append(cues, fmt.Sprintf("%s:%s=%.2f", ev.Label[:3], ev.Cue, ev.Weight))
			}
			txt := []rune(e.Text)
			mark := ""
			if e.Span != nil {
				mark = string(txt[e.Span[0]:e.Span[1]])
			}
			fmt.Printf("gold %s pred %s [%s] %v\n   %.250s\n", e.Gold[:3], t.Polarity[:3], mark, cues, e.Text)
		}
	}
}
