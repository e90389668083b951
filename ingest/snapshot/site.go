// Package snapshot is a small offline copy of the pages citecrawl reads,
// written by this project and modelled on SITES.md: citation hubs, record
// pages and graph.json snapshots. `citecrawl run --offline` serves it on
// loopback, and the tests crawl the same site.
package snapshot

import (
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html"
	"net/http"
	"sort"
	"strings"
	"sync"
)

// Hub is one citation hub of the snapshot.
type Hub struct {
	ID            string
	Title         string
	CitedArxiv    string
	Canonical     bool
	BackgroundPct *int
	Indexing      bool // "Polarity classification is still indexing."
	HeadlineCount int  // the count in the indexing headline (may exceed len(Papers))
	Unresolved    bool // title is raw reference text
	SplitCount    bool // the citing count and its words on two lines
	Abstract      string
	RoleFacet     map[string]int
	PolarityFacet map[string]int
	Papers        []Paper
	Related       []string // ids of other hubs this page links to
}

// Paper is one citing paper of the snapshot.
type Paper struct {
	Title   string
	Summary string
	Cat     string
	Date    string
	Verdict string
	Novelty string // "6.0" or "none"
	Refs    int    // 0: the meta line has no refs part
	// FullText is how the paper's arXiv full text cites the hub's work.
	FullText FullTextStyle
	// Cites are the citing sentences of the full text; "[CITE]" marks
	// the hub's work.
	Cites []string
}

// PithID is the paper's 26-character Pith id, derived from its title so it
// is stable across snapshot versions.
func (p Paper) PithID() string {
	sum := sha256.Sum256([]byte(p.Title))
	return base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(sum[:16])
}

// Arxiv is a made-up but well-formed arXiv id for the paper.
func (p Paper) Arxiv() string {
	sum := sha256.Sum256([]byte("arxiv:" + p.Title))
	return fmt.Sprintf("%s.%05d", strings.ReplaceAll(p.Date[2:7], "-", ""), int(sum[0])<<8|int(sum[1]))
}

// Style names a markup of hub pages. Both show the same text; the parser
// must read both.
type Style string

const (
	StyleCards Style = "cards" // semantic sections, cards and lists
	StyleTable Style = "table" // one table, <br>-separated, text bullets
)

// Site serves the snapshot. Its hubs can be replaced while it runs, which
// is how tests simulate a hub that changes between crawls.
type Site struct {
	mu      sync.RWMutex
	hubs    map[string]Hub
	papers  map[string]Paper    // by Pith id
	byArxiv map[string]Paper    // by arXiv id
	cites   map[string][]string // Pith id -> hub ids citing through it
	style   Style
}

// New returns a site with the given hubs, rendered in style.
func New(style Style, hubs ...Hub) *Site {
	s := &Site{style: style}
	s.SetHubs(hubs...)
	return s
}

// Default is the shipped snapshot: the Roadmap hub with its 18 citing
// papers, a hub whose polarity is still indexing, and an unresolved hub.
func Default() *Site { return New(StyleCards, DefaultHubs()...) }

// SetHubs replaces every hub of the site.
func (s *Site) SetHubs(hubs ...Hub) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hubs = map[string]Hub{}
	s.papers = map[string]Paper{}
	s.byArxiv = map[string]Paper{}
	s.cites = map[string][]string{}
	for _, h := range hubs {
		s.hubs[h.ID] = h
		for _, p := range h.Papers {
			s.papers[p.PithID()] = p
			s.byArxiv[p.Arxiv()] = p
			s.cites[p.PithID()] = append(s.cites[p.PithID()], h.ID)
		}
	}
}

// Hubs returns the hubs, sorted by id.
func (s *Site) Hubs() []Hub {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.hubsSorted()
}

// HubURLs returns the URL of every hub on a server at base.
func (s *Site) HubURLs(base string) []string {
	var out []string
	for _, h := range s.Hubs() {
		out = append(out, base+"/citations/"+h.ID)
	}
	return out
}

// DistinctPapers is the number of (hub, citing paper) pairs, which is the
// number of records a full crawl of the site produces.
func (s *Site) DistinctPapers() int {
	n := 0
	for _, h := range s.Hubs() {
		n += len(h.Papers)
	}
	return n
}

// ServeHTTP serves the site's pages. Every page has an ETag; a request
// whose If-None-Match matches gets 304 Not Modified.
func (s *Site) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.RLock()
	ctype, body, ok := s.page(r.URL.Path)
	s.mu.RUnlock()
	if !ok {
		http.NotFound(w, r)
		return
	}
	sum := sha256.Sum256([]byte(body))
	etag := `"` + hex.EncodeToString(sum[:8]) + `"`
	w.Header().Set("ETag", etag)
	if r.Header.Get("If-None-Match") == etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.Header().Set("Content-Type", ctype)
	fmt.Fprint(w, body)
}

