package ingest

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/PuerkitoBio/goquery"
	"golang.org/x/net/html"
	"gopkg.in/neurosnap/sentences.v1"
	"gopkg.in/neurosnap/sentences.v1/data"
	"gopkg.in/neurosnap/sentences.v1/english"

	"github.com/citecrawl/citecrawl/record"
)

// BibEntry is one entry of a LaTeXML bibliography.
type BibEntry struct {
	ID    string `json:"id"`    // the li id, bib.bibN
	Label string `json:"label"` // as printed: "3", "[3]", "Meier et al. (2007)"
	Arxiv string `json:"arxiv,omitempty"`
	DOI   string `json:"doi,omitempty"`
	Title string `json:"title,omitempty"` // a guess
	Text  string `json:"text"`
}

// FullText is a parsed LaTeXML full-text page.
type FullText struct {
	URL             string
	Refs            []BibEntry
	LinkedCitations int // anchors to #bib.bibN anywhere (notes in the bibliography cite too)
	paragraphs      []paragraph
}

type paragraph struct {
	id      string
	section string
	text    string // whitespace-normalised, footnotes cut, math as alttext
	cites   []citation
}

// citation is an in-text citation: its byte span in the paragraph text
// and the bibliography ids it points to.
type citation struct {
	start, end int
	refs       []string
	marker     string // "linked" or "text"
}

// Cited says which work to look for in a bibliography.
type Cited struct {
	Arxiv string
	DOI   string
	Title string
}

// ParseCited reads "2402.05070", "arxiv:2402.05070", "10.1000/xyz",
// "doi:10.1000/xyz" or a title.
func ParseCited(s string) Cited {
	s = strings.TrimSpace(s)
	low := strings.ToLower(s)
	switch {
	case reArxivID.MatchString(strings.TrimPrefix(low, "arxiv:")):
		return Cited{Arxiv: stripVersion(strings.TrimPrefix(low, "arxiv:"))}
	case strings.HasPrefix(low, "doi:") || strings.HasPrefix(low, "10."):
		return Cited{DOI: strings.TrimPrefix(low, "doi:")}
	default:
		return Cited{Title: s}
	}
}

// CitedFromHub builds the cited work of a hub: its ids and its title.
func CitedFromHub(h record.Hub) Cited {
	c := Cited{Title: h.Title}
	for _, id := range h.CitedWorkIDs {
		if a, ok := strings.CutPrefix(id, "arxiv:"); ok {
			c.Arxiv = a
		}
		if d, ok := strings.CutPrefix(id, "doi:"); ok {
			c.DOI = d
		}
	}
	return c
}

var (
	reArxivID   = regexp.MustCompile(`^(\d{4}\.\d{4,5}|[a-z\-]+(\.[a-z]{2})?/\d{7})(v\d+)?$`)
	reArxivText = regexp.MustCompile(`(?i)(?:arxiv[:\s]*(?:preprint\s*)?(?:arxiv:)?\s*(?:abs/)?|arxiv\.org/(?:abs|pdf|html)/|\babs/)(\d{4}\.\d{4,5}|[a-z\-]+(?:\.[a-z]{2})?/\d{7})`)
	reDOI       = regexp.MustCompile(`10\.\d{4,9}/[-._;()/:A-Za-z0-9<>]+`)
	reBibFrag   = regexp.MustCompile(`#(bib\.bib\d+)$`)
	reTextCite  = regexp.MustCompile(`\[(\d+(?:\s*[,–-]\s*\d+)*)\]`)
)

func stripVersion(id string) string {
	if i := strings.LastIndex(id, "v"); i > 0 && i < len(id)-1 {
		if _, err := strconv.Atoi(id[i+1:]); err == nil && (id[i-1] >= '0' && id[i-1] <= '9') {
			return id[:i]
		}
	}
	return id
}

// ErrNoBibliography is returned for a page with no LaTeXML bibliography.
var ErrNoBibliography = errors.New("no LaTeXML bibliography (li.ltx_bibitem) on the page")

