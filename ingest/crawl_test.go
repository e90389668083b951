package ingest

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/citecrawl/citecrawl/record"
	"github.com/citecrawl/citecrawl/retry"
)

// The crawling rules run here over real HTTP on loopback and an in-memory
// store: no broker, no classifier, no sink.

const (
	testHubID = "11111111-2222-3333-4444-555555555555"
	pithA     = "AAAAAAAAAAAAAAAAAAAAAAAAAA"
)

// memory is an in-memory Validators, History and Budget.
type memory struct {
	mu         sync.Mutex
	validators map[string]Validator
	pages      map[string][]SourcePage
	members    map[string]map[string]string
	budget     map[string]int
	crawled    map[string]*Response // crawl id + " " + url
}

func newMemory() *memory {
	return &memory{validators: map[string]Validator{}, pages: map[string][]SourcePage{},
		members: map[string]map[string]string{}, budget: map[string]int{}, crawled: map[string]*Response{}}
}

func (m *memory) Page(_ context.Context, crawlID, u string) (*Response, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.crawled[crawlID+" "+u]
	return r, ok
}

func (m *memory) StorePage(_ context.Context, crawlID, u string, r *Response) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.crawled[crawlID+" "+u] = r
	return nil
}

func (m *memory) Validator(_ context.Context, u string) (Validator, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.validators[u]
	return v, ok
}

func (m *memory) StoreValidator(_ context.Context, u string, v Validator) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.validators[u] = v
	return nil
}

func (m *memory) RecordPages(_ context.Context, id string) []SourcePage {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.pages[id]
}

func (m *memory) StoreRecordPages(_ context.Context, id string, pages []SourcePage) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.pages[id] = pages
	return nil
}

func (m *memory) HubMembers(_ context.Context, hubID string) map[string]string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.members[hubID]
}

func (m *memory) StoreHubMembers(_ context.Context, hubID string, members map[string]string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.members[hubID] = members
	return nil
}

func (m *memory) TakeBudget(_ context.Context, crawlID string, limit int) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.budget[crawlID] >= limit {
		return false, nil
	}
	m.budget[crawlID]++
	return true, nil
}

// site is a loopback Pith and arXiv whose pages a test sets and changes:
// path to body, or to a status. A page with an ETag answers 304 to it.
type site struct {
	t        *testing.T
	base     string
	mu       sync.Mutex
	pages    map[string]string
	statuses map[string]int
	etags    map[string]string
	hits     map[string]int
}

func newSite(t *testing.T) *site {
	s := &site{t: t, pages: map[string]string{}, statuses: map[string]int{}, etags: map[string]string{}, hits: map[string]int{}}
	s.base = siteWithoutRobots(t, s.serve).URL
	return s
}

func (s *site) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := r.URL.Path
	s.hits[p]++
	if code := s.statuses[p]; code != 0 {
		http.Error(w, http.StatusText(code), code)
		return
	}
	body, ok := s.pages[p]
	if !ok {
		http.NotFound(w, r)
		return
	}
	if tag := s.etags[p]; tag != "" {
		w.Header().Set("ETag", tag)
		if r.Header.Get("If-None-Match") == tag {
			w.WriteHeader(http.StatusNotModified)
			return
		}
	}
	fmt.Fprint(w, body)
}

func (s *site) set(path, body string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pages[path] = body
	delete(s.statuses, path)
}

func (s *site) fail(path string, code int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.statuses[path] = code
}

func (s *site) etag(path, tag string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.etags[path] = tag
}

func (s *site) count(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hits[path]
}

func (s *site) hubURL() string { return s.base + "/citations/" + testHubID }

// hub lists papers: "A" is on Pith (pithA), "B" only on arXiv
// (2601.00002); links are other hubs the page links to.
func (s *site) hub(papers string, links ...string) {
	var b strings.Builder
	fmt.Fprintf(&b, "<html><body><p>hub</p><h1>The Cited Work</h1><p>%d Pith papers citing it</p>\n", len(papers))
	for _, l := range links {
		fmt.Fprintf(&b, "<p class=\"related\"><a href=\"%s\">a related hub</a></p>\n", l)
	}
	b.WriteString("<h2>citing papers explorer</h2><ul>\n")
	if strings.Contains(papers, "A") {
		fmt.Fprintf(&b, "<li><a href=\"/pith/%s\">Paper A</a><p>A summary.</p></li>\n", pithA)
	}
	if strings.Contains(papers, "B") {
		b.WriteString("<li><a href=\"https://arxiv.org/abs/2601.00002\">Paper B</a><p>B summary.</p></li>\n")
	}
	b.WriteString("</ul></body></html>")
	s.set("/citations/"+testHubID, b.String())
}

