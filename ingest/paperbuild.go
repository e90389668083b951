package ingest

import (
	"context"
	"fmt"
	"net/http"
	"slices"

	"github.com/citecrawl/citecrawl/record"
	"github.com/citecrawl/citecrawl/retry"
)

// PaperJob is one citing paper to build a record for, with what its hub
// said about it.
type PaperJob struct {
	Hub record.Hub
	// HubMissing are the parts the hub page lacked ("hub.abstract", ...).
	HubMissing []string
	// HubSource is the URL the hub was read from (after redirects).
	HubSource string
	Paper     CitingPaper
	// Depth, CrawlID, ArxivBase and Shared are the hub's (see HubJob).
	Depth     int
	CrawlID   string
	ArxivBase string
	Shared    bool
	// New is true when the hub did not list the paper at its last crawl:
	// no record of it is known, so none is looked up.
	New bool
	// ID is the paper's record id, record.ID(Hub.ID, Paper.Key()), when
	// the hub's crawl worked it out ("" otherwise).
	ID string
	// Known are the pages the paper's record was last built from, with
	// their validators, as the hub's crawl found them: empty (not nil)
	// when it found none, and the record is then built again in full; nil
	// when it could not say (a task of an older version, or the hub's first
	// crawl by this one), and they are then looked up in History.
	Known []SourcePage
}

// PaperBuild is what building one paper's record gave.
type PaperBuild struct {
	// Unchanged is true when the record was built before and none of its
	// pages changed since: there is nothing to publish.
	Unchanged bool
	Record    record.Record
	// Known is true when the record was built before: this is a change,
	// not a new paper.
	Known bool
	// Discovered are hubs linked from the paper's Pith record page.
	Discovered []HubJob
	// Pages are the pages the record was built from, with their
	// validators: what History.RecordPages is to give for it once the
	// record is stored, and not before (a record that never got out must
	// be rebuilt, not found unchanged).
	Pages []SourcePage
}

// BuildPaper builds the raw (untagged) record of one citing paper.
//
// Metadata comes from the structured sources first, in this order: Pith's
// JSON record, its graph.json (when FetchGraph), then arXiv's abstract page
// only when neither gave anything (and for papers not on Pith). Each costs
// a request only when it can give a field the record still lacks (see
// lacks), and a page this crawl already fetched for another hub is read
// from the crawl's Pages instead. A source that fails for good is named in
// the record's missing, not fatal: the record is still worth having. The
// arXiv id is the hub's, else Pith's, else the graph's. Citing sentences
// come from arXiv's full text, whose status says why there are none (see
// readFullText).
func (c *Crawler) BuildPaper(ctx context.Context, job PaperJob) (*PaperBuild, error) {
	// The record's id is worked out here only to look a known record up:
	// NewRecord works it out again, and hashing it is not free.
	id := job.ID
	known := job.Known // the pages the record was last built from, if any
	if known == nil && c.history != nil && !job.New {
		if id == "" {
			id = record.ID(job.Hub.ID, job.Paper.Key())
		}
		known = c.history.RecordPages(ctx, id)
	}
	if c.cfg.Conditional && c.unchanged(ctx, id, known) {
		return &PaperBuild{Unchanged: true, Known: true}, nil
	}
	b := &paperBuild{c: c, job: job, urls: []string{job.HubSource}}
	if err := b.resolve(ctx); err != nil {
		return nil, err
	}
	r := NewRecord(job.Hub, job.Paper, b.src, b.urls, c.now())
	if c.cfg.FullText {
		if err := b.fullText(ctx, &r); err != nil {
			return nil, err
		}
	}
	r.Missing = append(append(append([]string{}, job.HubMissing...), b.missing...), r.Missing...)
	more, err := c.discoverFromRecordPage(ctx, job)
	if err != nil {
		return nil, err
	}
	// Listed by the hub before (its crawl said so with Known), or found:
	// a change, not a new paper.
	wasBuilt := len(known) > 0 || job.Known != nil && !job.New
	return &PaperBuild{Record: r, Known: wasBuilt, Discovered: more, Pages: b.fetched}, nil
}

// unchanged asks every page the record was last built from whether it
// changed; only if none did is the record left as it is. A page kept
// without its validator (by an older version) asks with the one stored
// for its URL.
func (c *Crawler) unchanged(ctx context.Context, recordID string, pages []SourcePage) bool {
	if len(pages) == 0 {
		return false
	}
	for _, p := range pages {
		u, hdr := p.URL, p.Validator.headers()
		if p.Validator == (Validator{}) {
			hdr = c.conditionalHeaders(ctx, u)
		}
		resp, err := c.check.Get(ctx, u, hdr)
		if err != nil {
			// Gone, moved or unreachable: rebuild from the current pages,
			// which retries properly if the failure is passing.
			c.log.Debug().Err(err).Str("url", u).Msg("source check failed; rebuilding the record")
			return false
		}
		if resp.Status != http.StatusNotModified {
			return false
		}
	}
	c.log.Debug().Str("record", recordID).Msg("no source changed: not re-published")
	return true
}