// ParseFullText parses a LaTeXML rendering (HTML or XHTML).
func ParseFullText(pageURL string, body []byte, contentType string) (*FullText, error) {
	doc, err := ParseHTML(body, contentType)
	if err != nil {
		return nil, fmt.Errorf("full text %s: %w", pageURL, err)
	}
	ft := &FullText{URL: pageURL}
	doc.Find("li.ltx_bibitem").Each(func(_ int, s *goquery.Selection) {
		ft.Refs = append(ft.Refs, parseBibEntry(s))
	})
	ft.LinkedCitations = doc.Find("a[href*='#bib.bib']").FilterFunction(func(_ int, s *goquery.Selection) bool {
		return bibFragment(s.AttrOr("href", "")) != ""
	}).Length()
	if len(ft.Refs) == 0 && doc.Find(".ltx_document, .ltx_page_main, article.ltx_document").Length() == 0 {
		return nil, fmt.Errorf("full text %s: not a LaTeXML page: %w", pageURL, ErrNoBibliography)
	}
	doc.Find(".ltx_abstract p.ltx_p, .ltx_para > p.ltx_p").Each(func(_ int, s *goquery.Selection) {
		if s.Closest(".ltx_note, .ltx_bibliography").Length() > 0 {
			return
		}
		ft.paragraphs = append(ft.paragraphs, buildParagraph(s))
	})
	ft.paragraphs = dedupeParagraphs(ft.paragraphs)
	return ft, nil
}

// dedupeParagraphs drops repeats when two selectors matched one p.
func dedupeParagraphs(ps []paragraph) []paragraph {
	seen := map[string]bool{}
	out := ps[:0]
	for _, p := range ps {
		key := p.id + "\x00" + p.text
		if seen[key] {
			continue
		}
		seen[key] = true
		out = append(out, p)
	}
	return out
}

func parseBibEntry(s *goquery.Selection) BibEntry {
	e := BibEntry{ID: s.AttrOr("id", "")}
	e.Label = normaliseSpace(s.Find(".ltx_tag, .ltx_bibtag").First().Text())
	var tb textBuf
	s.Find(".ltx_bibblock").Each(func(_ int, b *goquery.Selection) {
		for _, n := range b.Nodes {
			tb.walk(n, nil)
		}
		tb.space = true
	})
	e.Text = tb.String()
	if e.Text == "" {
		e.Text = normaliseSpace(s.Text())
	}
	hay := e.Text
	s.Find("a[href]").Each(func(_ int, a *goquery.Selection) {
		href, _ := url.PathUnescape(a.AttrOr("href", ""))
		hay += " " + href
	})
	if m := reArxivText.FindStringSubmatch(hay); m != nil {
		e.Arxiv = stripVersion(strings.ToLower(m[1]))
	}
	if m := reDOI.FindString(hay); m != "" {
		e.DOI = strings.ToLower(strings.TrimRight(m, ".,;)>"))
	}
	e.Title = guessTitle(s, e.Text)
	return e
}

// guessTitle: a quoted title, else the first emphasised part, else the
// part after the author list.
func guessTitle(s *goquery.Selection, text string) string {
	for _, q := range [][2]string{{"“", "”"}, {"\"", "\""}, {"``", "''"}} {
		if i := strings.Index(text, q[0]); i >= 0 {
			if j := strings.Index(text[i+len(q[0]):], q[1]); j > 0 {
				return strings.TrimRight(strings.TrimSpace(text[i+len(q[0]):i+len(q[0])+j]), ",.")
			}
		}
	}
	if em := normaliseSpace(s.Find(".ltx_bibblock .ltx_emph").First().Text()); len(em) > 8 {
		return em
	}
	// Physics styles print no title: what follows the authors is then a
	// journal, too short to pass for a title.
	if parts := strings.Split(text, ". "); len(parts) > 1 && len(strings.Fields(parts[1])) >= 4 {
		return strings.TrimSpace(parts[1])
	}
	return ""
}

// buildParagraph flattens a p.ltx_p into text, noting each citation's span.
func buildParagraph(s *goquery.Selection) paragraph {
	p := paragraph{id: s.AttrOr("id", ""), section: sectionTitle(s)}
	if p.id == "" {
		p.id = s.Parent().AttrOr("id", "")
	}
	var tb textBuf
	for _, n := range s.Nodes {
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			tb.walk(c, &p.cites)
		}
	}
	p.text = tb.String()
	return p
}

