package ingest

import (
	"context"
	"net/http"
	"time"

	"github.com/rs/zerolog"
)

// This file holds citecrawl's crawling rules, free of any transport: a
// Crawler crawls a hub (crawlhub.go) and builds the record of one citing
// paper (paperbuild.go) over a Getter, and remembers what it saw through
// the small stores below. The pipeline decodes tasks, calls it and
// publishes what it returns.

// Getter fetches one page. hdr carries the request headers (Accept,
// If-None-Match, If-Modified-Since); a 304 is a Response, not an error. A
// failure is an error in the words of package retry (permanent or
// retryable). *Fetcher is the Getter of a crawl.
type Getter interface {
	Get(ctx context.Context, url string, hdr http.Header) (*Response, error)
}

// Validator is how a server names the version of a page it sent.
type Validator struct {
	ETag         string
	LastModified string
}

// validatorOf reads the validator of a response's headers.
func validatorOf(h http.Header) Validator {
	return Validator{ETag: h.Get("ETag"), LastModified: h.Get("Last-Modified")}
}

// Validators stores the validator of every page fetched, for conditional
// requests.
type Validators interface {
	// Validator returns what is stored for url, if anything.
	Validator(ctx context.Context, url string) (Validator, bool)
	StoreValidator(ctx context.Context, url string, v Validator) error
}

// SourcePage is a page a record was built from, with the validator it
// came with (empty when the server sent none, or the store kept none).
type SourcePage struct {
	URL string
	Validator
}

// History is what earlier crawls saw: the pages each record was built
// from, with their validators (one entry per record, not one per page),
// and the citing papers each hub listed. A record's pages are kept by
// whoever stores the record (PaperBuild.Pages), once it is stored.
type History interface {
	// RecordPages are looked up for a paper the hub listed before whose
	// job does not carry them (PaperJob.Known).
	RecordPages(ctx context.Context, recordID string) []SourcePage
	// HubMembers maps record id to paper title.
	HubMembers(ctx context.Context, hubID string) map[string]string
	StoreHubMembers(ctx context.Context, hubID string, members map[string]string) error
}

// Pages keeps the structured pages (Pith JSON, graph.json, arXiv's
// abstract page) one crawl fetched, across every worker, so that a paper
// listed by several hubs of the crawl is fetched once: building it for the
// second hub reads them here.
type Pages interface {
	// Page returns the page at url that crawlID fetched, if it did.
	Page(ctx context.Context, crawlID, url string) (*Response, bool)
	StorePage(ctx context.Context, crawlID, url string, resp *Response) error
}

// Budget counts the hubs one crawl discovers, across every worker.
type Budget interface {
	// TakeBudget counts one more page for crawlID and tells whether it is
	// within limit.
	TakeBudget(ctx context.Context, crawlID string, limit int) (bool, error)
}

// CrawlConfig says what the crawler reads.
type CrawlConfig struct {
	// FetchGraph reads each Pith paper's graph.json after its JSON record.
	FetchGraph bool
	// Conditional asks with the stored validators: a hub answering 304 is
	// not parsed again, a paper whose pages all answer 304 is not rebuilt.
	Conditional bool
	// FullText reads citing sentences from arXiv's full text.
	FullText bool
	// ArxivBase is where arXiv is, unless a job says otherwise.
	ArxivBase string
	// TextFallback matches plain [n] markers in a page without links.
	TextFallback bool
	// DiscoverDepth is how many links away from the configured hubs to
	// go; DiscoverHosts the hosts that may be followed; DiscoverMaxPages
	// the most hubs one crawl discovers.
	DiscoverDepth    int
	DiscoverHosts    []string
	DiscoverMaxPages int
}

// Commit is a step to take only once what a crawl step returned is
// stored, such as remembering a page's validator, which must not be kept
// if the record built from the page never got out.
type Commit func(ctx context.Context) error

