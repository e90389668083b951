package ingest

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/citecrawl/citecrawl/ingest/snapshot"
)

// sharedData returns the path of a file under ../shared/data, or skips the
// test when the folder is absent (it is never copied into the project).
func sharedData(t testing.TB, rel string) string {
	t.Helper()
	p := filepath.Join("..", "..", "shared", "data", rel)
	if _, err := os.Stat(p); err != nil {
		t.Skipf("real data %s is absent (%v): this test reads ../shared/data and never a copy", rel, err)
	}
	return p
}

func hubURL(id string) string { return "https://pith.science/citations/" + id }

// Both markups of every snapshot hub must parse to the same papers, with
// the facts the snapshot put in.
func TestParseHubMarkupVariants(t *testing.T) {
	for _, h := range snapshot.DefaultHubs() {
		for _, style := range []snapshot.Style{snapshot.StyleCards, snapshot.StyleTable} {
			t.Run(h.ID[:8]+"/"+string(style), func(t *testing.T) {
				page, err := ParseHub(hubURL(h.ID), []byte(snapshot.RenderHub(h, style)), "text/html")
				if err != nil {
					t.Fatal(err)
				}
				if page.Title != h.Title {
					t.Errorf("title %q, want %q", page.Title, h.Title)
				}
				if page.Canonical != h.Canonical || page.TitleUnresolved != h.Unresolved || page.PolarityIndexing != h.Indexing {
					t.Errorf("canonical/unresolved/indexing = %v/%v/%v, want %v/%v/%v", page.Canonical, page.TitleUnresolved,
						page.PolarityIndexing, h.Canonical, h.Unresolved, h.Indexing)
				}
				if page.CitingCount != len(h.Papers) {
					t.Errorf("citing count %d, want %d", page.CitingCount, len(h.Papers))
				}
				if len(page.Papers) != len(h.Papers) {
					t.Fatalf("%d papers, want %d (merged, no duplicates)", len(page.Papers), len(h.Papers))
				}
				for i, p := range h.Papers {
					got := page.Papers[i]
					if got.Title != p.Title || got.Summary != p.Summary || got.PithID != p.PithID() {
						t.Errorf("paper %d = %q/%q/%q, want %q/%q/%q", i, got.Title, got.Summary, got.PithID, p.Title, p.Summary, p.PithID())
					}
				}
				// The first card carries the meta line; the parser must read it.
				first := page.Papers[0]
				if first.Category != h.Papers[0].Cat || first.Published != h.Papers[0].Date || first.Verdict != h.Papers[0].Verdict {
					t.Errorf("meta of first paper = %s/%s/%s", first.Category, first.Published, first.Verdict)
				}
				if got, want := page.Facets["years"], countYears(h); !equalCounts(got, want) {
					t.Errorf("years facet %v, want %v", got, want)
				}
			})
		}
	}
}

func countYears(h snapshot.Hub) map[string]int {
	m := map[string]int{}
	for _, p := range h.Papers {
		m[p.Date[:4]]++
	}
	return m
}

