package ingest

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/citecrawl/citecrawl/record"
)

// HubPage is what a pith.science citation hub says, as parsed.
type HubPage struct {
	URL              string
	ID               string // the hub's uuid
	Title            string
	Canonical        bool
	TitleUnresolved  bool // the title is raw reference text still resolving
	Headline         string
	CitingCount      int
	BackgroundPct    *int
	PolarityIndexing bool
	Abstract         string
	Facets           map[string]map[string]int
	Papers           []CitingPaper
	CitedIDs         []string // ids of the cited work from the title's links ("arxiv:…", "pith:…")
	HubLinks         []string // other /citations/ hubs linked from the page
	Missing          []string // parts of a hub the page did not have
}

// CitingPaper is one citing paper as the hub lists it.
type CitingPaper struct {
	Title      string
	Summary    string
	Category   string
	Published  string
	Verdict    string
	Novelty    *float64
	Refs       *int
	PithID     string
	ArxivID    string
	URL        string
	Meta       bool // a meta line was found for it
	Explorer   bool // listed in the citing papers explorer
	Represents bool // shown among the representative citing papers
}

// Key is the most stable identifier the hub gives for the paper.
func (p *CitingPaper) Key() string {
	switch {
	case p.PithID != "":
		return "pith:" + p.PithID
	case p.ArxivID != "":
		return "arxiv:" + p.ArxivID
	default:
		return "title:" + record.NormaliseKey(p.Title)
	}
}

// ErrNotHub is returned for a page that is not a citation hub.
var ErrNotHub = errors.New("not a pith.science citation hub")

// The labels of a hub page, exact and in reading order (SITES.md).
const (
	labelHub            = "hub"
	labelCanonical      = "Canonical reference"
	labelAbstract       = "abstract"
	labelHubTools       = "hub tools"
	labelRepresentative = "representative citing papers"
	labelExplorer       = "citing papers explorer"
	labelClaims         = "claims ledger"
)

var facetLabels = []string{
	"citation-role summary", "citation-polarity summary", "fields", "years", "verdicts", "roles", "polarities",
}

var sectionLabels = append([]string{labelAbstract, labelHubTools, labelRepresentative, labelExplorer, labelClaims}, facetLabels...)

var (
	reHeadlineCanonical = regexp.MustCompile(`^Canonical reference\. (\d+)% of citing Pith papers cite this work as (\w+)\.?`)
	reHeadlineCount     = regexp.MustCompile(`^(\d+) Pith papers? cites? this work\.(.*)$`)
	reCitingCount       = regexp.MustCompile(`^(\d+)\s*Pith papers? citing it$`)
	reCitingWords       = regexp.MustCompile(`^Pith papers? citing it$`)
	reBackground        = regexp.MustCompile(`^Background (\d+)% of classified citations`)
	reNumber            = regexp.MustCompile(`^\d+$`)
	reMetaCategory      = regexp.MustCompile(`^[a-z][a-z\-]*(\.[A-Za-z\-]+)?$`)
	reDate              = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}$`)
	reHubPath           = regexp.MustCompile(`/citations/([0-9a-fA-F-]{8,})`)
	rePithPath          = regexp.MustCompile(`/pith/([A-Z2-7]{26})(?:[/.?#]|$)`)
	reArxivPath         = regexp.MustCompile(`/(?:paper|p|abs|html|pdf)/(\d{4}\.\d{4,5}|[a-z\-]+(?:\.[A-Z]{2})?/\d{7})(?:v\d+)?`)
)

// HubID returns the hub uuid of a /citations/ URL, with the host
// normalised (www.pith.science is pith.science).
func HubID(rawURL string) (string, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", fmt.Errorf("hub URL %q: %w", rawURL, err)
	}
	m := reHubPath.FindStringSubmatch(u.Path)
	if m == nil {
		return "", fmt.Errorf("hub URL %q: path is not /citations/<uuid>", rawURL)
	}
	return strings.ToLower(m[1]), nil
}

// NormaliseHubURL drops www., fragments and the query, so the same hub
// always has the same URL.
func NormaliseHubURL(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return rawURL
	}
	u.Host = strings.TrimPrefix(strings.ToLower(u.Host), "www.")
	u.Fragment, u.RawQuery = "", ""
	return u.String()
}

// ParseHub parses the HTML of a hub page fetched from pageURL.
func ParseHub(pageURL string, body []byte, contentType string) (*HubPage, error) {
	doc, err := ParseHTML(body, contentType)
	if err != nil {
		return nil, fmt.Errorf("hub %s: %w", pageURL, err)
	}
	return ParseHubLines(pageURL, Lines(doc))
}

