package ingest

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/citecrawl/citecrawl/record"
	"github.com/citecrawl/citecrawl/retry"
)

// HubJob is one hub to crawl.
type HubJob struct {
	URL string
	// Depth is how many links the hub is from a configured one.
	Depth int
	// CrawlID names the crawl (the run) the hub belongs to: discovery's
	// page budget is per crawl.
	CrawlID string
	// ArxivBase is where arXiv is for this crawl ("": the crawler's). The
	// run that starts a crawl decides it (its offline snapshot, say), not
	// each worker, so it travels with the crawl's jobs.
	ArxivBase string
	// Shared is true when the crawl has more than one hub (several
	// configured, or discovery on), so that a paper may be listed by two:
	// only then are the pages it fetches kept for the rest of the crawl
	// (see Pages), which a crawl of one hub would pay for in vain.
	Shared bool
}

// HubCrawl is what crawling one hub found.
type HubCrawl struct {
	// NotModified is true when the hub answered 304: nothing to re-parse
	// and nothing to publish.
	NotModified bool
	Hub         record.Hub
	// Papers are the citing papers to build, one job each.
	Papers []PaperJob
	// Gone are new versions, marked gone, of the papers the hub listed at
	// the last crawl and lists no more: never a silent delete.
	Gone []record.Record
	// Discovered are the linked hubs to crawl next.
	Discovered []HubJob
	// Commits are to run once all of the above is stored.
	Commits []Commit
}

// CrawlHub fetches and parses a hub page and says which papers to build,
// which are gone, and which hubs discovery allows next. A page that is not
// a hub is a permanent error.
func (c *Crawler) CrawlHub(ctx context.Context, job HubJob) (*HubCrawl, error) {
	resp, commit, err := c.fetch(ctx, job.URL, "text/html", c.cfg.Conditional)
	if err != nil {
		return nil, err
	}
	if resp.Status == http.StatusNotModified {
		c.log.Debug().Str("hub", job.URL).Msg("hub not modified: nothing to re-parse or re-publish")
		return &HubCrawl{NotModified: true}, nil
	}
	page, err := ParseHub(job.URL, resp.Body, resp.Header.Get("Content-Type"))
	if err != nil {
		return nil, retry.Permanent(err)
	}
	if len(page.Missing) > 0 {
		c.log.Warn().Str("hub", job.URL).Strs("missing", page.Missing).Msg("hub page lacks parts")
	}
	if len(page.Papers) == 0 {
		c.log.Warn().Str("hub", job.URL).Msg("hub lists no citing papers")
	}
	hub := page.HubRef(page.CitedIDs)
	var missing []string
	for _, m := range page.Missing {
		missing = append(missing, "hub."+m)
	}
	out := &HubCrawl{Hub: hub, Commits: []Commit{commit}, Papers: make([]PaperJob, 0, len(page.Papers))}
	var before map[string]string // the papers the hub listed at the last crawl
	ids := make([]string, len(page.Papers))
	for i := range page.Papers {
		ids[i] = record.ID(hub.ID, page.Papers[i].Key())
	}
	if c.history != nil {
		before = c.history.HubMembers(ctx, hub.ID)
	}
	for i, p := range page.Papers {
		_, listed := before[ids[i]]
		out.Papers = append(out.Papers, PaperJob{Hub: hub, HubMissing: missing, HubSource: resp.URL, Paper: p,
			Depth: job.Depth, CrawlID: job.CrawlID, ArxivBase: job.ArxivBase, Shared: job.Shared,
			New: c.history != nil && !listed, ID: ids[i]})
	}
	var members Commit
	out.Gone, members = c.gone(job, hub, page, ids, before)
	out.Commits = append(out.Commits, members)
	if out.Discovered, err = c.discover(ctx, job, page.HubLinks); err != nil {
		return nil, err
	}
	c.log.Debug().Str("hub", job.URL).Int("papers", len(page.Papers)).Int("discovered", len(out.Discovered)).Msg("hub parsed")
	return out, nil
}

// gone compares the papers a hub lists now with those it listed at the
// last crawl (before). A paper that disappeared gets a new record version
// marked gone, with what is known of it. ids are the papers' record ids.
func (c *Crawler) gone(job HubJob, hub record.Hub, page *HubPage, ids []string, before map[string]string) ([]record.Record, Commit) {
	if c.history == nil {
		return nil, func(context.Context) error { return nil }
	}
	now := make(map[string]string, len(page.Papers))
	for i := range page.Papers {
		now[ids[i]] = page.Papers[i].Title
	}
	var gone []record.Record
	for id, title := range before {
		if _, still := now[id]; !still {
			gone = append(gone, goneRecord(hub, id, title, job.URL, c.now()))
		}
	}
	slices.SortFunc(gone, func(a, b record.Record) int { return strings.Compare(a.ID, b.ID) })
	return gone, func(ctx context.Context) error { return c.history.StoreHubMembers(ctx, hub.ID, now) }
}

// goneRecord is the record version saying a hub no longer lists a paper.
func goneRecord(hub record.Hub, id, title, hubURL string, now time.Time) record.Record {
	return record.Record{
		Schema: record.Schema, ID: id, Hub: hub, Paper: record.Paper{Title: title}, Gone: true,
		Contexts: []record.Context{}, FetchedAt: now.UTC(), SourceURLs: []string{hubURL}, Missing: []string{},
	}
}

// discover returns the linked hubs to crawl next: within the depth, the
// allowed hosts and the crawl's page budget.
func (c *Crawler) discover(ctx context.Context, job HubJob, links []string) ([]HubJob, error) {
	if job.Depth >= c.cfg.DiscoverDepth || c.budget == nil {
		return nil, nil
	}
	var out []HubJob
	for _, l := range links {
		u, err := url.Parse(l)
		if err != nil || CheckURL(l) != nil || !slices.Contains(c.cfg.DiscoverHosts, strings.TrimPrefix(u.Hostname(), "www.")) {
			continue // only http(s) links to the allowed hosts are followed
		}
		if _, err := HubID(NormaliseHubURL(l)); err != nil {
			continue
		}
		ok, err := c.budget.TakeBudget(ctx, job.CrawlID, c.cfg.DiscoverMaxPages)
		if err != nil {
			return nil, err
		}
		if !ok {
			c.log.Info().Str("crawl", job.CrawlID).Int("max_pages", c.cfg.DiscoverMaxPages).Msg("discovery page budget spent")
			break
		}
		out = append(out, HubJob{URL: l, Depth: job.Depth + 1, CrawlID: job.CrawlID, ArxivBase: job.ArxivBase, Shared: true})
	}
	return out, nil
}
