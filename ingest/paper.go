package ingest

import (
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/citecrawl/citecrawl/record"
)

// Graph is the part of /api/pith-number/<ID>/graph.json citecrawl reads.
type Graph struct {
	Paper struct {
		Title           string   `json:"title"`
		Headline        string   `json:"headline"`
		CrossCats       []string `json:"cross_cats"`
		PrimaryCat      string   `json:"primary_cat"`
		AuthorsText     string   `json:"authors_text"`
		SubmittedAt     string   `json:"submitted_at"`
		AbstractExcerpt string   `json:"abstract_excerpt"`
	} `json:"paper"`
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
	if err := json.Unmarshal(body, &g); err != nil {
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

// NewRecord builds the raw (untagged) record of one citing paper from what
// the hub listed and, when it was fetched, the paper's graph snapshot.
// Fields no source gave are named in Missing.
func NewRecord(hub record.Hub, p CitingPaper, g *Graph, sources []string, fetchedAt time.Time) record.Record {
	paper := record.Paper{
		Title: p.Title, Summary: p.Summary, Arxiv: p.ArxivID, Pith: p.PithID, URL: p.URL,
		Published: p.Published, Verdict: p.Verdict, Novelty: p.Novelty, Refs: p.Refs,
	}
	if p.Category != "" {
		paper.Categories = []string{p.Category}
	}
	if g != nil {
		fill := func(dst *string, v string) {
			if *dst == "" {
				*dst = strings.TrimSpace(v)
			}
		}
		fill(&paper.Title, g.Paper.Title)
		fill(&paper.Summary, g.Verdict.OneLineSummary)
		fill(&paper.Summary, g.Paper.Headline)
		fill(&paper.Abstract, g.Paper.AbstractExcerpt)
		if g.Source.Kind == "arxiv" {
			fill(&paper.Arxiv, g.Source.ID)
		}
		if len(g.Paper.SubmittedAt) >= 10 {
			fill(&paper.Published, g.Paper.SubmittedAt[:10])
		}
		fill(&paper.Verdict, g.Verdict.Verdict)
		if paper.Refs == nil {
			paper.Refs = g.References.Count
		}
		if g.Paper.AuthorsText != "" {
			for _, a := range strings.Split(g.Paper.AuthorsText, ",") {
				if a = strings.TrimSpace(a); a != "" {
					paper.Authors = append(paper.Authors, a)
				}
			}
		}
		cats := append([]string{g.Paper.PrimaryCat}, g.Paper.CrossCats...)
		for _, c := range cats {
			if c != "" && !slices.Contains(paper.Categories, c) {
				paper.Categories = append(paper.Categories, c)
			}
		}
	}
	if paper.URL != "" {
		paper.URL = resolveRef(hub.URL, paper.URL)
	}
	r := record.Record{
		Schema: record.Schema, ID: record.ID(hub.ID, p.Key()), Hub: hub, Paper: paper,
		Contexts: []record.Context{}, FetchedAt: fetchedAt.UTC(), SourceURLs: sources,
	}
	r.Missing = missingFields(&paper)
	return r
}

// missingFields names the paper fields that no source filled.
func missingFields(p *record.Paper) []string {
	missing := []string{}
	check := func(name string, empty bool) {
		if empty {
			missing = append(missing, "paper."+name)
		}
	}
	check("title", p.Title == "")
	check("summary", p.Summary == "")
	check("abstract", p.Abstract == "")
	check("authors", len(p.Authors) == 0)
	check("arxiv", p.Arxiv == "")
	check("pith", p.Pith == "")
	check("categories", len(p.Categories) == 0)
	check("published", p.Published == "")
	check("verdict", p.Verdict == "")
	check("novelty", p.Novelty == nil)
	check("refs", p.Refs == nil)
	return missing
}