func equalCounts(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestParseHubMetaVariants(t *testing.T) {
	for _, tc := range []struct {
		line    string
		novelty *float64
		refs    *int
		verdict string
	}{
		{"cs.AI · 2026-05-11 · unverdicted · novelty 6.0 · 2 refs", ptr(6.0), ptr(2), "unverdicted"},
		{"cs.CL · 2026-01-02 · CONDITIONAL · novelty none", nil, nil, "CONDITIONAL"},
		{"stat.ML · 2025-12-31 · reject · novelty 4.5 · 1 ref", ptr(4.5), ptr(1), "reject"},
	} {
		c, ok := parseMeta(tc.line)
		if !ok {
			t.Fatalf("%q not read as a meta line", tc.line)
		}
		if c.Verdict != tc.verdict || !eqPtr(c.Novelty, tc.novelty) || !eqPtr(c.Refs, tc.refs) {
			t.Errorf("%q -> verdict %q novelty %v refs %v", tc.line, c.Verdict, c.Novelty, c.Refs)
		}
	}
	if _, ok := parseMeta("A sentence · with a dot in it"); ok {
		t.Error("prose read as a meta line")
	}
}

func ptr[T any](v T) *T { return &v }

func eqPtr[T comparable](a, b *T) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

func TestParseHubSingularAndSplitCount(t *testing.T) {
	lines := TextLines("hub\nSome Work\n1 Pith paper cite this work. Polarity classification is still indexing.\n1\nPith paper citing it\n" +
		"hub tools\nyears\n2026 1\nciting papers explorer\n-\nOnly Paper\nIts summary.")
	h, err := ParseHubLines(hubURL("0000aaaa-0000-0000-0000-000000000000"), lines)
	if err != nil {
		t.Fatal(err)
	}
	if h.CitingCount != 1 || !h.PolarityIndexing || len(h.Papers) != 1 || h.Papers[0].Title != "Only Paper" {
		t.Fatalf("got count %d indexing %v papers %+v", h.CitingCount, h.PolarityIndexing, h.Papers)
	}
	if !slices.Contains(h.Missing, "abstract") || !slices.Contains(h.Missing, "representative_citing_papers") {
		t.Errorf("missing = %v, want abstract and representative_citing_papers listed", h.Missing)
	}
}

func TestParseHubFacetPairs(t *testing.T) {
	got := parseFacetPairs(TextLines("background 5 other 2\ncs.AI 1 cs.CL 3\nnot yet 4"))
	want := map[string]int{"background": 5, "other": 2, "cs.AI": 1, "cs.CL": 3, "not yet": 4}
	if !equalCounts(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

// The real hub text (markup lost, labels glued to figures, cards showing
// only summaries) must give the 18 citing papers once each.
func TestParseRealRoadmapHubText(t *testing.T) {
	b, err := os.ReadFile(sharedData(t, "pith/roadmap-hub.txt"))
	if err != nil {
		t.Fatal(err)
	}
	h, err := ParseHubLines(hubURL(snapshot.RoadmapHubID), TextLines(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	if h.Title != "A Roadmap to Pluralistic Alignment" || !h.Canonical || h.BackgroundPct == nil || *h.BackgroundPct != 71 {
		t.Errorf("title %q canonical %v background %v", h.Title, h.Canonical, h.BackgroundPct)
	}
	if len(h.Papers) != 18 {
		t.Fatalf("%d papers, want 18", len(h.Papers))
	}
	reps := 0
	for _, p := range h.Papers {
		if p.Title == "" || p.Summary == "" {
			t.Errorf("paper without title or summary: %+v", p)
		}
		if p.Represents {
			reps++
		}
	}
	if reps != 17 {
		t.Errorf("%d papers matched a representative card, want 17", reps)
	}
	if h.Facets["years"]["2026"] != 18 {
		t.Errorf("years facet %v", h.Facets["years"])
	}
	if !strings.HasPrefix(h.Abstract, "With increased power") {
		t.Errorf("abstract %q", h.Abstract)
	}
}

func TestParseHubMalformed(t *testing.T) {
	roadmap := snapshot.RenderHub(snapshot.DefaultHubs()[0], snapshot.StyleCards)
	for _, tc := range []struct {
		name    string
		body    string
		ctype   string
		notHub  bool
		missing string
	}{
		{name: "empty", body: "", notHub: true},
		{name: "other site", body: "<html><body><h1>Welcome to arXiv</h1><p>abstract</p></body></html>", notHub: true},
		{name: "truncated", body: roadmap[:len(roadmap)*2/5], missing: "citing_papers_explorer"},
		{name: "latin-1 bytes", body: "<html><body><p>hub</p><h1>Caf\xe9 \xff work</h1><p>citing papers explorer</p><ul><li>P\xe9</li></ul></body></html>",
			ctype: "text/html; charset=iso-8859-1", missing: "abstract"},
		{name: "invalid utf-8", body: "<html><body><p>hub</p><h1>Bad \xff\xfe bytes</h1></body></html>", missing: "citing_papers_explorer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, err := ParseHub("https://pith.science/citations/1234abcd-0000", []byte(tc.body), tc.ctype)
			if tc.notHub {
				if !errors.Is(err, ErrNotHub) || !strings.Contains(err.Error(), "pith.science/citations/1234abcd") {
					t.Fatalf("err = %v, want ErrNotHub naming the page", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Contains(h.Missing, tc.missing) {
				t.Errorf("missing = %v, want %q in it", h.Missing, tc.missing)
			}
			if !utf8.ValidString(h.Title) {
				t.Errorf("title is not valid UTF-8: %q", h.Title)
			}
		})
	}
	h, _ := ParseHub("https://pith.science/citations/x", []byte("<p>hub</p><h1>Caf\xe9</h1>"), "text/html; charset=iso-8859-1")
	if h == nil || h.Title != "Café" {
		t.Errorf("latin-1 title decoded as %q, want Café", h.Title)
	}
}

func TestHubID(t *testing.T) {
	id, err := HubID("https://www.pith.science/citations/667BA460-8f85-44de-abed-e988dbbf316b?verdict=CONDITIONAL")
	if err != nil || id != "667ba460-8f85-44de-abed-e988dbbf316b" {
		t.Fatalf("HubID = %q, %v", id, err)
	}
	if _, err := HubID("https://pith.science/pith/ABC"); err == nil {
		t.Fatal("a record URL was taken for a hub")
	}
	if got := NormaliseHubURL("https://www.pith.science/citations/x?verdict=CONDITIONAL#top"); got != "https://pith.science/citations/x" {
		t.Fatalf("NormaliseHubURL = %q", got)
	}
}

func BenchmarkParseHub(b *testing.B) {
	page := []byte(snapshot.RenderHub(snapshot.DefaultHubs()[0], snapshot.StyleCards))
	b.SetBytes(int64(len(page)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseHub(hubURL(snapshot.RoadmapHubID), page, "text/html"); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "pages/s")
}

// BenchmarkParseGeneratedHub parses the hub of ingestbench's crawl: 5,000
// citing papers, 0.9 MB.
func BenchmarkParseGeneratedHub(b *testing.B) {
	h := snapshot.Generated(5000)
	page := []byte(snapshot.RenderHub(h, snapshot.StyleCards))
	b.SetBytes(int64(len(page)))
	b.ReportAllocs()
	for b.Loop() {
		p, err := ParseHub(hubURL(h.ID), page, "text/html")
		if err != nil || len(p.Papers) != 5000 {
			b.Fatalf("%v, %d papers", err, len(p.Papers))
		}
	}
}

// resolveRef's shortcut for plain paths gives what parsing gives, and
// anything else is parsed.
func TestResolveRefPlainPath(t *testing.T) {
	bases := []string{
		"http://127.0.0.1:8080/citations/9e4e7a10-0000-4000-8000-00000000beef",
		"https://pith.science/citations/abc?tab=all#top", "https://pith.science", "https://Pith.Science:443/x/",
		"http://user:pw@host/x", "http://[::1]:80/x", "http://h%41st/x", "ftp://host/x", "http:///x", "/relative", "",
		"http://host:abc/x", "http://host:80:81/x", "http://a:b:c/x", "http://host:/x", "http://host:-1/x", "http://:80/x",
	}
	hrefs := []string{
		"/pith/HHOXZMXTXSZ5BKC7SVXC62EFWY", "/pith/HHOXZMXT.json", "/api/pith-number/a_b~c/graph.json",
		"/pith/../x", "/pith/./x", "/pith//x", "//other.host/x", "/pith/a b", "/pith/é", "/pith/x?y=1", "/pith/x#f",
		"/", "/.", "/..", "pith/x", "https://arxiv.org/abs/2401.1", "", "/a/",
	}
	for _, b := range bases {
		for _, h := range hrefs {
			if got, want := resolveRef(b, h), parseRef(b, h); got != want {
				t.Errorf("resolveRef(%q, %q) = %q, parsing gives %q", b, h, got, want)
			}
		}
	}
	if _, ok := plainOrigin(bases[0]); !ok || !plainPath(hrefs[0]) {
		t.Error("a hub's URL and a /pith/ path do not take the shortcut")
	}
}
