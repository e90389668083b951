package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/citecrawl/citecrawl/classify"
	"github.com/citecrawl/citecrawl/ingest"
	"github.com/citecrawl/citecrawl/record"
)

// Task kinds.
const (
	TaskHub   = "hub"
	TaskPaper = "paper"
)

// Task is a fetch task on the work queue.
type Task struct {
	Kind  string `json:"kind"`
	URL   string `json:"url"`
	RunID string `json:"run_id"`
	Depth int    `json:"depth,omitempty"` // links followed from a configured hub
	// ArxivBase is where arXiv is for this crawl: the run that starts a
	// crawl decides it (its --offline snapshot, say), not each worker.
	ArxivBase  string              `json:"arxiv_base,omitempty"`
	Hub        *record.Hub         `json:"hub,omitempty"`
	HubMissing []string            `json:"hub_missing,omitempty"`
	HubSource  string              `json:"hub_source,omitempty"`
	Paper      *ingest.CitingPaper `json:"paper,omitempty"`
}

// What a raw record is to its run, in the Citecrawl-Change header.
const (
	ChangeNew     = "new"
	ChangeChanged = "changed"
	ChangeGone    = "gone"
)

// changeHeader marks a raw record with its run and what it is, so a run's
// report counts the records every worker of the cluster published.
func changeHeader(runID, change string) nats.Header {
	return nats.Header{HeaderRun: {runID}, HeaderChange: {change}}
}

// HubTask is the task that starts the crawl of one hub.
func HubTask(runID, hubURL string, depth int, arxivBase string) (Out, error) {
	u := ingest.NormaliseHubURL(hubURL)
	if _, err := ingest.HubID(u); err != nil {
		return Out{}, err
	}
	b, err := json.Marshal(Task{Kind: TaskHub, URL: hubURL, RunID: runID, Depth: depth, ArxivBase: arxivBase})
	return Out{Subject: SubjectHubTask, MsgID: runID + ":" + u, Data: b}, err
}

// fetchHandler fetches hubs and papers and turns them into raw records.
type fetchHandler struct {
	fetcher  *ingest.Fetcher
	splitter *ingest.Splitter
	cache    *httpCache // nil: no conditional requests
	cfg      Config
	now      func() time.Time
	stats    *Stats
	log      zerolog.Logger
}

func (h *fetchHandler) handle(ctx context.Context, m jetstream.Msg) (Outcome, error) {
	var t Task
	if err := json.Unmarshal(m.Data(), &t); err != nil {
		return Outcome{}, ingest.Permanent(fmt.Errorf("task on %s is not valid JSON: %w", m.Subject(), err))
	}
	switch t.Kind {
	case TaskHub:
		return h.hub(ctx, t)
	case TaskPaper:
		return h.paper(ctx, t)
	default:
		return Outcome{}, ingest.Permanent(fmt.Errorf("task on %s has unknown kind %q", m.Subject(), t.Kind))
	}
}

// get fetches u, conditionally when asked and the cache knows it. The
// returned commit stores the response's validators; the caller runs it
// only once what was built from the page is published.
func (h *fetchHandler) get(ctx context.Context, u, accept string, conditional bool) (*ingest.Response, func(context.Context) error, error) {
	hdr := http.Header{}
	if conditional && h.cache != nil {
		hdr = h.cache.conditionalHeaders(ctx, u)
	}
	hdr.Set("Accept", accept)
	resp, err := h.fetcher.Get(ctx, u, hdr)
	if err != nil {
		return nil, nil, err
	}
	h.stats.PagesFetched.Add(1)
	if resp.Status == http.StatusNotModified {
		h.stats.NotModified.Add(1)
		return resp, nil, nil
	}
	commit := func(ctx context.Context) error {
		if h.cache == nil {
			return nil
		}
		return h.cache.remember(ctx, u, resp.Header)
	}
	return resp, commit, nil
}