const (
	typeHTML = "text/html; charset=utf-8"
	typeJSON = "application/json"
)

// page renders the page at path.
func (s *Site) page(path string) (ctype, body string, ok bool) {
	switch {
	case path == "/robots.txt":
		return "text/plain", "# citecrawl offline snapshot\nUser-agent: *\nDisallow: /private/\n", true
	case path == "/":
		return typeHTML, s.renderIndex(), true
	case strings.HasPrefix(path, "/citations/"):
		h, ok := s.hubs[strings.TrimPrefix(path, "/citations/")]
		if !ok {
			return "", "", false
		}
		return typeHTML, RenderHub(h, s.style), true
	case strings.HasPrefix(path, "/api/pith-number/") && strings.HasSuffix(path, "/graph.json"):
		p, ok := s.papers[strings.TrimSuffix(strings.TrimPrefix(path, "/api/pith-number/"), "/graph.json")]
		return typeJSON, toJSON(graphJSON(p)), ok
	case strings.HasPrefix(path, "/pith/") && strings.HasSuffix(path, ".json"):
		p, ok := s.papers[strings.TrimSuffix(strings.TrimPrefix(path, "/pith/"), ".json")]
		return typeJSON, toJSON(pithJSON(p)), ok
	case strings.HasPrefix(path, "/pith/"):
		p, ok := s.papers[strings.TrimPrefix(path, "/pith/")]
		if !ok {
			return "", "", false
		}
		return typeHTML, s.renderRecord(p), true
	case strings.HasPrefix(path, "/abs/"):
		p, ok := s.byArxiv[strings.TrimPrefix(path, "/abs/")]
		if !ok {
			return typeHTML, renderAbsNotFound(strings.TrimPrefix(path, "/abs/")), true
		}
		return typeHTML, renderAbs(p), true
	case strings.HasPrefix(path, "/html/"):
		p, ok := s.byArxiv[stripVersion(strings.TrimSuffix(strings.TrimPrefix(path, "/html/"), "/"))]
		if !ok || p.FullText == NoFullText {
			return "", "", false
		}
		return typeHTML, s.renderFullText(p), true
	}
	return "", "", false
}

func toJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b) + "\n"
}

// metaLine is "cs.AI · 2026-05-11 · unverdicted · novelty 6.0 · 2 refs".
func metaLine(p Paper) string {
	parts := []string{p.Cat, p.Date, p.Verdict, "novelty " + p.Novelty}
	switch {
	case p.Refs == 1:
		parts = append(parts, "1 ref")
	case p.Refs > 1:
		parts = append(parts, fmt.Sprintf("%d refs", p.Refs))
	}
	return strings.Join(parts, " · ")
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// headline is the hub's second line of text.
func headline(h Hub) string {
	if h.Indexing {
		n := h.HeadlineCount
		if n == 0 {
			n = len(h.Papers)
		}
		return fmt.Sprintf("%d %s cite this work. Polarity classification is still indexing.", n, plural(n, "Pith paper", "Pith papers"))
	}
	if h.BackgroundPct != nil {
		return fmt.Sprintf("Canonical reference. %d%% of citing Pith papers cite this work as background.", *h.BackgroundPct)
	}
	return ""
}

// facets are the blocks under "hub tools", in the order the site prints them.
type facet struct {
	label  string
	counts map[string]int
}

func facets(h Hub) []facet {
	fields, years, verdicts := map[string]int{}, map[string]int{}, map[string]int{}
	for _, p := range h.Papers {
		fields[p.Cat]++
		years[p.Date[:4]]++
		verdicts[strings.ToUpper(p.Verdict)]++
	}
	return []facet{
		{"citation-role summary", h.RoleFacet},
		{"citation-polarity summary", h.PolarityFacet},
		{"fields", fields},
		{"years", years},
		{"verdicts", verdicts},
	}
}

func pairs(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteString(" ")
		}
		fmt.Fprintf(&b, "%s %d", k, m[k])
	}
	return b.String()
}

// representative are the cards the hub features: the first six papers.
func representative(h Hub) []Paper { return h.Papers[:min(6, len(h.Papers))] }

var esc = html.EscapeString

// RenderHub writes a hub page in the given markup style.
func RenderHub(h Hub, style Style) string {
	if style == StyleTable {
		return renderHubTable(h)
	}
	return renderHubCards(h)
}

