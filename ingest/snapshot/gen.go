package snapshot

import "fmt"

// GeneratedHubID is the uuid of the hub Generated makes.
const GeneratedHubID = "9e4e7a10-0000-4000-8000-00000000beef"

// Generated returns a hub of n made-up citing papers, for benchmarks and
// load tests. Summaries rotate through a few pluralism themes so the
// classifier has real work to do.
func Generated(n int) Hub {
	themes := []string{
		"Steers a language model to a chosen persona and value system at inference time.",
		"Aggregates individual annotator ratings with a jury to model disagreement.",
		"Calibrates the output distribution to survey opinions of a target population.",
		"Evaluates models on several objectives at once and reports the Pareto front.",
		"Reports retrieval latency for a new index structure.",
		"Presents a spectrum of reasonable perspectives within one response.",
	}
	papers := make([]Paper, n)
	for i := range papers {
		papers[i] = Paper{
			Title:   fmt.Sprintf("Generated citing paper %d on pluralistic alignment", i),
			Summary: themes[i%len(themes)],
			Cat:     "cs.CL", Date: fmt.Sprintf("%d-%02d-%02d", 2024+i%3, 1+i%12, 1+i%28),
			Verdict: "unverdicted", Novelty: "5.0", Refs: 10 + i%30,
		}
	}
	papers = withFullText(papers)
	return Hub{ID: GeneratedHubID, CitedArxiv: "2402.05070", Title: fmt.Sprintf("A generated hub of %d citing papers", n), Canonical: true,
		Abstract: "Generated for benchmarks.", Papers: papers}
}
