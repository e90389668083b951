package snapshot

import (
	"fmt"
	"strconv"
	"strings"
)

// FullTextStyle is how a paper's full text is rendered and cites the
// hub's work, so the snapshot exercises every path of the reader.
type FullTextStyle int

const (
	Numeric      FullTextStyle = iota // [n] markers, absolute #bib.bibN links
	AuthorYear                        // "Sorensen et al. (2024)": only the year is linked
	NoFullText                        // arXiv has no HTML rendering: 404
	PlainMarkers                      // bibliography, but plain [n] in the text, no links
	TitleOnly                         // the entry has no arXiv id: matched by title
)

// citeTemplates are citing sentences by role; [CITE] is the hub's work,
// [OTHER] another reference.
var citeTemplates = [][]string{
	{"Pluralistic alignment has been studied as a way to serve people who hold diverse values [CITE]."},
	{"We use the taxonomy of pluralistic models proposed by [CITE] to organise our evaluation."},
	{"Unlike [CITE], which argues at the level of a roadmap, our results are measured with real users [OTHER]."},
	{"However, how to evaluate pluralistic behaviour has not been addressed beyond the proposals of [CITE]."},
	{"We extend the jury-pluralistic benchmarks of [CITE] to graded ratings from many annotators."},
	{"In future work, we plan to combine our method with the trade-off steerable benchmarks of [CITE]."},
}

// withFullText gives the papers of a hub their full-text style and citing
// sentences, deterministically by position.
func withFullText(papers []Paper) []Paper {
	styles := []FullTextStyle{Numeric, AuthorYear, Numeric, NoFullText, TitleOnly, AuthorYear, Numeric, PlainMarkers}
	out := make([]Paper, len(papers))
	for i, p := range papers {
		p.FullText = styles[i%len(styles)]
		p.Cites = append([]string{}, citeTemplates[i%len(citeTemplates)]...)
		if i%3 == 0 {
			// A second sentence citing the work twice: one context.
			p.Cites = append(p.Cites, "Both the Overton view [CITE] and the distributional view [CITE] are discussed at length [OTHER; CITE].")
		}
		out[i] = p
	}
	return out
}

func stripVersion(id string) string {
	if i := strings.LastIndex(id, "v"); i > 0 {
		if _, err := strconv.Atoi(id[i+1:]); err == nil {
			return id[:i]
		}
	}
	return id
}