// ParseHubLines parses a hub from its lines of text; it serves both HTML
// pages and pages saved as text.
func ParseHubLines(pageURL string, lines []Line) (*HubPage, error) {
	lines = splitGluedLabels(lines)
	start := -1
	for i, l := range lines {
		if l.Text == labelHub || strings.HasPrefix(l.Text, labelHub+" "+labelCanonical) {
			start = i
			break
		}
	}
	if start < 0 {
		return nil, fmt.Errorf("page %s: %w (no %q label)", pageURL, ErrNotHub, labelHub)
	}
	h := &HubPage{URL: NormaliseHubURL(pageURL), Facets: map[string]map[string]int{}}
	if id, err := HubID(pageURL); err == nil {
		h.ID = id
	} else {
		h.Missing = append(h.Missing, "hub_id")
	}

	p := &hubParser{lines: lines, i: start, h: h}
	p.header()
	p.sections()
	p.finish()
	h.HubLinks = hubLinks(pageURL, lines, h.ID)
	return h, nil
}

// HubLinks returns the /citations/ hubs an HTML page (a record page, a
// hub) links to, as absolute URLs.
func HubLinks(pageURL string, body []byte, contentType string) ([]string, error) {
	doc, err := ParseHTML(body, contentType)
	if err != nil {
		return nil, fmt.Errorf("page %s: %w", pageURL, err)
	}
	return hubLinks(pageURL, Lines(doc), ""), nil
}

func hubLinks(pageURL string, lines []Line, self string) []string {
	var out []string
	for _, l := range lines {
		for _, ln := range l.Links {
			if m := reHubPath.FindStringSubmatch(ln.Href); m != nil && !strings.EqualFold(m[1], self) {
				out = appendUnique(out, resolveRef(pageURL, ln.Href))
			}
		}
	}
	return out
}

type hubParser struct {
	lines []Line
	i     int
	h     *HubPage
	rep   []CitingPaper
	exp   []CitingPaper
	seen  map[string]bool // which sections were present
}

// header reads from "hub" to the first section label: title, headline,
// counts.
func (p *hubParser) header() {
	h := p.h
	first := p.lines[p.i].Text
	p.i++
	if strings.Contains(first, labelCanonical) {
		h.Canonical = true
	} else if p.i < len(p.lines) && p.lines[p.i].Text == labelCanonical {
		h.Canonical = true
		p.i++
	}
	if p.i < len(p.lines) && !isSectionLabel(p.lines[p.i].Text) {
		h.Title = p.lines[p.i].Text
		var cited CitingPaper
		linkIDs(&cited, p.lines[p.i].Links)
		if cited.ArxivID != "" {
			h.CitedIDs = append(h.CitedIDs, "arxiv:"+cited.ArxivID)
		}
		if cited.PithID != "" {
			h.CitedIDs = append(h.CitedIDs, "pith:"+cited.PithID)
		}
		p.i++
	}
	for ; p.i < len(p.lines) && !isSectionLabel(p.lines[p.i].Text); p.i++ {
		t := p.lines[p.i].Text
		switch {
		case reHeadlineCanonical.MatchString(t):
			m := reHeadlineCanonical.FindStringSubmatch(t)
			h.Headline, h.Canonical = t, true
			if strings.EqualFold(m[2], "background") {
				h.BackgroundPct = atoiPtr(m[1])
			}
		case reHeadlineCount.MatchString(t):
			m := reHeadlineCount.FindStringSubmatch(t)
			h.Headline = t
			if h.CitingCount == 0 {
				h.CitingCount, _ = strconv.Atoi(m[1])
			}
			h.PolarityIndexing = strings.Contains(m[2], "still indexing")
		case reCitingCount.MatchString(t):
			h.CitingCount, _ = strconv.Atoi(reCitingCount.FindStringSubmatch(t)[1])
		case reNumber.MatchString(t) && p.i+1 < len(p.lines) && reCitingWords.MatchString(p.lines[p.i+1].Text):
			h.CitingCount, _ = strconv.Atoi(t) // count and words split over two lines
			p.i++
		case reBackground.MatchString(t):
			h.BackgroundPct = atoiPtr(reBackground.FindStringSubmatch(t)[1])
		case strings.Contains(t, "has not finished resolving"):
			h.TitleUnresolved = true
		}
	}
}

