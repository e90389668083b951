package ingest

import (
	"errors"
	"os"
	"regexp"
	"strings"
	"testing"
)

func readShared(t testing.TB, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(sharedData(t, rel))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func testSplitter(t testing.TB) *Splitter {
	t.Helper()
	sp, err := NewSplitter()
	if err != nil {
		t.Fatal(err)
	}
	return sp
}

var (
	reBibItemRaw = regexp.MustCompile(`<li[^>]*class="ltx_bibitem"`)
	reBibLinkRaw = regexp.MustCompile(`href="[^"]*#bib\.bib\d+"`)
)

// On each real page the counts are what the page holds, counted here
// independently on the raw markup.
func TestFullTextCountsOnRealPages(t *testing.T) {
	for _, f := range []string{"0903.1000.html", "1307.8133.html", "1311.0066.xhtml", "1808.08002.ar5iv.html"} {
		t.Run(f, func(t *testing.T) {
			b := readShared(t, "arxiv-html/"+f)
			ft, err := ParseFullText(f, b, "")
			if err != nil {
				t.Fatal(err)
			}
			if want := len(reBibItemRaw.FindAll(b, -1)); len(ft.Refs) != want {
				t.Errorf("%d bibliography entries, the page holds %d", len(ft.Refs), want)
			}
			if want := len(reBibLinkRaw.FindAll(b, -1)); ft.LinkedCitations != want {
				t.Errorf("%d linked citations, the page holds %d", ft.LinkedCitations, want)
			}
		})
	}
}

type wantContext struct {
	text, marker, section string
}

// Contexts checked by hand against each page.
func TestFullTextContextsOnRealPages(t *testing.T) {
	sp := testSplitter(t)
	for _, tc := range []struct {
		file, cited string // cited: a title (matched by similarity) or "#bib.bibN"
		count       int
		want        []wantContext
	}{
		{"0903.1000.html", "On approximation of copulas", 2, []wantContext{
			{"Bernstein approximations of 2-copulas were introduced and studied in [3] and [4].", "[3]", "Introduction"},
			{"It is well-known that the Bernstein approximation of a copula is again a copula (see, for example, [3] and [4]), but this is also an immediate consequence of this last formula:", "[3]",
				"Derivatives of Bernstein approximations / Derivatives of Bernstein polynomials"},
		}},
		// Author-year: only the year is linked, and "et al." must not end
		// the sentence; a cite holding several references is one marker.
		{"1307.8133.html", "#bib.bib1", 0, []wantContext{
			{"Yet, granular flows can sometimes be modeled using a continuum approximation, for example, as in the case of flow in a rotating tumbler Meier et al. (2007) and flow down an inclined plane or heap Midi (2004).",
				"Meier et al. (2007)", "Introduction"},
			{"Here we consider flow in partially-filled three-dimensional (3D) tumblers, such as spherical tumblers [Fig. 1(a)] Meier et al. (2007); Sturman et al. (2008); Juarez et al. (2010, 2012), rotating with angular velocity \\omega about a horizontal axis z that intersects the tumbler at its “poles.”",
				"Meier et al. (2007); Sturman et al. (2008); Juarez et al. (2010, 2012)", "Introduction"},
		}},
		{"1808.08002.ar5iv.html", "The orthogonal development of non-linear functionals in series of Fourier-Hermite functionals", 2, []wantContext{
			{"Introduced first by Wiener [ 8 ] for Gaussian random variables and then generalized by Xiu and Karniadakis [ 9 ] for other probability distributions, such decomposition is based on the Cameron and Martin Theorem [ 10 ] , which guarantees the convergence in L_{2} sense for stochastic processes with finite second moment.",
				"[ 10 ]", "Introduction"},
		}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			ft, err := ParseFullText(tc.file, readShared(t, "arxiv-html/"+tc.file), "")
			if err != nil {
				t.Fatal(err)
			}
			entry := findEntry(t, ft, tc.cited)
			got := ft.Contexts(sp, entry, ContextOptions{})
			if tc.count > 0 && len(got) != tc.count {
				t.Errorf("%d contexts, want %d", len(got), tc.count)
			}
			for _, w := range tc.want {
				found := false
				for _, c := range got {
					if c.Text != w.text {
						continue
					}
					found = true
					r := []rune(c.Text)
					if m := string(r[c.CiteSpan[0]:c.CiteSpan[1]]); m != w.marker {
						t.Errorf("marker %q, want %q", m, w.marker)
					}
					if c.Section != w.section || c.Paragraph == "" || c.Marker != "linked" {
						t.Errorf("section %q paragraph %q marker %q, want section %q", c.Section, c.Paragraph, c.Marker, w.section)
					}
				}
				if !found {
					t.Errorf("missing context %q", w.text)
				}
			}
			for _, c := range got {
				if strings.Contains(c.Text, "  ") || strings.Contains(c.Text, "<math") {
					t.Errorf("context not normalised: %q", c.Text)
				}
			}
		})
	}
}

// Footnotes are cut out of sentences: the 1307.8133 footnote that cites
// Kutner et al. inside a paragraph must not appear in any context.
func TestFullTextCutsFootnotes(t *testing.T) {
	sp := testSplitter(t)
	ft, err := ParseFullText("1307.8133", readShared(t, "arxiv-html/1307.8133.html"), "")
	if err != nil {
		t.Fatal(err)
	}
	for i := range ft.Refs {
		for _, c := range ft.Contexts(sp, &ft.Refs[i], ContextOptions{}) {
			if strings.Contains(c.Text, "was accepted as an appropriate fit") || strings.Contains(c.Text, "See Supplemental Material for a video") {
				t.Fatalf("footnote text in a context: %q", c.Text)
			}
		}
	}
}