// hub fetches and parses a hub page and queues one paper task per citing
// paper, and the hubs it links to when discovery allows.
func (h *fetchHandler) hub(ctx context.Context, t Task) (Outcome, error) {
	resp, commit, err := h.get(ctx, t.URL, "text/html", h.cfg.Conditional)
	if err != nil {
		return Outcome{}, err
	}
	if resp.Status == http.StatusNotModified {
		h.log.Debug().Str("hub", t.URL).Msg("hub not modified: nothing to re-parse or re-publish")
		return Outcome{}, nil
	}
	page, err := ingest.ParseHub(t.URL, resp.Body, resp.Header.Get("Content-Type"))
	if err != nil {
		return Outcome{}, ingest.Permanent(err)
	}
	if len(page.Missing) > 0 {
		h.log.Warn().Str("hub", t.URL).Strs("missing", page.Missing).Msg("hub page lacks parts")
	}
	if len(page.Papers) == 0 {
		h.log.Warn().Str("hub", t.URL).Msg("hub lists no citing papers")
	}
	hub := page.HubRef(page.CitedIDs)
	var missing []string
	for _, m := range page.Missing {
		missing = append(missing, "hub."+m)
	}
	out := Outcome{Commit: []func(context.Context) error{commit}}
	for i := range page.Papers {
		p := page.Papers[i]
		b, err := json.Marshal(Task{Kind: TaskPaper, URL: p.URL, RunID: t.RunID, Depth: t.Depth, ArxivBase: t.ArxivBase,
			Hub: &hub, HubMissing: missing, HubSource: resp.URL, Paper: &p})
		if err != nil {
			return Outcome{}, err
		}
		out.Outs = append(out.Outs, Out{Subject: SubjectPaperTask, MsgID: t.RunID + ":" + record.ID(hub.ID, p.Key()), Data: b})
	}
	gone, commitMembers, err := h.gone(ctx, t, hub, page)
	if err != nil {
		return Outcome{}, err
	}
	out.Outs = append(out.Outs, gone...)
	out.Commit = append(out.Commit, commitMembers)
	more, err := h.discover(ctx, t, page.HubLinks)
	if err != nil {
		return Outcome{}, err
	}
	out.Outs = append(out.Outs, more...)
	h.log.Debug().Str("hub", t.URL).Int("papers", len(page.Papers)).Int("discovered", len(more)).Msg("hub parsed")
	return out, nil
}

// gone compares the papers a hub lists now with those it listed at the
// last crawl. A paper that disappeared gets a new record version marked
// gone (with what is known of it), never a silent delete.
func (h *fetchHandler) gone(ctx context.Context, t Task, hub record.Hub, page *ingest.HubPage) ([]Out, func(context.Context) error, error) {
	if h.cache == nil {
		return nil, func(context.Context) error { return nil }, nil
	}
	now := map[string]string{}
	for i := range page.Papers {
		now[record.ID(hub.ID, page.Papers[i].Key())] = page.Papers[i].Title
	}
	before := h.cache.hubMembers(ctx, hub.ID)
	var outs []Out
	for id, title := range before {
		if _, still := now[id]; still {
			continue
		}
		r := record.Record{
			Schema: record.Schema, ID: id, Hub: hub, Paper: record.Paper{Title: title}, Gone: true,
			Contexts: []record.Context{}, FetchedAt: h.now().UTC(), SourceURLs: []string{t.URL}, Missing: []string{},
		}
		b, err := json.Marshal(&r)
		if err != nil {
			return nil, nil, err
		}
		outs = append(outs, Out{Subject: RawSubject(hub.ID), MsgID: r.ID + ":" + r.Fingerprint(), Data: b, Header: changeHeader(t.RunID, ChangeGone)})
	}
	commit := func(ctx context.Context) error {
		h.stats.Gone.Add(int64(len(outs)))
		return h.cache.rememberHubMembers(ctx, hub.ID, now)
	}
	return outs, commit, nil
}

// discover queues linked hubs within the depth, the allowed hosts and the
// run's page budget.
func (h *fetchHandler) discover(ctx context.Context, t Task, links []string) ([]Out, error) {
	d := h.cfg.Discover
	if t.Depth >= d.Depth || h.cache == nil {
		return nil, nil
	}
	var outs []Out
	for _, l := range links {
		u, err := url.Parse(l)
		if err != nil || !slices.Contains(d.Hosts, strings.TrimPrefix(u.Hostname(), "www.")) {
			continue
		}
		ok, err := h.cache.takeBudget(ctx, t.RunID, d.MaxPages)
		if err != nil {
			return nil, err
		}
		if !ok {
			h.log.Info().Str("run", t.RunID).Int("max_pages", d.MaxPages).Msg("discovery page budget spent")
			break
		}
		o, err := HubTask(t.RunID, l, t.Depth+1, t.ArxivBase)
		if err != nil {
			continue
		}
		outs = append(outs, o)
	}
	return outs, nil
}