// sections reads the labelled sections in whatever order they come.
func (p *hubParser) sections() {
	p.seen = map[string]bool{}
	for p.i < len(p.lines) {
		label := p.lines[p.i].Text
		p.i++
		body := p.until()
		p.seen[label] = true
		switch {
		case label == labelAbstract:
			texts := make([]string, len(body))
			for k, l := range body {
				texts[k] = l.Text
			}
			p.h.Abstract = strings.Join(texts, " ")
		case isFacetLabel(label):
			p.h.Facets[label] = parseFacetPairs(body)
		case label == labelRepresentative:
			p.rep = parseCards(body)
		case label == labelExplorer:
			p.exp = parseExplorer(body)
		}
	}
}

// until returns the lines up to the next section label.
func (p *hubParser) until() []Line {
	start := p.i
	for p.i < len(p.lines) && !isSectionLabel(p.lines[p.i].Text) {
		p.i++
	}
	return p.lines[start:p.i]
}

// finish merges representative cards into explorer entries (one paper,
// one record) and lists what the page lacked.
func (p *hubParser) finish() {
	h := p.h
	// Sized for the entries (up to four keys each, see register), not
	// grown by doubling: a hub may list thousands.
	n := len(p.exp) + len(p.rep)
	byKey := make(map[string]int, 4*n)
	h.Papers = slices.Grow(h.Papers, n)
	add := func(c CitingPaper) {
		keys := lookupKeys(&c)
		for _, k := range keys {
			if j, ok := byKey[k]; ok {
				mergePaper(&h.Papers[j], &c)
				register(byKey, &h.Papers[j], lookupKeys(&h.Papers[j]), j)
				return
			}
		}
		h.Papers = append(h.Papers, c)
		register(byKey, &c, keys, len(h.Papers)-1)
	}
	for _, c := range p.exp {
		add(c)
	}
	for _, c := range p.rep {
		add(c)
	}
	if h.Title == "" {
		h.Missing = append(h.Missing, "title")
	}
	if h.CitingCount == 0 {
		h.Missing = append(h.Missing, "citing_count")
	}
	for _, s := range []string{labelAbstract, labelHubTools, labelRepresentative, labelExplorer} {
		if !p.seen[s] {
			h.Missing = append(h.Missing, strings.ReplaceAll(s, " ", "_"))
		}
	}
	if len(h.Facets) == 0 {
		h.Missing = append(h.Missing, "facets")
	}
}

// lookupKeys are the identities under which a card and an explorer entry
// are the same paper: ids from links and the title; only a card that shows
// no title is matched by its summary (different papers may share one).
func lookupKeys(c *CitingPaper) []string {
	var ks []string
	if c.PithID != "" {
		ks = append(ks, "pith:"+c.PithID)
	}
	if c.ArxivID != "" {
		ks = append(ks, "arxiv:"+c.ArxivID)
	}
	if c.Title != "" {
		ks = append(ks, "title:"+record.NormaliseKey(c.Title))
	} else if c.Summary != "" {
		ks = append(ks, "summary:"+record.NormaliseKey(c.Summary))
	}
	return ks
}

// register indexes paper j under its keys (lookupKeys, computed once by
// the caller: normalising a title is most of their cost) and its summary;
// the first paper with a summary keeps it.
func register(byKey map[string]int, c *CitingPaper, keys []string, j int) {
	for _, k := range keys {
		byKey[k] = j
	}
	if c.Summary != "" {
		k := "summary:" + record.NormaliseKey(c.Summary)
		if _, taken := byKey[k]; !taken {
			byKey[k] = j
		}
	}
}

func mergePaper(dst, src *CitingPaper) {
	fill := func(d *string, s string) {
		if *d == "" {
			*d = s
		}
	}
	fill(&dst.Title, src.Title)
	fill(&dst.Summary, src.Summary)
	fill(&dst.Category, src.Category)
	fill(&dst.Published, src.Published)
	fill(&dst.Verdict, src.Verdict)
	fill(&dst.PithID, src.PithID)
	fill(&dst.ArxivID, src.ArxivID)
	fill(&dst.URL, src.URL)
	if dst.Novelty == nil {
		dst.Novelty = src.Novelty
	}
	if dst.Refs == nil {
		dst.Refs = src.Refs
	}
	dst.Meta = dst.Meta || src.Meta
	dst.Explorer = dst.Explorer || src.Explorer
	dst.Represents = dst.Represents || src.Represents
}

