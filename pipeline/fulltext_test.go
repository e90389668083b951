package pipeline

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/citecrawl/citecrawl/ingest/snapshot"
	"github.com/citecrawl/citecrawl/record"
)

// countingHandler counts requests per path and responses per status.
type countingHandler struct {
	h      http.Handler
	mu     sync.Mutex
	paths  map[string]int
	status map[int]int
}

func counting(h http.Handler) *countingHandler {
	return &countingHandler{h: h, paths: map[string]int{}, status: map[int]int{}}
}

type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) { w.code = code; w.ResponseWriter.WriteHeader(code) }

func (c *countingHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	sw := &statusWriter{ResponseWriter: w, code: 200}
	c.h.ServeHTTP(sw, r)
	c.mu.Lock()
	c.paths[r.URL.Path]++
	c.status[sw.code]++
	c.mu.Unlock()
}

func (c *countingHandler) count(path string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.paths[path]
}

func recordsByTitle(recs []record.Record) map[string]record.Record {
	m := map[string]record.Record{}
	for _, r := range recs {
		m[r.Paper.Title] = r
	}
	return m
}

// Metadata comes from Pith's JSON and graph first; arXiv's abstract page
// only for a paper not on Pith. A missing full text is said, not hidden.
func TestResolutionOrder(t *testing.T) {
	const pithA = "AAAAAAAAAAAAAAAAAAAAAAAAAA"
	mux := http.NewServeMux()
	mux.HandleFunc("/robots.txt", http.NotFound)
	mux.HandleFunc("/citations/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `<html><body><p>hub</p><h1>The Cited Work</h1><p>2 Pith papers citing it</p>
<h2>citing papers explorer</h2><ul>
<li><a href="/pith/%s">Paper A</a><p>A summary.</p></li>
<li><a href="https://arxiv.org/abs/2601.00002">Paper B</a><p>B summary.</p></li></ul></body></html>`, pithA)
	})
	mux.HandleFunc("/pith/"+pithA+".json", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"record_type":"pith_number_record","source":{"id":"2601.00001","kind":"arxiv"},"paper":{"title":"Paper A","abstract_excerpt":"A's abstract from Pith."}}`)
	})
	mux.HandleFunc("/api/pith-number/"+pithA+"/graph.json", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"paper":{"title":"Paper A","authors_text":"Ann Author, Bob Writer","primary_cat":"cs.CL","submitted_at":"2026-01-05T00:00:00Z"},"source":{"id":"2601.00001","kind":"arxiv"}}`)
	})
	mux.HandleFunc("/abs/2601.00002", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `<html><head><meta name="citation_title" content="Paper B"><meta name="citation_author" content="Writer, Carla">
<meta name="citation_date" content="2026/01/07"><meta name="citation_arxiv_id" content="2601.00002"></head>
<body><blockquote class="abstract"><span class="descriptor">Abstract:</span> B's abstract from arXiv.</blockquote></body></html>`)
	})
	c := counting(mux) // /html/... and /abs/2601.00001 are 404s
	web := startSite(t, c)
	cfg := testConfig(t, t.TempDir(), []string{web.URL + "/citations/11111111-2222-3333-4444-555555555555"})
	bus := openBus(t, cfg)
	defer bus.Close()
	if _, err := Run(context.Background(), bus, cfg, testEnv()); err != nil {
		t.Fatal(err)
	}
	recs := recordsByTitle(readOut(t, cfg.Sink.Out))
	a, b := recs["Paper A"], recs["Paper B"]
	if a.Paper.Abstract != "A's abstract from Pith." || len(a.Paper.Authors) != 2 || a.Paper.Arxiv != "2601.00001" || a.Paper.Published != "2026-01-05" {
		t.Errorf("paper A not from Pith's JSON and graph: %+v", a.Paper)
	}
	if n := c.count("/abs/2601.00001"); n != 0 {
		t.Errorf("arXiv abstract page of a Pith paper fetched %d times; structured sources come first", n)
	}
	if b.Paper.Abstract != "B's abstract from arXiv." || len(b.Paper.Authors) != 1 || b.Paper.Authors[0] != "Carla Writer" || b.Paper.Published != "2026-01-07" {
		t.Errorf("paper B not from arXiv's abstract page: %+v", b.Paper)
	}
	for _, r := range []record.Record{a, b} {
		if r.FullText == nil || r.FullText.Status != record.FullTextMissing || !strings.Contains(r.FullText.Reason, "404") || r.RoleSource != record.RoleSourceSummary {
			t.Errorf("%s: full text %+v, role source %s", r.Paper.Title, r.FullText, r.RoleSource)
		}
	}
	if !slices.Contains(b.Missing, "paper.pith") {
		t.Errorf("paper B missing = %v, want paper.pith named", b.Missing)
	}
}

