package classify

import (
	"testing"

	"github.com/citecrawl/citecrawl/ingest/snapshot"
	"github.com/citecrawl/citecrawl/internal/testkit"
	"github.com/citecrawl/citecrawl/record"
)

// BenchmarkTag tags whole records, as reprocess does: in turn one known
// only by its title and summary (its role guessed from the summary) and
// one with an abstract and two citing sentences.
func BenchmarkTag(b *testing.B) {
	c := testClassifier(b)
	recs := []record.Record{
		{Paper: record.Paper{Title: "Jury Learning: Integrating Dissenting Voices into Machine Learning Models",
			Summary: "Whose labels should a model learn? Different groups disagree about ground truth; we model individual annotators with juries."}},
		{Paper: record.Paper{Title: "Modeling Annotator Perspectives in Subjective Tasks",
			Abstract: "Annotators disagree on subjective tasks such as toxicity detection. We propose a multi-task model that predicts each annotator's label and aggregates them, and we release a dataset of individual ratings. Our results show that modeling disagreement improves calibration."},
			Contexts: []record.Context{
				{Text: "Unlike majority voting, we follow [3] and keep every annotator's label.", Section: "Method", CiteSpan: []int{34, 37}},
				{Text: "Jury learning [3] shows that dissenting voices matter, but it needs demographic data.", Section: "Related Work", CiteSpan: []int{14, 17}},
			}},
	}
	b.ReportAllocs()
	cpu := testkit.CPUTime(b)
	i := 0
	for b.Loop() {
		r := recs[i%len(recs)]
		r.Contexts = append([]record.Context(nil), r.Contexts...)
		c.Tag(&r)
		i++
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
	b.ReportMetric(float64(b.N)/(testkit.CPUTime(b)-cpu).Seconds(), "records/cpu-s")
}

// BenchmarkTagGenerated tags the records of scripts/rssbench's reprocess
// figure and BenchmarkReprocess: the title and summary of one of the 50
// generated papers, no citing sentence (so the paper's role is guessed
// from its summary and its pluralism read from its title and summary).
func BenchmarkTagGenerated(b *testing.B) {
	c := testClassifier(b)
	papers := snapshot.Generated(50).Papers
	b.ReportAllocs()
	cpu := testkit.CPUTime(b)
	i := 0
	for b.Loop() {
		p := papers[i%len(papers)]
		r := record.Record{Paper: record.Paper{Title: p.Title, Summary: p.Summary, Published: p.Date, Categories: []string{p.Cat}}}
		c.Tag(&r)
		i++
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
	b.ReportMetric(float64(b.N)/(testkit.CPUTime(b)-cpu).Seconds(), "records/cpu-s")
}