func pithJSON(arxiv string) string {
	return fmt.Sprintf(`{"record_type":"pith_number_record","source":{"id":%q,"kind":"arxiv"},"paper":{"title":"Paper A","abstract_excerpt":"A's abstract from Pith."}}`, arxiv)
}

func graphJSON(arxiv string) string {
	return fmt.Sprintf(`{"paper":{"title":"Paper A","authors_text":"Ann Author, Bob Writer","primary_cat":"cs.CL","submitted_at":"2026-01-05T00:00:00Z"},"source":{"id":%q,"kind":"arxiv"}}`, arxiv)
}

const absB = `<html><head><meta name="citation_title" content="Paper B"><meta name="citation_author" content="Writer, Carla">
<meta name="citation_date" content="2026/01/07"><meta name="citation_arxiv_id" content="2601.00002"></head>
<body><blockquote class="abstract"><span class="descriptor">Abstract:</span> B's abstract from arXiv.</blockquote></body></html>`

// fullTextPage is a LaTeXML page whose one bibliography entry is the
// hub's work (when lists) and whose text cites it by a link (when linked)
// or by a plain [1].
func fullTextPage(lists, linked bool) string {
	entry := "A. Other. “An unrelated study of evaluation,” 2021."
	if lists {
		entry = "T. Sorensen and others. “The Cited Work,” 2024."
	}
	marker := "[1]"
	if linked {
		marker = `<cite class="ltx_cite">[<a href="#bib.bib1" class="ltx_ref">1</a>]</cite>`
	}
	return `<html><body><section id="S1" class="ltx_section"><h2 class="ltx_title ltx_title_section">1 Introduction</h2>
<div id="S1.p1" class="ltx_para"><p class="ltx_p">Models serve people with different values. We use the roadmap of ` + marker + ` to organise our study.</p></div></section>
<section id="bib" class="ltx_bibliography"><ul class="ltx_biblist"><li id="bib.bib1" class="ltx_bibitem"><span class="ltx_tag ltx_tag_bibitem">[1]</span><span class="ltx_bibblock">` + entry + `</span></li></ul></section></body></html>`
}

var sharedSplitter = sync.OnceValues(NewSplitter)