// The offline snapshot gives records with contexts, and says why for the
// papers where there are none.
func TestSnapshotFullTextContexts(t *testing.T) {
	site := snapshot.Default()
	web := startSite(t, site)
	cfg := testConfig(t, t.TempDir(), site.HubURLs(web.URL))
	bus := openBus(t, cfg)
	defer bus.Close()
	if _, err := Run(context.Background(), bus, cfg, testEnv()); err != nil {
		t.Fatal(err)
	}
	byStatus := map[string]int{}
	for _, r := range readOut(t, cfg.Sink.Out) {
		if r.FullText == nil {
			t.Fatalf("%s: no full_text", r.Paper.Title)
		}
		byStatus[r.FullText.Status]++
		if r.Hub.ID != snapshot.RoadmapHubID || r.FullText.Status != record.FullTextOK {
			continue
		}
		if len(r.Contexts) == 0 || r.RoleSource != record.RoleSourceContext {
			t.Errorf("%s: status ok but %d contexts, role source %s", r.Paper.Title, len(r.Contexts), r.RoleSource)
		}
		for _, c := range r.Contexts {
			marker := string([]rune(c.Text)[c.CiteSpan[0]:c.CiteSpan[1]])
			if marker != "[2]" && !strings.Contains(marker, "2024") {
				t.Errorf("%s: cite span marks %q in %q", r.Paper.Title, marker, c.Text)
			}
			if strings.Contains(c.Text, "See also the survey") || strings.Contains(c.Text, "citeauthor") {
				t.Errorf("footnote or macro left in %q", c.Text)
			}
		}
	}
	// 18 Roadmap papers: styles cycle Numeric, AuthorYear, Numeric,
	// NoFullText, TitleOnly, AuthorYear, Numeric, PlainMarkers.
	if byStatus[record.FullTextMissing] == 0 || byStatus[record.FullTextNoLinks] == 0 || byStatus[record.FullTextOK] < 10 {
		t.Fatalf("statuses %v", byStatus)
	}
}

// A second crawl of unchanged pages re-parses and re-publishes nothing;
// after one paper changes, only that paper is published again.
func TestConditionalRequests(t *testing.T) {
	site := snapshot.Default()
	c := counting(site)
	web := startSite(t, c)
	cfg := testConfig(t, t.TempDir(), site.HubURLs(web.URL))
	run := func() *Env {
		bus := openBus(t, cfg)
		defer bus.Close()
		env := testEnv()
		if _, err := Run(context.Background(), bus, cfg, env); err != nil {
			t.Fatal(err)
		}
		return &env
	}
	first := run()
	if first.Stats.RecordsPublished.Load() != int64(site.DistinctPapers()) {
		t.Fatalf("first run published %d", first.Stats.RecordsPublished.Load())
	}
	second := run()
	if n := second.Stats.RecordsPublished.Load(); n != 0 {
		t.Fatalf("second run of unchanged hubs published %d records", n)
	}
	if second.Stats.NotModified.Load() != int64(len(site.Hubs())) {
		t.Fatalf("second run: %d not-modified answers, want one per hub", second.Stats.NotModified.Load())
	}
	// One paper's summary changes: its hub page and its Pith JSON change.
	hubs := site.Hubs()
	for i := range hubs {
		if hubs[i].ID == snapshot.RoadmapHubID {
			papers := append([]snapshot.Paper{}, hubs[i].Papers...)
			papers[0].Summary = "A rewritten summary that now mentions juries of annotators."
			hubs[i].Papers = papers
		}
	}
	site.SetHubs(hubs...)
	third := run()
	if n := third.Stats.RecordsPublished.Load(); n != 1 {
		t.Fatalf("after one paper changed, %d records were published, want 1", n)
	}
	recs := readOut(t, cfg.Sink.Out)
	if len(recs) != site.DistinctPapers()+1 {
		t.Fatalf("%d lines, want %d (one new version)", len(recs), site.DistinctPapers()+1)
	}
}

func TestDiscoveryFollowsHubLinksWithinBudget(t *testing.T) {
	hubs := snapshot.DefaultHubs()
	hubs[0].Related = []string{hubs[1].ID, hubs[2].ID} // Roadmap links both others
	site := snapshot.New(snapshot.StyleCards, hubs...)
	web := startSite(t, site)
	for _, tc := range []struct {
		depth, budget, want int
	}{
		{0, 10, len(hubs[0].Papers)},
		{1, 10, site.DistinctPapers()},
		{1, 1, len(hubs[0].Papers) + len(hubs[1].Papers)},
	} {
		t.Run(fmt.Sprintf("depth%d-budget%d", tc.depth, tc.budget), func(t *testing.T) {
			cfg := testConfig(t, t.TempDir(), []string{web.URL + "/citations/" + hubs[0].ID})
			cfg.Discover.Depth, cfg.Discover.MaxPages = tc.depth, tc.budget
			cfg.Discover.Hosts = []string{"127.0.0.1"}
			bus := openBus(t, cfg)
			defer bus.Close()
			if _, err := Run(context.Background(), bus, cfg, testEnv()); err != nil {
				t.Fatal(err)
			}
			if n := len(readOut(t, cfg.Sink.Out)); n != tc.want {
				t.Fatalf("%d records, want %d", n, tc.want)
			}
		})
	}
}

// Record pages link the hubs of every work a paper cites: with depth 1 a
// hub reached only through a citing paper's record page is crawled too.
func TestDiscoveryFromRecordPages(t *testing.T) {
	hubs := snapshot.DefaultHubs()
	shared := hubs[0].Papers[0]
	hubs[1].Papers = append([]snapshot.Paper{shared}, hubs[1].Papers...) // the paper cites both works
	site := snapshot.New(snapshot.StyleCards, hubs...)
	web := startSite(t, site)
	cfg := testConfig(t, t.TempDir(), []string{web.URL + "/citations/" + hubs[0].ID})
	cfg.Discover.Depth, cfg.Discover.MaxPages, cfg.Discover.Hosts = 1, 10, []string{"127.0.0.1"}
	bus := openBus(t, cfg)
	defer bus.Close()
	if _, err := Run(context.Background(), bus, cfg, testEnv()); err != nil {
		t.Fatal(err)
	}
	if n, want := len(readOut(t, cfg.Sink.Out)), len(hubs[0].Papers)+len(hubs[1].Papers); n != want {
		t.Fatalf("%d records, want %d (the Roadmap hub and the hub found on a record page)", n, want)
	}
}
