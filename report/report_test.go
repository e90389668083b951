package report

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/citecrawl/citecrawl/record"
	"github.com/citecrawl/citecrawl/sink"
)

// writeOutput writes records through the real JSON Lines sink and opens
// a reader on them.
func writeOutput(t *testing.T, recs []record.Record) (string, sink.Reader) {
	t.Helper()
	ctx := context.Background()
	cfg := sink.Config{JSONLConfig: sink.JSONLConfig{SegmentMaxBytes: 8 << 20, SegmentMaxAge: 5 * time.Second}}
	cfg.Out = t.TempDir()
	s, err := sink.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for i := range recs {
		if _, err := s.Write(ctx, []*record.Record{&recs[i]}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	rd, err := sink.OpenReader(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cfg.Out, rd
}

func TestReportCountsEqualSinkOutput(t *testing.T) {
	bg := 60
	hub := record.Hub{ID: "hub-1", Title: "A <Cited> Work", URL: "https://pith.science/citations/hub-1",
		Published: &record.HubCounts{CitingPapers: 9, BackgroundPercent: &bg, Facets: map[string]map[string]int{"years": {"2025": 9}}}}
	var recs []record.Record
	for i := range 9 {
		r := record.Record{Schema: record.Schema, ID: fmt.Sprint("r", i), Hub: hub,
			Paper: record.Paper{Title: fmt.Sprint("Paper ", i), Published: fmt.Sprintf("%d-01-01", 2024+i%2)},
			Role:  record.Roles[i%3], Polarity: record.Polarities[i%3],
			RoleConfidence: 0.1 * float64(i+1), PolarityConfidence: 0.9, Pluralism: &record.Pluralism{Primary: record.PluralismCategories[i%4], Confidence: 0.9},
			Contexts: []record.Context{{Text: fmt.Sprint("Sentence ", i), Role: record.Roles[i%3]}}, FetchedAt: time.Unix(int64(i), 0)}
		recs = append(recs, r)
	}
	// A later version of r0 changes its role; r8 is gone from the hub.
	v2 := recs[0]
	v2.Role = record.RoleFuture
	recs = append(recs, v2, record.Record{Schema: record.Schema, ID: "r8", Hub: hub, Paper: record.Paper{Title: "Paper 8"}, Gone: true})
	out, rd := writeOutput(t, recs)

	rep, err := Build(context.Background(), rd, "hub-1", 0.35)
	if err != nil {
		t.Fatal(err)
	}
	var sum sink.Summary
	b, _ := os.ReadFile(filepath.Join(out, "hub-1", sink.SummaryFile))
	json.Unmarshal(b, &sum)
	if rep.Records != sum.Records || rep.Records != 8 || rep.Gone != 1 {
		t.Fatalf("report %d records %d gone, summary %d records", rep.Records, rep.Gone, sum.Records)
	}
	for _, pair := range []struct {
		name      string
		got, want map[string]int
	}{{"roles", rep.Roles, sum.Roles}, {"polarities", rep.Polarities, sum.Polarities}, {"pluralism", rep.Pluralism, sum.Pluralism}} {
		if fmt.Sprint(pair.got) != fmt.Sprint(pair.want) {
			t.Errorf("%s: report %v, sink %v", pair.name, pair.got, pair.want)
		}
	}
	if rep.Roles[record.RoleFuture] != 1 || rep.ByYear["2024"][record.RoleFuture] != 1 {
		t.Errorf("latest version not counted: %v %v", rep.Roles, rep.ByYear)
	}
	for _, f := range []string{"md", "html", "json"} {
		var buf bytes.Buffer
		if err := rep.Write(&buf, f); err != nil {
			t.Fatal(err)
		}
		s := buf.String()
		if f == "html" && (!strings.Contains(s, "<svg") || strings.Contains(s, "<script") || strings.Contains(s, "A <Cited>") || loadsSomething(s)) {
			t.Errorf("html report: needs inline SVG, no script, escaped text, nothing loaded")
		}
		if f == "md" && !strings.Contains(s, "| background | 2 |") {
			t.Errorf("markdown report lacks the role table:\n%s", s)
		}
	}
	if err := rep.Write(&bytes.Buffer{}, "pdf"); err == nil {
		t.Error("unknown format accepted")
	}
	// r0, r1 and r2 have role confidences 0.1, 0.2, 0.3: under 0.35.
	if rep.Under["role"] != 3 || rep.Under["polarity"] != 0 || rep.Under["pluralism"] != 0 {
		t.Errorf("tags under 0.35: %v, want role 3", rep.Under)
	}
	var md bytes.Buffer
	if err := rep.Write(&md, "md"); err != nil || !strings.Contains(md.String(), "Tags less confident than 0.35: role 3") {
		t.Errorf("markdown report does not say how many tags are under the minimum:\n%s", md.String())
	}
	if _, err := Build(context.Background(), rd, "no-such-hub", 0); err == nil || !strings.Contains(err.Error(), "no-such-hub") {
		t.Errorf("unknown hub: err = %v", err)
	}
}

// loadsSomething tells whether an HTML page would fetch anything: an
// image, a style sheet, a frame, a font. Links a reader may follow are
// fine.
func loadsSomething(page string) bool {
	for _, pat := range []string{"<img", "<link", "<iframe", "<object", "<embed", "src=", "@import", "url("} {
		if strings.Contains(page, pat) {
			return true
		}
	}
	return false
}