func testCrawler(t *testing.T, s *site, cfg CrawlConfig, opts ...CrawlerOption) *Crawler {
	t.Helper()
	sp, err := sharedSplitter()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ArxivBase == "" {
		cfg.ArxivBase = s.base
	}
	now := func() time.Time { return time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC) }
	opts = append([]CrawlerOption{WithSplitter(sp), WithClock(now)}, opts...)
	c, err := NewCrawler(NewFetcher(testFetchConfig(), zerolog.Nop()), cfg, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (s *site) job(p CitingPaper) PaperJob {
	hub := record.Hub{URL: s.hubURL(), ID: testHubID, Title: "The Cited Work", CitedWorkIDs: []string{}}
	return PaperJob{Hub: hub, HubSource: s.hubURL(), Paper: p, CrawlID: "run1"}
}

var (
	paperA = CitingPaper{Title: "Paper A", PithID: pithA}
	paperB = CitingPaper{Title: "Paper B", ArxivID: "2601.00002", URL: "https://arxiv.org/abs/2601.00002"}
)

func build(t *testing.T, c *Crawler, job PaperJob) *PaperBuild {
	t.Helper()
	b, err := c.BuildPaper(context.Background(), job)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Metadata comes from Pith's JSON record, then graph.json, and arXiv's
// abstract page only when neither is there; a source gone for good is
// named in missing.
func TestBuildPaperResolutionOrder(t *testing.T) {
	jsonPath, graphPath := "/pith/"+pithA+".json", "/api/pith-number/"+pithA+"/graph.json"
	for _, tc := range []struct {
		name           string
		paper          CitingPaper
		json, graph    bool // served, else 404
		fetchGraph     bool
		wantAbstract   string
		wantAuthors    int
		wantAbs        int // requests of the abstract page
		wantGraph      int
		wantMissing    []string
		wantNotMissing []string
	}{
		{name: "pith json and graph", paper: paperA, json: true, graph: true, fetchGraph: true,
			wantAbstract: "A's abstract from Pith.", wantAuthors: 2, wantGraph: 1, wantNotMissing: []string{"pith_json", "graph", "paper.authors"}},
		{name: "graph not asked for", paper: paperA, json: true, graph: true,
			wantAbstract: "A's abstract from Pith.", wantMissing: []string{"paper.authors"}},
		{name: "pith json gone, graph kept", paper: paperA, graph: true, fetchGraph: true,
			wantAuthors: 2, wantGraph: 1, wantMissing: []string{"pith_json", "paper.abstract"}},
		{name: "both gone, arXiv id from the hub", paper: CitingPaper{Title: "Paper A", PithID: pithA, ArxivID: "2601.00002"}, fetchGraph: true,
			wantAbstract: "B's abstract from arXiv.", wantAuthors: 1, wantAbs: 1, wantGraph: 1, wantMissing: []string{"pith_json", "graph"}},
		{name: "not on Pith", paper: paperB,
			wantAbstract: "B's abstract from arXiv.", wantAuthors: 1, wantAbs: 1, wantMissing: []string{"paper.pith"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSite(t)
			if tc.json {
				s.set(jsonPath, pithJSON("2601.00001"))
			}
			if tc.graph {
				s.set(graphPath, graphJSON("2601.00001"))
			}
			s.set("/abs/2601.00002", absB)
			c := testCrawler(t, s, CrawlConfig{FetchGraph: tc.fetchGraph})
			r := build(t, c, s.job(tc.paper)).Record
			if r.Paper.Abstract != tc.wantAbstract || len(r.Paper.Authors) != tc.wantAuthors {
				t.Errorf("abstract %q, authors %v; want %q and %d authors", r.Paper.Abstract, r.Paper.Authors, tc.wantAbstract, tc.wantAuthors)
			}
			if n := s.count("/abs/2601.00001") + s.count("/abs/2601.00002"); n != tc.wantAbs {
				t.Errorf("abstract page fetched %d times, want %d", n, tc.wantAbs)
			}
			if n := s.count(graphPath); n != tc.wantGraph {
				t.Errorf("graph fetched %d times, want %d", n, tc.wantGraph)
			}
			for _, m := range tc.wantMissing {
				if !slices.Contains(r.Missing, m) {
					t.Errorf("missing %v lacks %s", r.Missing, m)
				}
			}
			for _, m := range tc.wantNotMissing {
				if slices.Contains(r.Missing, m) {
					t.Errorf("missing %v names %s", r.Missing, m)
				}
			}
			if r.SourceURLs[0] != s.hubURL() {
				t.Errorf("source_urls %v do not start with the hub", r.SourceURLs)
			}
			if r.FullText != nil {
				t.Errorf("full text %+v read although not asked for", r.FullText)
			}
		})
	}
}

// The arXiv id is the hub's, else Pith's, else the graph's; the full text
// is fetched by it.
func TestBuildPaperArxivIDOrder(t *testing.T) {
	for _, tc := range []struct {
		name, hub, pith, graph, want string
	}{
		{"hub wins", "2601.00005", "2601.00001", "2601.00009", "2601.00005"},
		{"pith before graph", "", "2601.00001", "2601.00009", "2601.00001"},
		{"graph last", "", "", "2601.00009", "2601.00009"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSite(t)
			if tc.pith != "" {
				s.set("/pith/"+pithA+".json", pithJSON(tc.pith))
			} else {
				s.set("/pith/"+pithA+".json", `{"paper":{"title":"Paper A"}}`)
			}
			s.set("/api/pith-number/"+pithA+"/graph.json", graphJSON(tc.graph))
			s.set("/html/"+tc.want, fullTextPage(true, true))
			c := testCrawler(t, s, CrawlConfig{FetchGraph: true, FullText: true})
			r := build(t, c, s.job(CitingPaper{Title: "Paper A", PithID: pithA, ArxivID: tc.hub})).Record
			if r.Paper.Arxiv != tc.want || r.FullText.URL != s.base+"/html/"+tc.want || r.FullText.Status != record.FullTextOK {
				t.Errorf("arxiv %q, full text %+v; want %s", r.Paper.Arxiv, r.FullText, tc.want)
			}
		})
	}
}

// Every full-text status, and a passing failure that is an error to
// retry rather than a status.
func TestBuildPaperFullTextStatus(t *testing.T) {
	for _, tc := range []struct {
		name       string
		paper      CitingPaper
		page       string // "" : 404
		fallback   bool
		want       string
		wantReason string
		contexts   int
	}{
		{name: "no arXiv id", paper: CitingPaper{Title: "Paper C", PithID: "CCCCCCCCCCCCCCCCCCCCCCCCCC"}, want: record.FullTextNoArxivID},
		{name: "no full text", paper: paperB, want: record.FullTextMissing, wantReason: "HTTP 404"},
		{name: "not LaTeXML", paper: paperB, page: "<html><body><p>Withdrawn.</p></body></html>", want: record.FullTextUnparsable, wantReason: "bibliography"},
		{name: "work not listed", paper: paperB, page: fullTextPage(false, true), want: record.FullTextNoMatch, wantReason: "none of 1 references"},
		{name: "listed, never linked", paper: paperB, page: fullTextPage(true, false), want: record.FullTextNoLinks, wantReason: "no citation links to it"},
		{name: "listed, plain markers read", paper: paperB, page: fullTextPage(true, false), fallback: true, want: record.FullTextNoLinks, wantReason: "plain [n] markers", contexts: 1},
		{name: "linked", paper: paperB, page: fullTextPage(true, true), want: record.FullTextOK, contexts: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSite(t)
			s.set("/abs/2601.00002", absB)
			if tc.page != "" {
				s.set("/html/2601.00002", tc.page)
			}
			c := testCrawler(t, s, CrawlConfig{FullText: true, TextFallback: tc.fallback})
			r := build(t, c, s.job(tc.paper)).Record
			ft := r.FullText
			if ft == nil || ft.Status != tc.want || !strings.Contains(ft.Reason, tc.wantReason) || len(r.Contexts) != tc.contexts {
				t.Fatalf("full text %+v with %d contexts; want status %q, reason with %q, %d contexts", ft, len(r.Contexts), tc.want, tc.wantReason, tc.contexts)
			}
			if fetched := slices.Contains(r.SourceURLs, s.base+"/html/2601.00002"); fetched != (tc.page != "") {
				t.Errorf("source_urls %v", r.SourceURLs)
			}
			if tc.want == record.FullTextOK && (ft.Entry != "bib.bib1" || ft.Method != "title" || ft.LinkedCitations != 1 || ft.References != 1) {
				t.Errorf("match %+v", ft)
			}
		})
	}
	t.Run("server error is retried later", func(t *testing.T) {
		s := newSite(t)
		s.set("/abs/2601.00002", absB)
		s.fail("/html/2601.00002", http.StatusBadGateway)
		c := testCrawler(t, s, CrawlConfig{FullText: true})
		_, err := c.BuildPaper(context.Background(), s.job(paperB))
		if err == nil || retry.IsPermanent(err) || !strings.Contains(err.Error(), "HTTP 502") {
			t.Fatalf("err = %v, want a retryable HTTP 502", err)
		}
	})
}