// renderFullText writes a LaTeXML page in the style of arxiv.org/html:
// <base>, navigation, absolute #bib.bibN hrefs, a footnote inside a
// sentence, math, and a bibliography listing the hubs' works.
func (s *Site) renderFullText(p Paper) string {
	id := p.Arxiv()
	if len(p.Cites) == 0 {
		p.Cites = citeTemplates[0]
	}
	self := "https://arxiv.org/html/" + id + "v1"
	var b strings.Builder
	fmt.Fprintf(&b, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>%s</title><base href=\"%s/\"></head><body>\n", esc(p.Title), self)
	b.WriteString("<nav class=\"ltx_page_navbar\"><a href=\"https://arxiv.org/abs/" + id + "\">Back to arXiv</a> <a href=\"#S1\">1 Introduction</a></nav>\n")
	b.WriteString("<div class=\"ltx_page_main\"><article class=\"ltx_document\">\n")
	fmt.Fprintf(&b, "<h1 class=\"ltx_title ltx_title_document\">%s</h1>\n", esc(p.Title))
	fmt.Fprintf(&b, "<div class=\"ltx_abstract\"><h6 class=\"ltx_title\">Abstract</h6><p class=\"ltx_p\">%s</p></div>\n", esc(p.Summary))

	// Bibliography: the other reference, then the works of every hub the
	// paper appears on.
	type ref struct{ label, year, text string }
	refs := []ref{{"Other et al.", "2021", "A. Other and B. Author. “An unrelated study of evaluation,” in Proc. of a Conference, 2021."}}
	for _, hid := range s.cites[p.PithID()] {
		h := s.hubs[hid]
		text := fmt.Sprintf("T. Sorensen and others. “%s,” 2024.", esc(h.Title))
		if h.CitedArxiv != "" && p.FullText != TitleOnly {
			text += " arXiv:" + h.CitedArxiv + "."
		}
		refs = append(refs, ref{"Sorensen et al.", "2024", text})
	}
	marker := func(n int) string {
		target := fmt.Sprintf("%s#bib.bib%d", self, n)
		switch p.FullText {
		case PlainMarkers:
			return fmt.Sprintf("[%d]", n)
		case AuthorYear:
			return fmt.Sprintf("<cite class=\"ltx_cite ltx_citemacro_citet\">%s (<a href=\"%s\" class=\"ltx_ref\">%s</a>)</cite>", refs[n-1].label, target, refs[n-1].year)
		default:
			return fmt.Sprintf("<cite class=\"ltx_cite ltx_citemacro_cite\">[<a href=\"%s\" class=\"ltx_ref\">%d</a>]</cite>", target, n)
		}
	}
	cite := func(sentence string) string {
		sentence = esc(sentence)
		sentence = strings.ReplaceAll(sentence, "[OTHER; CITE]", strings.TrimSuffix(marker(1), "")+" "+marker(2))
		sentence = strings.ReplaceAll(sentence, "[CITE]", marker(2))
		return strings.ReplaceAll(sentence, "[OTHER]", marker(1))
	}

	b.WriteString("<section id=\"S1\" class=\"ltx_section\"><h2 class=\"ltx_title ltx_title_section\"><span class=\"ltx_tag ltx_tag_section\">1 </span>Introduction</h2>\n")
	fmt.Fprintf(&b, "<div id=\"S1.p1\" class=\"ltx_para\"><p id=\"S1.p1.1\" class=\"ltx_p\">Language models are deployed to people with different values<span class=\"ltx_note ltx_role_footnote\"><sup class=\"ltx_note_mark\">1</sup><span class=\"ltx_note_outer\"><span class=\"ltx_note_content\">See also the survey %s.</span></span></span>, and a loss <math alttext=\"\\mathcal{L}\" class=\"ltx_Math\"><mi>ℒ</mi></math> that averages them hides minorities. %s</p></div>\n",
		marker(1), cite(p.Cites[0]))
	b.WriteString("</section>\n")
	if len(p.Cites) > 1 {
		b.WriteString("<section id=\"S2\" class=\"ltx_section\"><h2 class=\"ltx_title ltx_title_section\"><span class=\"ltx_tag ltx_tag_section\">2 </span>Related Work</h2>\n")
		for i, c := range p.Cites[1:] {
			fmt.Fprintf(&b, "<div id=\"S2.p%d\" class=\"ltx_para\"><p id=\"S2.p%d.1\" class=\"ltx_p\">%s <span class=\"ltx_ERROR undefined\">\\citeauthor</span>This matters for evaluation.</p></div>\n", i+1, i+1, cite(c))
		}
		b.WriteString("</section>\n")
	}
	b.WriteString("<section id=\"bib\" class=\"ltx_bibliography\"><h2 class=\"ltx_title ltx_title_bibliography\">References</h2><ul class=\"ltx_biblist\">\n")
	for i, r := range refs {
		fmt.Fprintf(&b, "<li id=\"bib.bib%d\" class=\"ltx_bibitem\"><span class=\"ltx_tag ltx_tag_bibitem\">[%d]</span><span class=\"ltx_bibblock\">%s</span></li>\n", i+1, i+1, r.text)
	}
	b.WriteString("</ul></section>\n</article></div></body></html>\n")
	return b.String()
}

// renderAbs writes an arXiv abstract page with its citation meta tags.
func renderAbs(p Paper) string {
	var b strings.Builder
	id := p.Arxiv()
	fmt.Fprintf(&b, "<!DOCTYPE html>\n<html><head><title>[%s] %s</title>\n", id, esc(p.Title))
	fmt.Fprintf(&b, "<meta name=\"citation_title\" content=\"%s\" />\n", esc(p.Title))
	for _, a := range strings.Split(authors(p), ", ") {
		first, last, _ := strings.Cut(a, " ")
		fmt.Fprintf(&b, "<meta name=\"citation_author\" content=\"%s, %s\" />\n", esc(last), esc(first))
	}
	date := strings.ReplaceAll(p.Date, "-", "/")
	fmt.Fprintf(&b, "<meta name=\"citation_date\" content=\"%s\" />\n<meta name=\"citation_online_date\" content=\"%s\" />\n", date, date)
	fmt.Fprintf(&b, "<meta name=\"citation_pdf_url\" content=\"https://arxiv.org/pdf/%s\" />\n<meta name=\"citation_arxiv_id\" content=\"%s\" />\n", id, id)
	fmt.Fprintf(&b, "<meta property=\"og:url\" content=\"https://arxiv.org/abs/%sv1\" />\n</head><body>\n", id)
	fmt.Fprintf(&b, "<h1 class=\"title mathjax\"><span class=\"descriptor\">Title:</span>%s</h1>\n", esc(p.Title))
	fmt.Fprintf(&b, "<blockquote class=\"abstract mathjax\"><span class=\"descriptor\">Abstract:</span>%s</blockquote>\n</body></html>\n", esc(abstract(p)))
	return b.String()
}

// renderAbsNotFound is arXiv's "Article not found": a normal page, no meta tags.
func renderAbsNotFound(id string) string {
	return fmt.Sprintf("<!DOCTYPE html>\n<html><head><title>[%s] Article not found</title></head><body><h1>Article not found</h1><p>Article identifier '%s' not recognized.</p></body></html>\n", esc(id), esc(id))
}