// sectionTitle names the sections around s, outermost first
// ("Experiments / Datasets"); the abstract is "Abstract".
func sectionTitle(s *goquery.Selection) string {
	if s.Closest(".ltx_abstract").Length() > 0 {
		return "Abstract"
	}
	var titles []string
	s.ParentsFiltered(sectionClasses).Each(func(_ int, sec *goquery.Selection) {
		h := sec.ChildrenFiltered(".ltx_title").First().Clone()
		h.Find(".ltx_tag").Remove()
		if t := normaliseSpace(h.Text()); t != "" {
			titles = append([]string{t}, titles...)
		}
	})
	return strings.Join(titles, " / ")
}

// sectionClasses are LaTeXML's sectioning units, as section or div.
const sectionClasses = ".ltx_chapter, .ltx_section, .ltx_subsection, .ltx_subsubsection, .ltx_appendix, .ltx_paragraph"

// textBuf builds whitespace-normalised text while the caller notes byte
// offsets into it.
type textBuf struct {
	b     strings.Builder
	space bool
}

func (t *textBuf) write(s string) {
	for _, r := range s {
		if unicode.IsSpace(r) {
			t.space = true
			continue
		}
		t.flushSpace()
		t.b.WriteRune(r)
	}
}

// flushSpace writes one pending space, never two in a row.
func (t *textBuf) flushSpace() {
	if t.space && t.b.Len() > 0 && !strings.HasSuffix(t.b.String(), " ") {
		t.b.WriteByte(' ')
	}
	t.space = false
}

// mark flushes a pending space and returns the offset where the next
// character will go.
func (t *textBuf) mark() int {
	t.flushSpace()
	return t.b.Len()
}

func (t *textBuf) String() string { return t.b.String() }

func hasClass(n *html.Node, class string) bool {
	for _, c := range strings.Fields(attr(n, "class")) {
		if c == class {
			return true
		}
	}
	return false
}

// walk writes n's reading text: footnotes and unconverted macros cut out,
// math as its alttext, citations noted in cites (when not nil).
func (t *textBuf) walk(n *html.Node, cites *[]citation) {
	switch n.Type {
	case html.TextNode:
		t.write(n.Data)
		return
	case html.ElementNode:
	default:
		return
	}
	switch {
	case hasClass(n, "ltx_note") || hasClass(n, "ltx_ERROR") || skipTags[n.Data]:
		// Cut out without a trace: a footnote mark sits against the word.
		return
	case n.Data == "math":
		alt := attr(n, "alttext")
		if alt == "" {
			alt = "[math]"
		}
		t.mark()
		t.write(alt)
		t.space = true
		return
	case n.Data == "br":
		t.space = true
		return
	case cites != nil && n.Data == "cite":
		c := citation{start: t.mark(), marker: "linked"}
		for ch := n.FirstChild; ch != nil; ch = ch.NextSibling {
			t.walkCiteRefs(ch, &c)
		}
		c.end = t.b.Len()
		if len(c.refs) > 0 {
			*cites = append(*cites, c)
		}
		return
	case cites != nil && n.Data == "a" && bibFragment(attr(n, "href")) != "":
		// A bibliography link outside a cite element.
		c := citation{start: t.mark(), refs: []string{bibFragment(attr(n, "href"))}, marker: "linked"}
		for ch := n.FirstChild; ch != nil; ch = ch.NextSibling {
			t.walk(ch, nil)
		}
		c.end = t.b.Len()
		*cites = append(*cites, c)
		return
	}
	if blockTags[n.Data] {
		t.space = true
	}
	for ch := n.FirstChild; ch != nil; ch = ch.NextSibling {
		t.walk(ch, cites)
	}
}

// walkCiteRefs writes a cite's text and collects its #bib.bibN targets.
func (t *textBuf) walkCiteRefs(n *html.Node, c *citation) {
	if n.Type == html.ElementNode && n.Data == "a" {
		if id := bibFragment(attr(n, "href")); id != "" {
			c.refs = append(c.refs, id)
		}
	}
	if n.Type == html.ElementNode && n.FirstChild != nil && n.Data != "math" && !hasClass(n, "ltx_note") {
		for ch := n.FirstChild; ch != nil; ch = ch.NextSibling {
			t.walkCiteRefs(ch, c)
		}
		return
	}
	t.walk(n, nil)
}