func crawlHub(t *testing.T, c *Crawler, job HubJob) *HubCrawl {
	t.Helper()
	h, err := c.CrawlHub(context.Background(), job)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func commit(t *testing.T, cs []Commit) {
	t.Helper()
	for _, c := range cs {
		if err := c(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
}

// A paper the hub stopped listing gets a record marked gone, once the
// crawl that last saw it was committed; without history nothing is gone.
func TestCrawlHubGone(t *testing.T) {
	s := newSite(t)
	mem := newMemory()
	c := testCrawler(t, s, CrawlConfig{}, WithHistory(mem))
	job := HubJob{URL: s.hubURL(), CrawlID: "run1"}

	s.hub("AB")
	first := crawlHub(t, c, job)
	if len(first.Papers) != 2 || len(first.Gone) != 0 {
		t.Fatalf("first crawl: %d papers, %d gone", len(first.Papers), len(first.Gone))
	}
	s.hub("A")
	if g := crawlHub(t, c, job).Gone; len(g) != 0 {
		t.Fatalf("%d gone before the first crawl was committed", len(g))
	}
	commit(t, first.Commits)
	second := crawlHub(t, c, job)
	if len(second.Gone) != 1 {
		t.Fatalf("%d gone, want Paper B", len(second.Gone))
	}
	g := second.Gone[0]
	if !g.Gone || g.ID != record.ID(testHubID, paperB.Key()) || g.Paper.Title != "Paper B" || g.Hub.ID != testHubID ||
		!slices.Equal(g.SourceURLs, []string{s.hubURL()}) || g.Contexts == nil || g.Schema != record.Schema {
		t.Errorf("gone record %+v", g)
	}
	commit(t, second.Commits)
	if g := crawlHub(t, c, job).Gone; len(g) != 0 {
		t.Errorf("Paper B gone again: %+v", g)
	}

	plain := testCrawler(t, s, CrawlConfig{})
	s.hub("AB")
	commit(t, crawlHub(t, plain, job).Commits)
	s.hub("")
	if g := crawlHub(t, plain, job).Gone; len(g) != 0 {
		t.Errorf("gone without history: %+v", g)
	}
}

// A hub answering 304 to the validator stored by a committed crawl is not
// parsed again; the validator is stored only by the commit.
func TestCrawlHubConditional(t *testing.T) {
	s := newSite(t)
	s.hub("AB")
	s.etag("/citations/"+testHubID, `"v1"`)
	mem := newMemory()
	c := testCrawler(t, s, CrawlConfig{Conditional: true}, WithValidators(mem))
	job := HubJob{URL: s.hubURL()}
	first := crawlHub(t, c, job)
	if first.NotModified || len(first.Papers) != 2 {
		t.Fatalf("first crawl %+v", first)
	}
	if again := crawlHub(t, c, job); again.NotModified {
		t.Fatal("not modified before the first crawl was committed")
	}
	commit(t, first.Commits)
	if again := crawlHub(t, c, job); !again.NotModified || len(again.Papers) != 0 {
		t.Fatalf("after commit: %+v, want not modified", again)
	}
	off := testCrawler(t, s, CrawlConfig{}, WithValidators(mem))
	if again := crawlHub(t, off, job); again.NotModified {
		t.Error("conditional requests off, yet not modified")
	}
}

// A record none of whose pages changed is not rebuilt; one whose page
// changed is rebuilt as a change, not a new paper.
func TestBuildPaperUnchanged(t *testing.T) {
	s := newSite(t)
	s.set("/abs/2601.00002", absB)
	s.etag("/abs/2601.00002", `"a1"`)
	s.set("/html/2601.00002", fullTextPage(true, true))
	s.etag("/html/2601.00002", `"h1"`)
	mem := newMemory()
	c := testCrawler(t, s, CrawlConfig{Conditional: true, FullText: true}, WithValidators(mem), WithHistory(mem))
	first := build(t, c, s.job(paperB))
	if first.Unchanged || first.Known {
		t.Fatalf("first build: unchanged %v, known %v", first.Unchanged, first.Known)
	}
	mem.StoreRecordPages(context.Background(), first.Record.ID, first.Pages) // the record is stored
	if again := build(t, c, s.job(paperB)); !again.Unchanged {
		t.Fatal("nothing changed, yet rebuilt")
	}
	s.etag("/html/2601.00002", `"h2"`)
	changed := build(t, c, s.job(paperB))
	if changed.Unchanged || !changed.Known || changed.Record.FullText.Status != record.FullTextOK {
		t.Fatalf("after a change: unchanged %v, known %v, full text %+v", changed.Unchanged, changed.Known, changed.Record.FullText)
	}
	// The hub's crawl hands the job its pages: they are asked, not looked
	// up; an empty list (the hub listed the paper, no pages known) builds
	// it in full, as a change.
	handed := s.job(paperB)
	handed.Known = changed.Pages
	if again := build(t, c, handed); !again.Unchanged {
		t.Fatal("the pages handed by the hub's crawl did not change, yet rebuilt")
	}
	handed.Known = []SourcePage{}
	if full := build(t, c, handed); full.Unchanged || !full.Known {
		t.Fatalf("no pages known for a paper the hub listed: unchanged %v, known %v; want built in full, as a change", full.Unchanged, full.Known)
	}
}

// Discovery follows hub links within the depth, the allowed hosts and the
// crawl's page budget, and only with a budget to count against.
func TestCrawlHubDiscovery(t *testing.T) {
	s := newSite(t)
	other1, other2 := s.base+"/citations/aaaaaaaa-0000-0000-0000-000000000001", s.base+"/citations/aaaaaaaa-0000-0000-0000-000000000002"
	s.hub("A", other1, other2, "https://elsewhere.example/citations/aaaaaaaa-0000-0000-0000-000000000003")
	for _, tc := range []struct {
		name   string
		cfg    CrawlConfig
		budget bool
		depth  int
		want   []string
	}{
		{"depth 0", CrawlConfig{DiscoverHosts: []string{"127.0.0.1"}, DiscoverMaxPages: 10}, true, 0, nil},
		{"within budget", CrawlConfig{DiscoverDepth: 1, DiscoverHosts: []string{"127.0.0.1"}, DiscoverMaxPages: 10}, true, 0, []string{other1, other2}},
		{"budget of one", CrawlConfig{DiscoverDepth: 1, DiscoverHosts: []string{"127.0.0.1"}, DiscoverMaxPages: 1}, true, 0, []string{other1}},
		{"already at depth", CrawlConfig{DiscoverDepth: 1, DiscoverHosts: []string{"127.0.0.1"}, DiscoverMaxPages: 10}, true, 1, nil},
		{"host not allowed", CrawlConfig{DiscoverDepth: 1, DiscoverHosts: []string{"pith.science"}, DiscoverMaxPages: 10}, true, 0, nil},
		{"no budget kept", CrawlConfig{DiscoverDepth: 1, DiscoverHosts: []string{"127.0.0.1"}, DiscoverMaxPages: 10}, false, 0, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var opts []CrawlerOption
			if tc.budget {
				opts = append(opts, WithBudget(newMemory()))
			}
			c := testCrawler(t, s, tc.cfg, opts...)
			h := crawlHub(t, c, HubJob{URL: s.hubURL(), Depth: tc.depth, CrawlID: "run1", ArxivBase: "http://arxiv.test"})
			var got []string
			for _, j := range h.Discovered {
				got = append(got, j.URL)
				if j.Depth != tc.depth+1 || j.CrawlID != "run1" || j.ArxivBase != "http://arxiv.test" {
					t.Errorf("discovered job %+v", j)
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("discovered %v, want %v", got, tc.want)
			}
			for _, p := range h.Papers {
				if p.Depth != tc.depth || p.CrawlID != "run1" || p.ArxivBase != "http://arxiv.test" || p.HubSource != s.hubURL() {
					t.Errorf("paper job %+v does not carry the hub's crawl", p)
				}
			}
		})
	}
}

// A page that is not a hub fails for good.
func TestCrawlHubNotAHub(t *testing.T) {
	s := newSite(t)
	s.set("/citations/"+testHubID, "<html><body><p>Nothing to see.</p></body></html>")
	_, err := testCrawler(t, s, CrawlConfig{}).CrawlHub(context.Background(), HubJob{URL: s.hubURL()})
	if !retry.IsPermanent(err) || !strings.Contains(err.Error(), testHubID) {
		t.Fatalf("err = %v, want a permanent error naming the page", err)
	}
}

// A source that can add nothing the record lacks costs no request: no
// graph.json when the hub and Pith's JSON gave all it has.
func TestBuildPaperSkipsSourcesWithNothingToAdd(t *testing.T) {
	const pithFull = `{"source":{"id":"2601.00001","kind":"arxiv"},"paper":{"title":"Paper A","headline":"A.",` +
		`"abstract_excerpt":"A's abstract.","authors_text":"Ann Author","primary_cat":"cs.CL","submitted_at":"2026-01-05T00:00:00Z"}}`
	refs, novelty := 12, 6.0
	card := CitingPaper{Title: "Paper A", Summary: "A.", PithID: pithA, Category: "cs.CL", Published: "2026-01-05",
		Verdict: "CONDITIONAL", Novelty: &novelty, Refs: &refs}
	explorer := CitingPaper{Title: "Paper A", Summary: "A.", PithID: pithA} // no verdict, refs: graph.json has them
	graphPath := "/api/pith-number/" + pithA + "/graph.json"
	for _, tc := range []struct {
		name      string
		paper     CitingPaper
		wantGraph int
	}{{"card with every field", card, 0}, {"explorer entry", explorer, 1}} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSite(t)
			s.set("/pith/"+pithA+".json", pithFull)
			s.set(graphPath, graphJSON("2601.00001"))
			r := build(t, testCrawler(t, s, CrawlConfig{FetchGraph: true}), s.job(tc.paper)).Record
			if n := s.count(graphPath); n != tc.wantGraph {
				t.Errorf("graph.json fetched %d times, want %d", n, tc.wantGraph)
			}
			if n := s.count("/pith/" + pithA + ".json"); n != 1 {
				t.Errorf("Pith JSON fetched %d times, want 1", n)
			}
			if r.Paper.Abstract != "A's abstract." || len(r.Paper.Authors) != 1 || r.Paper.Arxiv != "2601.00001" {
				t.Errorf("paper %+v lost what Pith's JSON gave", r.Paper)
			}
		})
	}
}