// paper builds the raw record of one citing paper. Metadata comes from the
// structured sources first (Pith's JSON record and graph snapshot), then
// arXiv's abstract page; citing sentences from arXiv's full text.
func (h *fetchHandler) paper(ctx context.Context, t Task) (Outcome, error) {
	if t.Hub == nil || t.Paper == nil {
		return Outcome{}, ingest.Permanent(fmt.Errorf("paper task %q lacks its hub or paper", t.URL))
	}
	id := record.ID(t.Hub.ID, t.Paper.Key())
	var known []string // the pages the record was last built from, if any
	if h.cache != nil {
		known = h.cache.recordPages(ctx, id)
	}
	if h.cfg.Conditional && h.unchanged(ctx, id, known) {
		return Outcome{}, nil
	}
	counter, change := &h.stats.New, ChangeNew
	if len(known) > 0 {
		counter, change = &h.stats.Changed, ChangeChanged
	}
	b := &paperBuild{h: h, t: t, urls: []string{t.HubSource}}
	if err := b.resolve(ctx); err != nil {
		return Outcome{}, err
	}
	r := ingest.NewRecord(*t.Hub, *t.Paper, b.src, b.urls, h.now())
	if h.cfg.FullText.Enabled {
		if err := b.fullText(ctx, &r); err != nil {
			return Outcome{}, err
		}
	}
	r.Missing = append(append(append([]string{}, t.HubMissing...), b.missing...), r.Missing...)
	more, err := h.discoverFromRecordPage(ctx, t)
	if err != nil {
		return Outcome{}, err
	}
	data, err := json.Marshal(&r)
	if err != nil {
		return Outcome{}, err
	}
	commits := append(b.commits, func(context.Context) error {
		// Counted once stored: a retried task must not count twice.
		h.stats.RecordsPublished.Add(1)
		counter.Add(1)
		return nil
	})
	if h.cache != nil {
		pages := b.fetched
		commits = append(commits, func(ctx context.Context) error { return h.cache.rememberRecordPages(ctx, id, pages) })
	}
	out := Out{Subject: RawSubject(r.Hub.ID), MsgID: r.ID + ":" + r.Fingerprint(), Data: data, Header: changeHeader(t.RunID, change)}
	return Outcome{Outs: append([]Out{out}, more...), Commit: commits}, nil
}

// discoverFromRecordPage follows the /citations/ links of the paper's
// Pith record page ("cited by", the works it cites), when discovery may go
// one link further.
func (h *fetchHandler) discoverFromRecordPage(ctx context.Context, t Task) ([]Out, error) {
	if t.Depth >= h.cfg.Discover.Depth || t.Paper.PithID == "" {
		return nil, nil
	}
	u := ingest.RecordURL(t.Hub.URL, t.Paper.PithID)
	resp, _, err := h.get(ctx, u, "text/html", false)
	if err != nil {
		if ingest.IsPermanent(err) {
			return nil, nil
		}
		return nil, err
	}
	links, err := ingest.HubLinks(u, resp.Body, resp.Header.Get("Content-Type"))
	if err != nil {
		return nil, nil
	}
	var others []string
	for _, l := range links {
		if id, err := ingest.HubID(l); err == nil && id != t.Hub.ID {
			others = append(others, l)
		}
	}
	return h.discover(ctx, t, others)
}

// unchanged asks every page the record was last built from whether it
// changed; only if none did is the record left as it is.
func (h *fetchHandler) unchanged(ctx context.Context, recordID string, pages []string) bool {
	if len(pages) == 0 {
		return false
	}
	for _, u := range pages {
		resp, err := h.fetcher.GetOnce(ctx, u, h.cache.conditionalHeaders(ctx, u))
		if err == nil {
			h.stats.PagesFetched.Add(1)
		}
		if err != nil {
			// Gone, moved or unreachable: rebuild from the current pages,
			// which retries properly if the failure is passing.
			h.log.Debug().Err(err).Str("url", u).Msg("source check failed; rebuilding the record")
			return false
		}
		if resp.Status != http.StatusNotModified {
			return false
		}
		h.stats.NotModified.Add(1)
	}
	h.log.Debug().Str("record", recordID).Msg("no source changed: not re-published")
	return true
}

// paperBuild collects what one paper task fetched.
type paperBuild struct {
	h       *fetchHandler
	t       Task
	src     ingest.Sources
	urls    []string // pages the record was built from (source_urls)
	fetched []string // the same, less the hub: what a re-crawl asks again
	missing []string
	commits []func(context.Context) error
}