func renderHubCards(h Hub) string {
	var b strings.Builder
	n := len(h.Papers)
	fmt.Fprintf(&b, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>%s - citations - Pith</title><style>.k{font-size:small}</style></head><body>\n", esc(h.Title))
	b.WriteString("<nav class=\"top\"><a href=\"/\">Pith</a> <a href=\"/private/admin\">admin</a></nav>\n<main>\n<header class=\"hub-head\">")
	b.WriteString("<span class=\"k\">hub</span>")
	if h.Canonical {
		b.WriteString(" <span class=\"badge\">Canonical reference</span>")
	}
	if h.CitedArxiv != "" {
		fmt.Fprintf(&b, "<h1><a href=\"/paper/%s\">%s</a></h1>\n", h.CitedArxiv, esc(h.Title))
	} else {
		fmt.Fprintf(&b, "<h1>%s</h1>\n", esc(h.Title))
	}
	if h.Unresolved {
		b.WriteString("<p class=\"note\">This title has not finished resolving; it is shown as the raw reference text.</p>\n")
	}
	if hl := headline(h); hl != "" {
		fmt.Fprintf(&b, "<p class=\"headline\">%s</p>\n", esc(hl))
	}
	if h.SplitCount {
		fmt.Fprintf(&b, "<div class=\"stat\"><div class=\"num\">%d</div><div>%s citing it</div></div>\n", n, plural(n, "Pith paper", "Pith papers"))
	} else {
		fmt.Fprintf(&b, "<div class=\"stat\"><b>%d</b> %s citing it</div>\n", n, plural(n, "Pith paper", "Pith papers"))
	}
	if h.BackgroundPct != nil {
		fmt.Fprintf(&b, "<div class=\"stat\">Background %d%% of classified citations</div>\n", *h.BackgroundPct)
	}
	for _, id := range h.Related {
		fmt.Fprintf(&b, "<p class=\"related\"><a href=\"/citations/%s\">a related hub</a></p>\n", id)
	}
	b.WriteString("</header>\n")
	if h.Abstract != "" {
		fmt.Fprintf(&b, "<section class=\"abs\"><h2>abstract</h2><p>%s</p></section>\n", esc(h.Abstract))
	}
	b.WriteString("<section class=\"tools\"><h2>hub tools</h2>\n")
	for _, f := range facets(h) {
		fmt.Fprintf(&b, "<div class=\"facet\"><h3>%s</h3><div class=\"pairs\">%s</div></div>\n", f.label, esc(pairs(f.counts)))
	}
	b.WriteString("</section>\n<section class=\"rep\"><h2>representative citing papers</h2>\n")
	for _, p := range representative(h) {
		fmt.Fprintf(&b, "<article class=\"card\"><h3><a href=\"/pith/%s\">%s</a></h3><div class=\"meta\">%s</div><p>%s</p></article>\n",
			p.PithID(), esc(p.Title), esc(metaLine(p)), esc(p.Summary))
	}
	b.WriteString("</section>\n<section class=\"explorer\"><h2>citing papers explorer</h2><ul>\n")
	for _, p := range h.Papers {
		fmt.Fprintf(&b, "<li><a href=\"/pith/%s\">%s</a><p>%s</p></li>\n", p.PithID(), esc(p.Title), esc(p.Summary))
	}
	b.WriteString("</ul></section>\n</main></body></html>\n")
	return b.String()
}

// renderHubTable is an older-looking markup of the same text: one table,
// <br> line breaks, text bullets, cards linking by arXiv id on the www host.
func renderHubTable(h Hub) string {
	var b strings.Builder
	n := len(h.Papers)
	fmt.Fprintf(&b, "<html><head><title>%s</title></head><body><table width=\"100%%\">\n", esc(h.Title))
	b.WriteString("<tr><td>hub")
	if h.Canonical {
		b.WriteString("<br>Canonical reference")
	}
	fmt.Fprintf(&b, "</td></tr>\n<tr><td><font size=\"5\">%s</font></td></tr>\n", esc(h.Title))
	if h.Unresolved {
		b.WriteString("<tr><td><i>title has not finished resolving</i></td></tr>\n")
	}
	if hl := headline(h); hl != "" {
		fmt.Fprintf(&b, "<tr><td>%s</td></tr>\n", esc(hl))
	}
	fmt.Fprintf(&b, "<tr><td>%d<br>%s citing it</td></tr>\n", n, plural(n, "Pith paper", "Pith papers"))
	if h.BackgroundPct != nil {
		fmt.Fprintf(&b, "<tr><td>Background %d%% of classified citations</td></tr>\n", *h.BackgroundPct)
	}
	if h.Abstract != "" {
		fmt.Fprintf(&b, "<tr><th>abstract</th></tr><tr><td>%s</td></tr>\n", esc(h.Abstract))
	}
	b.WriteString("<tr><th>hub tools</th></tr>\n")
	for _, f := range facets(h) {
		fmt.Fprintf(&b, "<tr><td>%s<br>%s</td></tr>\n", f.label, esc(pairs(f.counts)))
	}
	b.WriteString("<tr><th>representative citing papers</th></tr>\n")
	for _, p := range representative(h) {
		fmt.Fprintf(&b, "<tr><td><a href=\"https://arxiv.org/abs/%s\">%s</a><br>%s<br>%s</td></tr>\n", p.Arxiv(), esc(p.Title), esc(metaLine(p)), esc(p.Summary))
	}
	b.WriteString("<tr><th>citing papers explorer</th></tr>\n<tr><td>")
	for _, p := range h.Papers {
		fmt.Fprintf(&b, "-<br><a href=\"https://www.pith.science/pith/%s\">%s</a><br>%s<br>\n", p.PithID(), esc(p.Title), esc(p.Summary))
	}
	b.WriteString("</td></tr>\n</table></body></html>\n")
	return b.String()
}

func (s *Site) renderIndex() string {
	var b strings.Builder
	b.WriteString("<html><body><h1>citecrawl offline snapshot</h1><ul>\n")
	for _, h := range s.hubsSorted() {
		fmt.Fprintf(&b, "<li><a href=\"/citations/%s\">%s</a></li>\n", h.ID, esc(h.Title))
	}
	b.WriteString("</ul></body></html>\n")
	return b.String()
}

func (s *Site) hubsSorted() []Hub {
	out := make([]Hub, 0, len(s.hubs))
	for _, h := range s.hubs {
		out = append(out, h)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

func (s *Site) renderRecord(p Paper) string {
	var b strings.Builder
	fmt.Fprintf(&b, "<html><body><h1>%s</h1><p>pith:%s · arXiv:%s</p><p>%s</p><h2>cites</h2><ul>\n", esc(p.Title), p.PithID()[:8], p.Arxiv(), esc(p.Summary))
	for _, id := range s.cites[p.PithID()] {
		fmt.Fprintf(&b, "<li><a href=\"/citations/%s\">%s</a></li>\n", id, esc(s.hubs[id].Title))
	}
	b.WriteString("</ul></body></html>\n")
	return b.String()
}

func authors(p Paper) string {
	first := []string{"Ada", "Bao", "Chidi", "Dana", "Eitan", "Farah", "Goran", "Hana"}
	last := []string{"Okafor", "Lindqvist", "Tanaka", "Moreau", "Silva", "Haddad", "Novak", "Kaur"}
	sum := sha256.Sum256([]byte("authors:" + p.Title))
	n := 1 + int(sum[0])%3
	names := make([]string, n)
	for i := range names {
		names[i] = first[int(sum[1+i])%len(first)] + " " + last[int(sum[4+i])%len(last)]
	}
	return strings.Join(names, ", ")
}

func abstract(p Paper) string {
	return p.Summary + " This abstract is part of the citecrawl offline snapshot and was written for it."
}

// graphJSON is the /api/pith-number/<ID>/graph.json snapshot, with the
// keys the real endpoint uses.
func graphJSON(p Paper) any {
	unreviewed := p.Verdict == "unverdicted"
	verdict := map[string]any{"id": nil, "created_at": nil, "strongest_claim": "", "one_line_summary": "", "weakest_assumption": "", "pipeline_version": nil}
	if !unreviewed {
		verdict = map[string]any{"id": "v-" + p.PithID()[:8], "created_at": p.Date + "T12:00:00Z", "strongest_claim": p.Summary,
			"one_line_summary": p.Summary, "weakest_assumption": "", "pipeline_version": "snapshot-1", "verdict": strings.ToUpper(p.Verdict)}
	}
	return map[string]any{
		"paper": map[string]any{
			"title": p.Title, "license": "CC-BY-4.0", "headline": p.Summary, "cross_cats": []string{},
			"primary_cat": p.Cat, "authors_text": authors(p), "submitted_at": p.Date + "T09:30:00Z",
			"abstract_excerpt": abstract(p),
		},
		"claims": map[string]any{"count": 1, "items": []map[string]any{
			{"kind": "one_line_summary", "text": p.Summary, "source": "pith", "status": "published", "claim_id": "C1", "attestation": nil},
		}},
		"source":     map[string]any{"id": p.Arxiv(), "kind": "arxiv", "version": 1},
		"verdict":    verdict,
		"references": map[string]any{"count": p.Refs, "sample": []string{}, "resolved_work": nil, "internal_anchors": []string{}},
		"integrity":  map[string]any{}, "formal_canon": nil, "author_claims": []string{}, "builder_version": "snapshot-1",
	}
}

// pithJSON is the /pith/<ID>.json record.
func pithJSON(p Paper) any {
	return map[string]any{
		"record_type": "pith_number_record", "pith_number": "pith:" + p.Date[:4] + ":" + p.PithID(),
		"short_pith_number": "pith:" + p.PithID()[:8], "source": map[string]any{"id": p.Arxiv(), "kind": "arxiv", "version": 1},
		"paper": graphJSON(p).(map[string]any)["paper"], "canonical_record": nil, "canonical_sha256": "", "verification_status": "unverified",
	}
}