// discoverFromRecordPage follows the /citations/ links of the paper's
// Pith record page ("cited by", the works it cites), when discovery may go
// one link further. A record page that is gone or unreadable leads nowhere.
func (c *Crawler) discoverFromRecordPage(ctx context.Context, job PaperJob) ([]HubJob, error) {
	if job.Depth >= c.cfg.DiscoverDepth || job.Paper.PithID == "" {
		return nil, nil
	}
	u := RecordURL(job.Hub.URL, job.Paper.PithID)
	resp, _, err := c.fetch(ctx, u, "text/html", false)
	if err != nil {
		if retry.IsPermanent(err) {
			return nil, nil
		}
		return nil, err
	}
	links, err := HubLinks(u, resp.Body, resp.Header.Get("Content-Type"))
	if err != nil {
		return nil, nil
	}
	var others []string
	for _, l := range links {
		if id, err := HubID(l); err == nil && id != job.Hub.ID {
			others = append(others, l)
		}
	}
	return c.discover(ctx, HubJob{Depth: job.Depth, CrawlID: job.CrawlID, ArxivBase: job.ArxivBase, Shared: true}, others)
}

// paperBuild collects what one paper job fetched.
type paperBuild struct {
	c       *Crawler
	job     PaperJob
	src     Sources
	urls    []string     // pages the record was built from (source_urls)
	fetched []SourcePage // the same, less the hub: what a re-crawl asks again
	missing []string
}

// get gets u in full (this is a rebuild), or reads it from the pages this
// crawl fetched already. Its validator is kept with the record's pages
// (see BuildPaper), not on its own.
func (b *paperBuild) get(ctx context.Context, u, accept string) (*Response, error) {
	pages, crawl := b.c.pages, b.job.CrawlID
	if pages == nil || crawl == "" || !b.job.Shared {
		resp, _, err := b.c.fetch(ctx, u, accept, false)
		return resp, err
	}
	if resp, ok := pages.Page(ctx, crawl, u); ok {
		return resp, nil
	}
	resp, _, err := b.c.fetch(ctx, u, accept, false)
	if err == nil {
		if err := pages.StorePage(ctx, crawl, u, resp); err != nil {
			// Only a saving lost: another hub's paper fetches it again.
			b.c.log.Debug().Err(err).Str("url", u).Msg("could not keep the page for the rest of the crawl")
		}
	}
	return resp, err
}

// used notes that the record is built from resp, fetched from u.
func (b *paperBuild) used(u string, resp *Response) {
	b.urls = append(b.urls, u)
	b.fetched = append(b.fetched, SourcePage{URL: u, Validator: validatorOf(resp.Header)})
}

// fetch gets u (see get). A permanent failure is noted as missing under
// what, and gives no response and no error.
func (b *paperBuild) fetch(ctx context.Context, u, accept, what string) (*Response, error) {
	resp, err := b.get(ctx, u, accept)
	if err != nil {
		if retry.IsPermanent(err) {
			b.c.log.Info().Err(err).Msg(what + " not available")
			b.missing = append(b.missing, what)
			return nil, nil
		}
		return nil, err
	}
	b.used(u, resp)
	return resp, nil
}

// The paper fields each structured source can give, as named in a
// record's missing.
var (
	pithFields  = []string{"paper.title", "paper.summary", "paper.abstract", "paper.authors", "paper.arxiv", "paper.categories", "paper.published"}
	graphFields = append(slices.Clone(pithFields), "paper.verdict", "paper.refs")
	absFields   = []string{"paper.title", "paper.abstract", "paper.arxiv", "paper.published", "paper.authors"}
)

// lacks says whether the record, as the hub and the sources read so far
// make it, still lacks one of fields: a source that could add none of
// them is not asked.
func (b *paperBuild) lacks(fields []string) bool {
	p := paperFields(b.job.Paper, b.src) // its URL, which no source fills, left unresolved
	missing := missingFields(&p)
	for _, f := range fields {
		if slices.Contains(missing, f) {
			return true
		}
	}
	return false
}

// fetchJSON fetches a structured source and parses it; a source that is
// gone or unreadable is named in missing as what.
func (b *paperBuild) fetchJSON(ctx context.Context, u, what string, parse func(u string, body []byte) error) error {
	resp, err := b.fetch(ctx, u, "application/json", what)
	if err != nil || resp == nil {
		return err
	}
	if parse(u, resp.Body) != nil {
		b.missing = append(b.missing, what)
	}
	return nil
}