// A paper without linked citations: zero linked contexts; the optional
// fallback finds the plain [n] markers and says so.
func TestFullTextNoLinkedCitations(t *testing.T) {
	sp := testSplitter(t)
	ft, err := ParseFullText("1311.0066", readShared(t, "arxiv-html/1311.0066.xhtml"), "application/xhtml+xml")
	if err != nil {
		t.Fatal(err)
	}
	entry := findEntry(t, ft, "Tensor triangular geometry")
	if got := ft.Contexts(sp, entry, ContextOptions{}); len(got) != 0 {
		t.Fatalf("%d linked contexts on a page without links", len(got))
	}
	got := ft.Contexts(sp, entry, ContextOptions{TextFallback: true})
	if len(got) != 2 {
		t.Fatalf("%d fallback contexts, want 2: %+v", len(got), got)
	}
	for _, c := range got {
		if c.Marker != "text" || !strings.Contains(c.Text, "Balmer’s ICM talk") {
			t.Errorf("fallback context %+v", c)
		}
	}
}

func findEntry(t *testing.T, ft *FullText, cited string) *BibEntry {
	t.Helper()
	if id, ok := strings.CutPrefix(cited, "#"); ok {
		for i := range ft.Refs {
			if ft.Refs[i].ID == id {
				return &ft.Refs[i]
			}
		}
		t.Fatalf("no entry %s", id)
	}
	m := ft.FindCited(ParseCited(cited))
	if m == nil {
		t.Fatalf("cited work %q not found in the bibliography", cited)
	}
	if m.Method != "title" || m.Score < TitleThreshold {
		t.Fatalf("match %+v", m)
	}
	return m.Entry
}

func TestFindCitedByIDs(t *testing.T) {
	html := `<html><body><ul class="ltx_biblist">
<li id="bib.bib1" class="ltx_bibitem"><span class="ltx_bibblock">A. B. “Layer normalization,” arXiv:1607.06450v2, 2016.</span></li>
<li id="bib.bib2" class="ltx_bibitem"><span class="ltx_bibblock">C. D. Neural machine translation. <a href="https://doi.org/10.1000/XYZ.123">doi</a></span></li>
<li id="bib.bib3" class="ltx_bibitem"><span class="ltx_bibblock">E. F. Attention. CoRR abs/1409.0473.</span></li>
</ul></body></html>`
	ft, err := ParseFullText("x", []byte(html), "")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ cited, entry, method string }{
		{"1607.06450", "bib.bib1", "arxiv"},
		{"arxiv:1409.0473v3", "bib.bib3", "arxiv"},
		{"doi:10.1000/xyz.123", "bib.bib2", "doi"},
		{"Layer Normalization", "bib.bib1", "title"},
	} {
		m := ft.FindCited(ParseCited(tc.cited))
		if m == nil || m.Entry.ID != tc.entry || m.Method != tc.method {
			t.Errorf("%s: got %+v, want %s by %s", tc.cited, m, tc.entry, tc.method)
		}
	}
	if m := ft.FindCited(ParseCited("A completely different paper about birds")); m != nil {
		t.Errorf("unrelated title matched %+v", m)
	}
}

func TestParseAbsRealPages(t *testing.T) {
	m, err := ParseAbs("1910.00274", readShared(t, "arxiv-abs/1910.00274.html"), "")
	if err != nil {
		t.Fatal(err)
	}
	if m.Title != "Human prophylaxis driven by risk may cause oscillations in sexually transmitted diseases" ||
		len(m.Authors) != 4 || m.Authors[2] != "Jesús Gómez-Gardeñes" || m.Date != "2019-10-01" || m.ArxivID != "1910.00274" || m.Version != "v1" {
		t.Errorf("1910.00274: %+v", m)
	}
	if !strings.HasPrefix(m.Abstract, "") || len(m.Abstract) < 100 || strings.HasPrefix(m.Abstract, "Abstract:") {
		t.Errorf("abstract %q", m.Abstract)
	}
	m, err = ParseAbs("1909.13766", readShared(t, "arxiv-abs/1909.13766.html"), "")
	if err != nil || m.Title != "Multiscale Influenza Forecasting" || m.Authors[1] != "Kelly R Moran" {
		t.Errorf("1909.13766: %+v %v", m, err)
	}
	_, err = ParseAbs("https://arxiv.org/abs/1910.06444", readShared(t, "arxiv-abs/1910.06444.html"), "")
	if !errors.Is(err, ErrArxivNotFound) || !strings.Contains(err.Error(), "1910.06444") {
		t.Fatalf("not-found page: err = %v", err)
	}
}

// BenchmarkContexts is extraction throughput on the real pages: parse,
// find the cited entry, cut out its sentences, for one entry per page.
func BenchmarkContexts(b *testing.B) {
	sp := testSplitter(b)
	type page struct {
		body  []byte
		cited string
	}
	var pages []page
	for _, p := range [][2]string{{"0903.1000.html", "#bib.bib3"}, {"1307.8133.html", "#bib.bib1"}, {"1311.0066.xhtml", "#bib.bib6"}, {"1808.08002.ar5iv.html", "#bib.bib10"}} {
		pages = append(pages, page{readShared(b, "arxiv-html/"+p[0]), strings.TrimPrefix(p[1], "#")})
	}
	var total int64
	for _, p := range pages {
		total += int64(len(p.body))
	}
	b.SetBytes(total)
	for b.Loop() {
		for _, p := range pages {
			ft, err := ParseFullText("bench", p.body, "")
			if err != nil {
				b.Fatal(err)
			}
			for i := range ft.Refs {
				if ft.Refs[i].ID == p.cited {
					ft.Contexts(sp, &ft.Refs[i], ContextOptions{TextFallback: true})
				}
			}
		}
	}
}