// fetch gets u unconditionally (this is a rebuild); a permanent failure is
// noted as missing, not fatal: the record is still worth having.
func (b *paperBuild) fetch(ctx context.Context, u, accept, what string) (*ingest.Response, error) {
	resp, commit, err := b.h.get(ctx, u, accept, false)
	if err != nil {
		if ingest.IsPermanent(err) {
			b.h.log.Info().Err(err).Msg(what + " not available")
			b.missing = append(b.missing, what)
			return nil, nil
		}
		return nil, err
	}
	b.urls = append(b.urls, u)
	b.fetched = append(b.fetched, u)
	b.commits = append(b.commits, commit)
	return resp, nil
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

func (b *paperBuild) resolve(ctx context.Context) error {
	p, hubURL := b.t.Paper, b.t.Hub.URL
	if p.PithID != "" {
		err := b.fetchJSON(ctx, ingest.PithJSONURL(hubURL, p.PithID), "pith_json", func(u string, body []byte) (err error) {
			b.src.Pith, err = ingest.ParsePithRecord(u, body)
			return err
		})
		if err == nil && b.h.cfg.FetchGraph {
			err = b.fetchJSON(ctx, ingest.GraphURL(hubURL, p.PithID), "graph", func(u string, body []byte) (err error) {
				b.src.Graph, err = ingest.ParseGraph(u, body)
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
	if arxiv != "" && (b.src.Pith == nil && b.src.Graph == nil) {
		u := ingest.ArxivURL(b.arxivBase(), "abs", arxiv)
		resp, err := b.fetch(ctx, u, "text/html", "arxiv_abs")
		if err != nil {
			return err
		}
		if resp != nil {
			if b.src.Abs, err = ingest.ParseAbs(u, resp.Body, resp.Header.Get("Content-Type")); err != nil {
				b.h.log.Info().Err(err).Msg("arXiv abstract page unusable")
				b.missing = append(b.missing, "arxiv_abs")
			}
		}
	}
	return nil
}

// arxivBase is the crawl's arXiv, else this worker's configured one.
func (b *paperBuild) arxivBase() string {
	if b.t.ArxivBase != "" {
		return b.t.ArxivBase
	}
	return b.h.cfg.FullText.ArxivBase
}

func (b *paperBuild) arxivID() string {
	switch {
	case b.t.Paper.ArxivID != "":
		return b.t.Paper.ArxivID
	case b.src.Pith != nil && b.src.Pith.Source.Kind == "arxiv":
		return b.src.Pith.Source.ID
	case b.src.Graph != nil && b.src.Graph.Source.Kind == "arxiv":
		return b.src.Graph.Source.ID
	}
	return ""
}

// fullText reads the citing sentences of the hub's work from the paper's
// arXiv full text, or records why there are none.
func (b *paperBuild) fullText(ctx context.Context, r *record.Record) error {
	ft := &record.FullText{Status: record.FullTextNoArxivID}
	r.FullText = ft
	arxiv := r.Paper.Arxiv
	if arxiv == "" {
		return nil
	}
	ft.URL = ingest.ArxivURL(b.arxivBase(), "html", arxiv)
	resp, commit, err := b.h.get(ctx, ft.URL, "text/html", false)
	if err != nil {
		if ingest.IsPermanent(err) {
			ft.Status, ft.Reason = record.FullTextMissing, err.Error()
			return nil
		}
		return err
	}
	b.commits = append(b.commits, commit)
	b.fetched = append(b.fetched, ft.URL)
	r.SourceURLs = append(r.SourceURLs, ft.URL)
	page, err := ingest.ParseFullText(ft.URL, resp.Body, resp.Header.Get("Content-Type"))
	if err != nil {
		ft.Status, ft.Reason = record.FullTextUnparsable, err.Error()
		return nil
	}
	ft.References, ft.LinkedCitations = len(page.Refs), page.LinkedCitations
	m := page.FindCited(ingest.CitedFromHub(r.Hub))
	if m == nil {
		ft.Status, ft.Reason = record.FullTextNoMatch, fmt.Sprintf("none of %d references is the cited work", len(page.Refs))
		return nil
	}
	ft.Entry, ft.Label, ft.Method, ft.Score = m.Entry.ID, m.Entry.Label, m.Method, m.Score
	r.Contexts = page.Contexts(b.h.splitter, m.Entry, ingest.ContextOptions{TextFallback: b.h.cfg.FullText.TextFallback})
	if len(r.Contexts) == 0 || page.LinkedCitations == 0 {
		ft.Status, ft.Reason = record.FullTextNoLinks, "the bibliography lists the work but no citation links to it"
		if len(r.Contexts) > 0 {
			ft.Reason += "; contexts come from plain [n] markers"
		}
		return nil
	}
	ft.Status = record.FullTextOK
	return nil
}

// classifyHandler tags raw records.
type classifyHandler struct {
	c     *classify.Classifier
	stats *Stats
}

func (h *classifyHandler) handle(_ context.Context, m jetstream.Msg) (Outcome, error) {
	var r record.Record
	if err := json.Unmarshal(m.Data(), &r); err != nil {
		return Outcome{}, ingest.Permanent(fmt.Errorf("raw record on %s is not valid JSON: %w", m.Subject(), err))
	}
	if r.ID == "" || r.Schema != record.Schema {
		return Outcome{}, ingest.Permanent(fmt.Errorf("raw record on %s: no id, or schema %q is not %q", m.Subject(), r.Schema, record.Schema))
	}
	if !r.Gone { // a gone paper is counted as gone, not tagged again
		h.c.Tag(&r)
	}
	b, err := json.Marshal(&r)
	if err != nil {
		return Outcome{}, err
	}
	h.stats.RecordsTagged.Add(1)
	return Outcome{Outs: []Out{{Subject: TaggedSubject(r.Hub.ID), MsgID: r.ID + ":" + r.Fingerprint(), Data: b}}}, nil
}