// resolve fetches the structured sources in their order.
func (b *paperBuild) resolve(ctx context.Context) error {
	p, hubURL := b.job.Paper, b.job.Hub.URL
	if p.PithID != "" {
		var err error
		if b.lacks(pithFields) {
			err = b.fetchJSON(ctx, PithJSONURL(hubURL, p.PithID), "pith_json", func(u string, body []byte) (err error) {
				b.src.Pith, err = ParsePithRecord(u, body)
				return err
			})
		}
		if err == nil && b.c.cfg.FetchGraph && b.lacks(graphFields) {
			err = b.fetchJSON(ctx, GraphURL(hubURL, p.PithID), "graph", func(u string, body []byte) (err error) {
				b.src.Graph, err = ParseGraph(u, body)
				return err
			})
		}
		if err != nil {
			return err
		}
	}
	// arXiv's abstract page: the fallback, and the only source for
	// papers not on Pith.
	arxiv := b.arxivID()
	if arxiv == "" || b.src.Pith != nil || b.src.Graph != nil || !b.lacks(absFields) {
		return nil
	}
	u := ArxivURL(b.arxivBase(), "abs", arxiv)
	resp, err := b.fetch(ctx, u, "text/html", "arxiv_abs")
	if err != nil || resp == nil {
		return err
	}
	if b.src.Abs, err = ParseAbs(u, resp.Body, resp.Header.Get("Content-Type")); err != nil {
		b.c.log.Info().Err(err).Msg("arXiv abstract page unusable")
		b.missing = append(b.missing, "arxiv_abs")
	}
	return nil
}

// arxivBase is the crawl's arXiv, else the crawler's.
func (b *paperBuild) arxivBase() string {
	if b.job.ArxivBase != "" {
		return b.job.ArxivBase
	}
	return b.c.cfg.ArxivBase
}

// arxivID is the paper's arXiv id: the hub's, else Pith's, else the graph's.
func (b *paperBuild) arxivID() string {
	switch {
	case b.job.Paper.ArxivID != "":
		return b.job.Paper.ArxivID
	case b.src.Pith != nil && b.src.Pith.Source.Kind == "arxiv":
		return b.src.Pith.Source.ID
	case b.src.Graph != nil && b.src.Graph.Source.Kind == "arxiv":
		return b.src.Graph.Source.ID
	}
	return ""
}

// fullText reads the citing sentences of the hub's work from the paper's
// arXiv full text, or records why there are none: no_arxiv_id, missing (a
// permanent failure: 404, not converted, withdrawn), unparsable, or what
// CitingSentences says.
func (b *paperBuild) fullText(ctx context.Context, r *record.Record) error {
	if r.Paper.Arxiv == "" {
		r.FullText = &record.FullText{Status: record.FullTextNoArxivID}
		return nil
	}
	u := ArxivURL(b.arxivBase(), "html", r.Paper.Arxiv)
	resp, err := b.get(ctx, u, "text/html")
	if err != nil {
		if retry.IsPermanent(err) {
			r.FullText = &record.FullText{URL: u, Status: record.FullTextMissing, Reason: err.Error()}
			return nil
		}
		return err
	}
	b.fetched = append(b.fetched, SourcePage{URL: u, Validator: validatorOf(resp.Header)})
	r.SourceURLs = append(r.SourceURLs, u)
	page, err := ParseFullText(u, resp.Body, resp.Header.Get("Content-Type"))
	if err != nil {
		r.FullText = &record.FullText{URL: u, Status: record.FullTextUnparsable, Reason: err.Error()}
		return nil
	}
	ft, contexts := page.CitingSentences(b.c.splitter, CitedFromHub(r.Hub), ContextOptions{TextFallback: b.c.cfg.TextFallback})
	ft.URL = u
	r.FullText, r.Contexts = &ft, contexts
	return nil
}

// CitingSentences finds the cited work in the page's bibliography and
// returns the sentences citing it, with how they were found: status ok,
// or no_match (the bibliography does not list the work), or
// no_linked_citations (listed, but no citation links to it; any contexts
// then come from plain [n] markers). The contexts command and the crawl
// both read full text through it.
func (ft *FullText) CitingSentences(sp *Splitter, cited Cited, opt ContextOptions) (record.FullText, []record.Context) {
	out := record.FullText{References: len(ft.Refs), LinkedCitations: ft.LinkedCitations}
	m := ft.FindCited(cited)
	if m == nil {
		out.Status, out.Reason = record.FullTextNoMatch, fmt.Sprintf("none of %d references is the cited work", len(ft.Refs))
		return out, []record.Context{}
	}
	out.Entry, out.Label, out.Method, out.Score = m.Entry.ID, m.Entry.Label, m.Method, m.Score
	contexts := ft.Contexts(sp, m.Entry, opt)
	if len(contexts) == 0 || ft.LinkedCitations == 0 {
		out.Status, out.Reason = record.FullTextNoLinks, "the bibliography lists the work but no citation links to it"
		if len(contexts) > 0 {
			out.Reason += "; contexts come from plain [n] markers"
		}
		return out, contexts
	}
	out.Status = record.FullTextOK
	return out, contexts
}