// Crawler applies the crawling rules. It is safe for concurrent use when
// its Getter and stores are.
type Crawler struct {
	get        Getter
	check      Getter
	validators Validators
	history    History
	budget     Budget
	pages      Pages
	splitter   *Splitter
	cfg        CrawlConfig
	now        func() time.Time
	log        zerolog.Logger
}

// CrawlerOption configures a Crawler.
type CrawlerOption func(*Crawler)

// WithValidators stores and sends validators (conditional requests).
// Without it every page is fetched in full.
func WithValidators(v Validators) CrawlerOption { return func(c *Crawler) { c.validators = v } }

// WithHistory remembers what each crawl saw. Without it no paper is ever
// gone and every record is built as new.
func WithHistory(h History) CrawlerOption { return func(c *Crawler) { c.history = h } }

// WithBudget counts discovered hubs. Without it nothing is discovered.
func WithBudget(b Budget) CrawlerOption { return func(c *Crawler) { c.budget = b } }

// WithPages shares what a crawl fetched among the hubs of the crawl.
// Without it a paper listed by several hubs is fetched for each.
func WithPages(p Pages) CrawlerOption { return func(c *Crawler) { c.pages = p } }

// WithChecker is the Getter for the cheap "did this page change" checks
// before a rebuild, whose failure only means "rebuild" (say, a Fetcher
// without retries). The default is the crawl's Getter.
func WithChecker(g Getter) CrawlerOption { return func(c *Crawler) { c.check = g } }

// WithSplitter shares a sentence splitter; without it NewCrawler loads
// one when full text is read.
func WithSplitter(sp *Splitter) CrawlerOption { return func(c *Crawler) { c.splitter = sp } }

// WithClock sets the time records are stamped with.
func WithClock(now func() time.Time) CrawlerOption { return func(c *Crawler) { c.now = now } }

// WithLogger logs what the crawler notes on the way.
func WithLogger(log zerolog.Logger) CrawlerOption { return func(c *Crawler) { c.log = log } }

// NewCrawler builds a Crawler fetching through get.
func NewCrawler(get Getter, cfg CrawlConfig, opts ...CrawlerOption) (*Crawler, error) {
	c := &Crawler{get: get, cfg: cfg, now: time.Now, log: zerolog.Nop()}
	for _, o := range opts {
		o(c)
	}
	if c.check == nil {
		c.check = get
	}
	if c.cfg.FullText && c.splitter == nil {
		sp, err := NewSplitter()
		if err != nil {
			return nil, err
		}
		c.splitter = sp
	}
	return c, nil
}

// fetch gets u, conditionally when asked and validators are kept. The
// returned commit stores the response's validator; run it only once what
// was built from the page is stored.
func (c *Crawler) fetch(ctx context.Context, u, accept string, conditional bool) (*Response, Commit, error) {
	hdr := http.Header{}
	if conditional {
		hdr = c.conditionalHeaders(ctx, u)
	}
	hdr.Set("Accept", accept)
	resp, err := c.get.Get(ctx, u, hdr)
	if err != nil {
		return nil, nil, err
	}
	if resp.Status == http.StatusNotModified {
		return resp, func(context.Context) error { return nil }, nil
	}
	commit := func(ctx context.Context) error {
		v := validatorOf(resp.Header)
		if c.validators == nil || v == (Validator{}) {
			return nil
		}
		return c.validators.StoreValidator(ctx, u, v)
	}
	return resp, commit, nil
}

// conditionalHeaders are If-None-Match / If-Modified-Since for u, if u was
// fetched before.
func (c *Crawler) conditionalHeaders(ctx context.Context, u string) http.Header {
	if c.validators == nil {
		return http.Header{}
	}
	v, _ := c.validators.Validator(ctx, u)
	return v.headers()
}

// headers are the conditional request headers of v.
func (v Validator) headers() http.Header {
	h := http.Header{}
	if v.ETag != "" {
		h.Set("If-None-Match", v.ETag)
	}
	if v.LastModified != "" {
		h.Set("If-Modified-Since", v.LastModified)
	}
	return h
}
