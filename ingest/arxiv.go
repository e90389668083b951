package ingest

import (
	"errors"
	"fmt"
	"strings"

	"github.com/PuerkitoBio/goquery"
	gojson "github.com/goccy/go-json" // a page is decoded once a paper: several times faster than encoding/json
)

// AbsMeta is what an arXiv abstract page's meta tags say.
type AbsMeta struct {
	ArxivID    string
	Version    string // from og:url, e.g. "v1"
	Title      string
	Authors    []string // "First Last"
	Date       string   // YYYY-MM-DD
	OnlineDate string
	DOI        string
	PDF        string
	Abstract   string
}

// ErrArxivNotFound is arXiv's "Article not found" page: a normal page
// without the citation meta tags.
var ErrArxivNotFound = errors.New("arXiv has no such article")

// ParseAbs reads an arXiv /abs/<id> page.
func ParseAbs(pageURL string, body []byte, contentType string) (*AbsMeta, error) {
	doc, err := ParseHTML(body, contentType)
	if err != nil {
		return nil, fmt.Errorf("arXiv page %s: %w", pageURL, err)
	}
	meta := func(name string) string {
		return strings.TrimSpace(doc.Find(`meta[name="`+name+`"]`).First().AttrOr("content", ""))
	}
	m := &AbsMeta{
		Title: meta("citation_title"), ArxivID: meta("citation_arxiv_id"), DOI: meta("citation_doi"),
		PDF: meta("citation_pdf_url"), Date: slashDate(meta("citation_date")), OnlineDate: slashDate(meta("citation_online_date")),
		Abstract: meta("citation_abstract"),
	}
	if m.Title == "" {
		return nil, fmt.Errorf("arXiv page %s (%q): %w", pageURL, normaliseSpace(doc.Find("title").Text()), ErrArxivNotFound)
	}
	doc.Find(`meta[name="citation_author"]`).Each(func(_ int, s *goquery.Selection) {
		m.Authors = append(m.Authors, firstLast(s.AttrOr("content", "")))
	})
	if og := doc.Find(`meta[property="og:url"]`).AttrOr("content", ""); og != "" {
		if i := strings.LastIndex(og, "v"); i > 0 && stripVersion(og) != og {
			m.Version = og[i:]
		}
	}
	if m.Abstract == "" {
		bq := doc.Find("blockquote.abstract").First().Clone()
		bq.Find(".descriptor").Remove()
		m.Abstract = normaliseSpace(bq.Text())
	}
	return m, nil
}

func slashDate(s string) string { return strings.ReplaceAll(s, "/", "-") }

// firstLast turns "Moran, Kelly R" into "Kelly R Moran".
func firstLast(s string) string {
	last, first, ok := strings.Cut(s, ",")
	if !ok {
		return strings.TrimSpace(s)
	}
	return strings.TrimSpace(first) + " " + strings.TrimSpace(last)
}

// PithRecord is the part of /pith/<ID>.json citecrawl reads.
type PithRecord struct {
	RecordType string `json:"record_type"`
	PithNumber string `json:"pith_number"`
	Source     struct {
		ID   string `json:"id"`
		Kind string `json:"kind"`
	} `json:"source"`
	Paper GraphPaper `json:"paper"`
}

// ParsePithRecord reads a /pith/<ID>.json body fetched from src.
func ParsePithRecord(src string, body []byte) (*PithRecord, error) {
	var p PithRecord
	if err := gojson.Unmarshal(body, &p); err != nil {
		return nil, fmt.Errorf("pith record %s: not the expected JSON: %w", src, err)
	}
	if p.Paper.Title == "" && p.Source.ID == "" {
		return nil, fmt.Errorf("pith record %s: has neither paper.title nor source.id", src)
	}
	return &p, nil
}

// ArxivURL builds an arXiv page URL: kind is "abs" or "html".
func ArxivURL(base, kind, id string) string {
	return strings.TrimRight(base, "/") + "/" + kind + "/" + id
}

// RecordURL is the HTML record page of a Pith paper.
func RecordURL(hubURL, pithID string) string {
	return resolveRef(hubURL, "/pith/"+pithID)
}

// PithJSONURL is where the JSON record of a Pith paper lives.
func PithJSONURL(hubURL, pithID string) string {
	return resolveRef(hubURL, "/pith/"+pithID+".json")
}