// bibFragment returns "bib.bibN" for an absolute or relative href ending
// in #bib.bibN; only the fragment decides, never the link text.
func bibFragment(href string) string {
	if m := reBibFrag.FindStringSubmatch(strings.TrimSpace(href)); m != nil {
		return m[1]
	}
	return ""
}

// Match is the bibliography entry found for the cited work.
type Match struct {
	Entry  *BibEntry `json:"entry"`
	Method string    `json:"method"` // arxiv, doi or title
	Score  float64   `json:"score"`
}

// TitleThreshold is the least title similarity that counts as a match.
const TitleThreshold = 0.8

// FindCited looks for the cited work in the bibliography: by arXiv id, by
// DOI, then by title similarity. It returns nil when nothing reaches the
// threshold.
func (ft *FullText) FindCited(c Cited) *Match {
	for i := range ft.Refs {
		e := &ft.Refs[i]
		if c.Arxiv != "" && e.Arxiv == stripVersion(strings.ToLower(c.Arxiv)) {
			return &Match{Entry: e, Method: "arxiv", Score: 1}
		}
		if c.DOI != "" && e.DOI == strings.ToLower(c.DOI) {
			return &Match{Entry: e, Method: "doi", Score: 1}
		}
	}
	if c.Title == "" {
		return nil
	}
	var best *Match
	want := titleTokens(c.Title)
	for i := range ft.Refs {
		e := &ft.Refs[i]
		score := dice(want, titleTokens(e.Title))
		if len(want) >= 3 {
			// Title guesses fail on odd styles; the title's words all
			// present in the entry's text is nearly as good.
			score = max(score, 0.95*containment(want, titleTokens(e.Text)))
		}
		if score >= TitleThreshold && (best == nil || score > best.Score) {
			best = &Match{Entry: e, Method: "title", Score: round3(score)}
		}
	}
	return best
}

func titleTokens(s string) map[string]bool {
	out := map[string]bool{}
	for _, w := range strings.Fields(record.NormaliseKey(s)) {
		out[w] = true
	}
	return out
}

func dice(a, b map[string]bool) float64 {
	if len(a) == 0 || len(b) == 0 {
		return 0
	}
	n := 0
	for w := range a {
		if b[w] {
			n++
		}
	}
	return 2 * float64(n) / float64(len(a)+len(b))
}

func containment(want, in map[string]bool) float64 {
	if len(want) == 0 {
		return 0
	}
	n := 0
	for w := range want {
		if in[w] {
			n++
		}
	}
	return float64(n) / float64(len(want))
}

func round3(x float64) float64 { return float64(int(x*1000+0.5)) / 1000 }

// Splitter cuts paragraphs into sentences. Build it once per process: the
// English model takes milliseconds to load, splitting takes microseconds.
type Splitter struct {
	tok *sentences.DefaultSentenceTokenizer
}

// paperAbbrevs are abbreviations of scientific prose the English model
// does not know, so "see Fig. 2" does not end a sentence.
var paperAbbrevs = []string{"fig", "figs", "eq", "eqs", "ref", "refs", "sec", "secs", "cf", "al", "approx", "resp", "vs", "thm", "prop", "lem", "def", "ch", "app", "tab", "no", "vol", "pp"}

// NewSplitter loads the English sentence model.
func NewSplitter() (*Splitter, error) {
	b, err := data.Asset("data/english.json")
	if err == nil {
		var training *sentences.Storage
		if training, err = sentences.LoadTraining(b); err == nil {
			for _, a := range paperAbbrevs {
				training.AbbrevTypes.Add(a)
			}
			var tok *sentences.DefaultSentenceTokenizer
			if tok, err = english.NewSentenceTokenizer(training); err == nil {
				return &Splitter{tok: tok}, nil
			}
		}
	}
	return nil, fmt.Errorf("loading the sentence model: %w", err)
}

// ContextOptions tune Contexts.
type ContextOptions struct {
	// TextFallback also matches plain "[n]" markers when the page has no
	// linked citations at all; such contexts have marker "text".
	TextFallback bool
}