// parseFacetPairs reads "<value> <count>" pairs, several to a line. A value
// may be several words; the count is the next whole number.
func parseFacetPairs(body []Line) map[string]int {
	out := map[string]int{}
	for _, l := range body {
		toks := strings.Fields(l.Text)
		var value []string
		for _, t := range toks {
			if n, err := strconv.Atoi(t); err == nil && len(value) > 0 {
				out[strings.Join(value, " ")] += n
				value = value[:0]
				continue
			}
			value = append(value, t)
		}
	}
	return out
}

// parseCards reads representative cards: title, meta line, summary. Cards
// whose markup was lost show only the summary; each such line is a card.
func parseCards(body []Line) []CitingPaper {
	var out []CitingPaper
	used := make([]bool, len(body))
	for i, l := range body {
		meta, ok := parseMeta(l.Text)
		if !ok {
			continue
		}
		c := meta
		c.Represents = true
		if i > 0 && !used[i-1] {
			c.Title = body[i-1].Text
			linkIDs(&c, body[i-1].Links)
			used[i-1] = true
		}
		if i+1 < len(body) {
			if _, isMeta := parseMeta(body[i+1].Text); !isMeta {
				c.Summary = body[i+1].Text
				used[i+1] = true
			}
		}
		linkIDs(&c, l.Links)
		used[i] = true
		out = append(out, c)
	}
	for i, l := range body {
		if !used[i] {
			c := CitingPaper{Summary: l.Text, Represents: true}
			linkIDs(&c, l.Links)
			out = append(out, c)
		}
	}
	return out
}

// parseMeta reads "cs.AI · 2026-05-11 · unverdicted · novelty 6.0 · 2 refs".
func parseMeta(s string) (CitingPaper, bool) {
	parts := strings.Split(s, " · ")
	if len(parts) < 2 || !reMetaCategory.MatchString(parts[0]) || !reDate.MatchString(parts[1]) {
		return CitingPaper{}, false
	}
	c := CitingPaper{Category: parts[0], Published: parts[1], Meta: true}
	for _, part := range parts[2:] {
		f := strings.Fields(part)
		switch {
		case len(f) == 2 && f[0] == "novelty":
			if v, err := strconv.ParseFloat(f[1], 64); err == nil {
				c.Novelty = &v
			}
		case len(f) == 2 && (f[1] == "refs" || f[1] == "ref"):
			c.Refs = atoiPtr(f[0])
		case len(f) == 1:
			c.Verdict = f[0]
		}
	}
	return c, true
}

// parseExplorer reads explorer entries: "-" bullets then title and
// summary. Without bullets, a line carrying a paper link starts an entry;
// without those either, lines pair up as title and summary.
func parseExplorer(body []Line) []CitingPaper {
	var groups [][]Line
	hasBullets := false
	for _, l := range body {
		if l.Text == "-" || l.Text == "•" {
			hasBullets = true
			break
		}
	}
	for _, l := range body {
		switch {
		case hasBullets && (l.Text == "-" || l.Text == "•"):
			groups = append(groups, nil)
		case hasBullets:
			if len(groups) == 0 {
				groups = append(groups, nil)
			}
			groups[len(groups)-1] = append(groups[len(groups)-1], l)
		case hasPaperLink(l) || len(groups) == 0 || len(groups[len(groups)-1]) == 2:
			groups = append(groups, []Line{l})
		default:
			groups[len(groups)-1] = append(groups[len(groups)-1], l)
		}
	}
	out := make([]CitingPaper, 0, len(groups))
	for _, g := range groups {
		if len(g) == 0 {
			continue
		}
		c := CitingPaper{Title: g[0].Text, Explorer: true}
		linkIDs(&c, g[0].Links)
		if len(g) > 1 {
			rest := make([]string, 0, len(g)-1)
			for _, l := range g[1:] {
				if m, ok := parseMeta(l.Text); ok {
					mergePaper(&c, &m)
					continue
				}
				rest = append(rest, l.Text)
				linkIDs(&c, l.Links)
			}
			c.Summary = strings.Join(rest, " ")
		}
		out = append(out, c)
	}
	return out
}

func hasPaperLink(l Line) bool {
	for _, ln := range l.Links {
		if rePithPath.MatchString(ln.Href) || mayBeArxivPath(ln.Href) && reArxivPath.MatchString(ln.Href) {
			return true
		}
	}
	return false
}

// mayBeArxivPath says whether href holds what reArxivPath needs, a
// literal "/paper/", "/p/", "/abs/", "/html/" or "/pdf/": searching for
// these first spares the expression a scan from every slash of every
// /pith/ link of a hub.
func mayBeArxivPath(href string) bool {
	for _, p := range arxivPathParts {
		if strings.Contains(href, p) {
			return true
		}
	}
	return false
}

