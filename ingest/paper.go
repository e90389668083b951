package ingest

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	gojson "github.com/goccy/go-json" // a page is decoded once a paper: several times faster than encoding/json

	"github.com/citecrawl/citecrawl/record"
)

// GraphPaper is the paper part of graph.json and of /pith/<ID>.json.
type GraphPaper struct {
	Title           string   `json:"title"`
	Headline        string   `json:"headline"`
	CrossCats       []string `json:"cross_cats"`
	PrimaryCat      string   `json:"primary_cat"`
	AuthorsText     string   `json:"authors_text"`
	SubmittedAt     string   `json:"submitted_at"`
	AbstractExcerpt string   `json:"abstract_excerpt"`
}

// Graph is the part of /api/pith-number/<ID>/graph.json citecrawl reads.
type Graph struct {
	Paper  GraphPaper `json:"paper"`
	Source struct {
		ID   string `json:"id"`
		Kind string `json:"kind"`
	} `json:"source"`
	Verdict struct {
		OneLineSummary string `json:"one_line_summary"`
		Verdict        string `json:"verdict"`
	} `json:"verdict"`
	References struct {
		Count *int `json:"count"`
	} `json:"references"`
}

// ParseGraph reads a graph.json body fetched from src.
func ParseGraph(src string, body []byte) (*Graph, error) {
	var g Graph
	if err := gojson.Unmarshal(body, &g); err != nil {
		return nil, fmt.Errorf("graph %s: not the expected JSON: %w", src, err)
	}
	if g.Paper.Title == "" && g.Source.ID == "" {
		return nil, fmt.Errorf("graph %s: has neither paper.title nor source.id", src)
	}
	return &g, nil
}

// GraphURL is where the graph snapshot of a Pith paper lives, on the host
// the hub was fetched from.
func GraphURL(hubURL, pithID string) string {
	return resolveRef(hubURL, "/api/pith-number/"+url.PathEscape(pithID)+"/graph.json")
}

// HubRef is the record's view of a hub page.
func (h *HubPage) HubRef(citedIDs []string) record.Hub {
	pub := &record.HubCounts{
		CitingPapers: h.CitingCount, BackgroundPercent: h.BackgroundPct,
		PolarityIndexing: h.PolarityIndexing, Facets: h.Facets, Canonical: h.Canonical,
	}
	if citedIDs == nil {
		citedIDs = []string{}
	}
	return record.Hub{URL: h.URL, ID: h.ID, Title: h.Title, CitedWorkIDs: citedIDs, Published: pub}
}

// Sources are the structured metadata found for a paper, any of them nil.
// They are applied in this order, so the first that has a field wins:
// Pith's JSON record, its graph snapshot, then arXiv's abstract page.
type Sources struct {
	Pith  *PithRecord
	Graph *Graph
	Abs   *AbsMeta
}

// NewRecord builds the raw (untagged) record of one citing paper from what
// the hub listed and the structured sources found for it. Fields no source
// gave are named in Missing, never invented.
func NewRecord(hub record.Hub, p CitingPaper, src Sources, urls []string, fetchedAt time.Time) record.Record {
	paper := newPaper(hub, p, src)
	r := record.Record{
		Schema: record.Schema, ID: record.ID(hub.ID, p.Key()), Hub: hub, Paper: paper,
		Contexts: []record.Context{}, FetchedAt: fetchedAt.UTC(), SourceURLs: urls,
	}
	r.Missing = missingFields(&paper)
	return r
}

// newPaper is the record's paper: what the hub listed, each field a source
// gave filled in the sources' order.
func newPaper(hub record.Hub, p CitingPaper, src Sources) record.Paper {
	paper := paperFields(p, src)
	if paper.URL != "" {
		paper.URL = resolveRef(hub.URL, paper.URL)
	}
	return paper
}

// paperFields is newPaper with the paper's URL as the hub gave it, not
// resolved against the hub's.
func paperFields(p CitingPaper, src Sources) record.Paper {
	paper := record.Paper{
		Title: p.Title, Summary: p.Summary, Arxiv: p.ArxivID, Pith: p.PithID, URL: p.URL,
		Published: p.Published, Verdict: p.Verdict, Novelty: p.Novelty, Refs: p.Refs,
	}
	if p.Category != "" {
		paper.Categories = []string{p.Category}
	}
	if src.Pith != nil {
		applyGraphPaper(&paper, src.Pith.Paper)
		if src.Pith.Source.Kind == "arxiv" {
			fill(&paper.Arxiv, src.Pith.Source.ID)
		}
	}
	if g := src.Graph; g != nil {
		applyGraphPaper(&paper, g.Paper)
		fill(&paper.Summary, g.Verdict.OneLineSummary)
		if g.Source.Kind == "arxiv" {
			fill(&paper.Arxiv, g.Source.ID)
		}
		fill(&paper.Verdict, g.Verdict.Verdict)
		if paper.Refs == nil {
			paper.Refs = g.References.Count
		}
	}
	if a := src.Abs; a != nil {
		fill(&paper.Title, a.Title)
		fill(&paper.Abstract, a.Abstract)
		fill(&paper.Arxiv, a.ArxivID)
		fill(&paper.Published, a.Date)
		if len(paper.Authors) == 0 {
			paper.Authors = a.Authors
		}
	}
	return paper
}

func fill(dst *string, v string) {
	if *dst == "" {
		*dst = strings.TrimSpace(v)
	}
}

func applyGraphPaper(paper *record.Paper, g GraphPaper) {
	fill(&paper.Title, g.Title)
	fill(&paper.Summary, g.Headline)
	fill(&paper.Abstract, g.AbstractExcerpt)
	if len(g.SubmittedAt) >= 10 {
		fill(&paper.Published, g.SubmittedAt[:10])
	}
	if len(paper.Authors) == 0 && g.AuthorsText != "" {
		for _, a := range strings.Split(g.AuthorsText, ",") {
			if a = strings.TrimSpace(a); a != "" {
				paper.Authors = append(paper.Authors, a)
			}
		}
	}
	for _, c := range append([]string{g.PrimaryCat}, g.CrossCats...) {
		if c != "" && !slices.Contains(paper.Categories, c) {
			paper.Categories = append(paper.Categories, c)
		}
	}
}

// missingFields names the paper fields that no source filled.
func missingFields(p *record.Paper) []string {
	missing := []string{}
	check := func(name string, empty bool) {
		if empty {
			missing = append(missing, name)
		}
	}
	check("paper.title", p.Title == "")
	check("paper.summary", p.Summary == "")
	check("paper.abstract", p.Abstract == "")
	check("paper.authors", len(p.Authors) == 0)
	check("paper.arxiv", p.Arxiv == "")
	check("paper.pith", p.Pith == "")
	check("paper.categories", len(p.Categories) == 0)
	check("paper.published", p.Published == "")
	check("paper.verdict", p.Verdict == "")
	check("paper.novelty", p.Novelty == nil)
	check("paper.refs", p.Refs == nil)
	return missing
}