// A paper listed by two hubs of one crawl is fetched once: the second
// hub's record reads the pages the first fetched, and is built the same.
func TestBuildPaperSharedByHubsFetchedOncePerCrawl(t *testing.T) {
	s := newSite(t)
	jsonPath, graphPath := "/pith/"+pithA+".json", "/api/pith-number/"+pithA+"/graph.json"
	s.set(jsonPath, pithJSON("2601.00001"))
	s.set(graphPath, graphJSON("2601.00001"))
	mem := newMemory()
	c := testCrawler(t, s, CrawlConfig{FetchGraph: true}, WithPages(mem))
	first := s.job(paperA)
	first.Shared = true
	second := first
	second.Hub.ID, second.Hub.URL = "99999999-2222-3333-4444-555555555555", s.base+"/citations/99999999-2222-3333-4444-555555555555"
	a, b := build(t, c, first).Record, build(t, c, second).Record
	if s.count(jsonPath) != 1 || s.count(graphPath) != 1 {
		t.Fatalf("Pith JSON fetched %d times, graph.json %d times in one crawl; want once each", s.count(jsonPath), s.count(graphPath))
	}
	if a.ID == b.ID || a.Paper.Abstract != b.Paper.Abstract || len(b.Paper.Authors) != 2 || !slices.Equal(a.SourceURLs[1:], b.SourceURLs[1:]) {
		t.Errorf("second hub's record differs: %+v / %v, first %+v / %v", b.Paper, b.SourceURLs, a.Paper, a.SourceURLs)
	}
	next := first
	next.CrawlID = "run2" // another crawl fetches afresh
	build(t, c, next)
	if s.count(jsonPath) != 2 {
		t.Errorf("Pith JSON fetched %d times after a second crawl, want 2", s.count(jsonPath))
	}
	// A crawl of one hub keeps nothing: no paper of it can come twice.
	alone := s.job(paperA)
	alone.CrawlID = "run3"
	build(t, c, alone)
	build(t, c, alone)
	if s.count(jsonPath) != 4 {
		t.Errorf("Pith JSON fetched %d times after a crawl of one hub built it twice, want 4", s.count(jsonPath))
	}
}