// Contexts returns the sentences citing entry: one per sentence (several
// citations of the work in one sentence give one context), with the
// section, the paragraph id and the rune span of the first citation
// marker within the sentence.
func (ft *FullText) Contexts(sp *Splitter, entry *BibEntry, opt ContextOptions) []record.Context {
	out := []record.Context{}
	fallback := opt.TextFallback && ft.LinkedCitations == 0
	label := strings.Trim(entry.Label, "[] ")
	for _, p := range ft.paragraphs {
		cites := p.cites
		if fallback {
			cites = textCitations(p.text, label, entry.ID)
		}
		var hits []citation
		for _, c := range cites {
			for _, r := range c.refs {
				if r == entry.ID {
					hits = append(hits, c)
					break
				}
			}
		}
		if len(hits) == 0 {
			continue
		}
		sents := sp.split(p.text, p.cites)
		done := map[int]bool{}
		for _, c := range hits {
			si := sentenceAt(sents, c.start)
			if si < 0 || done[si] {
				continue
			}
			done[si] = true
			s := sents[si]
			start, end := s.Start, min(s.End, len(p.text))
			// Trim the sentence and shift the span with it.
			for start < end && p.text[start] == ' ' {
				start++
			}
			for end > start && p.text[end-1] == ' ' {
				end--
			}
			text := p.text[start:end]
			cs := utf8.RuneCountInString(p.text[start:max(c.start, start)])
			ce := cs + utf8.RuneCountInString(p.text[max(c.start, start):min(c.end, end)])
			out = append(out, record.Context{
				Text: text, Section: p.section, Paragraph: p.id, CiteSpan: []int{cs, ce}, Marker: c.marker,
			})
		}
	}
	return out
}

// split cuts text into sentences, never inside a citation: "Meier et al.
// (2007)" is one marker, whatever the model thinks of "al.".
func (sp *Splitter) split(text string, cites []citation) []*sentences.Sentence {
	raw := sp.tok.Tokenize(text)
	out := make([]*sentences.Sentence, 0, len(raw))
	for _, s := range raw {
		if n := len(out); n > 0 && (insideCitation(s.Start, cites) || reAbbrevEnd.MatchString(out[n-1].Text)) {
			out[n-1] = &sentences.Sentence{Start: out[n-1].Start, End: s.End, Text: out[n-1].Text + s.Text}
			continue
		}
		out = append(out, s)
	}
	return out
}

// reAbbrevEnd: a "sentence" ending in an abbreviation ("[Fig.", "et al.")
// did not end; the model misses these after brackets.
var reAbbrevEnd = regexp.MustCompile(`(?i)\b(?:fig|figs|eq|eqs|ref|refs|sec|secs|cf|al|vs|resp|approx|no|vol|pp|e\.g|i\.e)\.\s*$`)

func insideCitation(off int, cites []citation) bool {
	for _, c := range cites {
		if off > c.start && off < c.end {
			return true
		}
	}
	return false
}

func sentenceAt(sents []*sentences.Sentence, off int) int {
	for i, s := range sents {
		if off >= s.Start && off < s.End {
			return i
		}
	}
	if len(sents) > 0 && off >= sents[len(sents)-1].Start {
		return len(sents) - 1
	}
	return -1
}

// textCitations finds plain "[n]" or "[n, m-k]" markers that include label.
func textCitations(text, label, id string) []citation {
	n, err := strconv.Atoi(label)
	if err != nil {
		return nil
	}
	var out []citation
	for _, m := range reTextCite.FindAllStringSubmatchIndex(text, -1) {
		if markerIncludes(text[m[2]:m[3]], n) {
			out = append(out, citation{start: m[0], end: m[1], refs: []string{id}, marker: "text"})
		}
	}
	return out
}

// markerIncludes reads "3", "3, 5" or "2-7" and tells whether n is in it.
func markerIncludes(s string, n int) bool {
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		lo, hi, isRange := strings.Cut(strings.ReplaceAll(part, "–", "-"), "-")
		a, err := strconv.Atoi(strings.TrimSpace(lo))
		if err != nil {
			continue
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(strings.TrimSpace(hi)); err != nil {
				continue
			}
		}
		if n >= a && n <= b {
			return true
		}
	}
	return false
}