var arxivPathParts = []string{"/paper/", "/p/", "/abs/", "/html/", "/pdf/"}

// linkIDs takes the Pith and arXiv ids from a card's links.
func linkIDs(c *CitingPaper, links []Link) {
	for _, ln := range links {
		if m := rePithPath.FindStringSubmatch(ln.Href); m != nil && c.PithID == "" {
			c.PithID = m[1]
			if c.URL == "" {
				c.URL = ln.Href
			}
		}
		if !mayBeArxivPath(ln.Href) {
			continue
		}
		if m := reArxivPath.FindStringSubmatch(ln.Href); m != nil && c.ArxivID == "" {
			c.ArxivID = m[1]
			if c.URL == "" {
				c.URL = ln.Href
			}
		}
	}
}

// splitGluedLabels undoes text extraction that ran a label into the line
// before it ("2026 18representative citing papers").
func splitGluedLabels(lines []Line) []Line {
	out := make([]Line, 0, len(lines))
	for _, l := range lines {
		split := false
		for _, lab := range sectionLabels {
			head := strings.TrimSuffix(l.Text, lab)
			// Only a label run straight into a figure counts: "ten years"
			// in a summary must stay whole.
			if head != l.Text && head != "" && head[len(head)-1] >= '0' && head[len(head)-1] <= '9' {
				out = append(out, Line{Text: head, Links: l.Links}, Line{Text: lab})
				split = true
				break
			}
		}
		if !split {
			out = append(out, l)
		}
	}
	return out
}

func isSectionLabel(s string) bool {
	for _, l := range sectionLabels {
		if s == l {
			return true
		}
	}
	return false
}

func isFacetLabel(s string) bool {
	for _, l := range facetLabels {
		if s == l {
			return true
		}
	}
	return false
}

func atoiPtr(s string) *int {
	n, err := strconv.Atoi(s)
	if err != nil {
		return nil
	}
	return &n
}

func appendUnique(xs []string, x string) []string {
	for _, y := range xs {
		if y == x {
			return xs
		}
	}
	return append(xs, x)
}

// resolveRef makes href absolute against base. An absolute path of plain
// characters against an http(s) URL of a plain host (every paper's Pith
// URLs against its hub's) is joined to the host as it is: parsing both
// and printing the result gives the same string (TestResolveRefPlainPath)
// in three times the time and six times the bytes, twice a paper.
func resolveRef(base, href string) string {
	if origin, ok := plainOrigin(base); ok && plainPath(href) {
		return origin + href
	}
	return parseRef(base, href)
}

// parseRef is resolveRef by parsing both: href as it is when either
// does not parse.
func parseRef(base, href string) string {
	b, err := url.Parse(base)
	if err != nil {
		return href
	}
	r, err := b.Parse(href)
	if err != nil {
		return href
	}
	return r.String()
}

// plainOrigin is the scheme and host of an http or https URL whose host
// holds only letters, digits, dots and hyphens, and its port (after one
// colon) only digits, with no user information: nothing url.Parse would
// change, escape or refuse.
func plainOrigin(u string) (string, bool) {
	rest, ok := strings.CutPrefix(u, "http://")
	if !ok {
		if rest, ok = strings.CutPrefix(u, "https://"); !ok {
			return "", false
		}
	}
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	if end == 0 {
		return "", false
	}
	host, port, hasPort := strings.Cut(rest[:end], ":")
	for i := range len(host) {
		if c := host[i]; !isAlnum(c) && c != '.' && c != '-' {
			return "", false
		}
	}
	// A port is digits or nothing: url.Parse refuses any other.
	for i := range len(port) {
		if c := port[i]; c < '0' || c > '9' {
			return "", false
		}
	}
	if hasPort && host == "" {
		return "", false
	}
	return u[:len(u)-len(rest)+end], true
}

// plainPath says whether href is an absolute path of unreserved
// characters and slashes with no empty, "." or ".." segment: one that
// resolves to itself against any URL.
func plainPath(href string) bool {
	if len(href) < 2 || href[0] != '/' {
		return false
	}
	start := 1 // of the current segment
	for i := 1; i <= len(href); i++ {
		if i == len(href) || href[i] == '/' {
			if seg := href[start:i]; seg == "" || seg == "." || seg == ".." {
				return false
			}
			start = i + 1
			continue
		}
		if c := href[i]; !isAlnum(c) && c != '-' && c != '.' && c != '_' && c != '~' {
			return false
		}
	}
	return true
}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}