// A paper the hub did not list at its last crawl is new: its job says so,
// and its record is built without looking up what it was built from.
func TestCrawlHubMarksNewPapers(t *testing.T) {
	s := newSite(t)
	mem := newMemory()
	c := testCrawler(t, s, CrawlConfig{}, WithHistory(mem))
	job := HubJob{URL: s.hubURL(), CrawlID: "run1"}
	s.hub("A")
	first := crawlHub(t, c, job)
	if len(first.Papers) != 1 || !first.Papers[0].New {
		t.Fatalf("first crawl: papers %+v, want A new", first.Papers)
	}
	commit(t, first.Commits)
	s.hub("AB")
	second := crawlHub(t, c, job)
	news := map[string]bool{}
	for _, p := range second.Papers {
		news[p.Paper.Title] = p.New
	}
	if news["Paper A"] || !news["Paper B"] {
		t.Fatalf("second crawl: new %v, want only Paper B", news)
	}
	// A record kept for a new paper (say from before it left the hub) is
	// not looked up: the paper is built and published afresh.
	s.set("/abs/2601.00002", absB)
	idB := record.ID(testHubID, paperB.Key())
	mem.StoreRecordPages(context.Background(), idB, []SourcePage{{URL: s.base + "/abs/2601.00002"}})
	for _, p := range second.Papers {
		if p.Paper.Title == "Paper B" {
			if b := build(t, c, p); b.Known || b.Unchanged {
				t.Errorf("new paper built as known (%v) or unchanged (%v)", b.Known, b.Unchanged)
			}
		}
	}
}
