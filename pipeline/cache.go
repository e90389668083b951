package pipeline

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"time"

	// The pages of every record are encoded once a page, and a hub's
	// members once a crawl: goccy/go-json, as tasks are, the same JSON.
	json "github.com/goccy/go-json"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/citecrawl/citecrawl/ingest"
)

// BucketHTTP is the key-value bucket of conditional-request state: the
// ETag and Last-Modified of every hub page fetched, and, from versions
// before 2026-12-02, the pages each record was built from (RecordPages).
const BucketHTTP = "citecrawl_http"

// BucketHubs is the object store of hub memberships: the papers each hub
// listed at its last crawl, for "gone" detection, and the pages each of
// their records was last built from (hubPages). A hub of a hundred
// thousand papers lists megabytes, more than one message may hold; the
// object store keeps it in chunks.
const BucketHubs = "citecrawl_hubs"

// BucketPages keeps the pages each run of several hubs fetched for its
// papers, so that a paper listed by two hubs of a run is fetched once. Its
// entries expire after pagesTTL (they serve only the run that wrote them),
// and it holds at most pagesMaxBytes: when full, a page is not kept, only
// fetched again if another hub needs it.
const (
	BucketPages   = "citecrawl_pages"
	pagesTTL      = 24 * time.Hour
	pagesMaxBytes = 256 << 20
)

// httpCache keeps what the crawler remembers in JetStream, so every
// worker on the cluster shares it: it is the crawler's ingest.Validators,
// ingest.History, ingest.Budget and ingest.Pages.
type httpCache struct {
	kv    jetstream.KeyValue
	pages jetstream.KeyValue
	hubs  jetstream.ObjectStore
	chunk uint32 // object chunk size: well under the broker's message limit
}

var (
	_ ingest.Validators = (*httpCache)(nil)
	_ ingest.History    = (*httpCache)(nil)
	_ ingest.Budget     = (*httpCache)(nil)
	_ ingest.Pages      = (*httpCache)(nil)
)

type validators struct {
	URL          string `json:"url"`
	ETag         string `json:"etag,omitempty"`
	LastModified string `json:"last_modified,omitempty"`
}

func openHTTPCache(ctx context.Context, js jetstream.JetStream, replicas int, maxPayload int64) (*httpCache, error) {
	// A cluster that has just started may still be placing its peers, as
	// for the streams (ensureStreams).
	var kv, pages jetstream.KeyValue
	var hubs jetstream.ObjectStore
	err := rideOut(ctx, func(ctx context.Context) (err error) {
		kv, err = js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket: BucketHTTP, Description: "citecrawl conditional requests: validators per hub URL (pages per record from versions before 2026-12-02)",
			Storage: jetstream.FileStorage, Replicas: max(replicas, 1),
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("key-value bucket %s: %w", BucketHTTP, err)
	}
	err = rideOut(ctx, func(ctx context.Context) (err error) {
		pages, err = js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket: BucketPages, Description: "citecrawl pages fetched by each run, shared by the hubs of the run",
			Storage: jetstream.FileStorage, Replicas: max(replicas, 1), TTL: pagesTTL, MaxBytes: pagesMaxBytes,
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("key-value bucket %s: %w", BucketPages, err)
	}
	err = rideOut(ctx, func(ctx context.Context) (err error) {
		hubs, err = js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{
			Bucket: BucketHubs, Description: "citecrawl hub memberships: the papers each hub listed at its last crawl, and the pages of their records",
			Storage: jetstream.FileStorage, Replicas: max(replicas, 1),
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("object store %s: %w", BucketHubs, err)
	}
	chunk := uint32(128 << 10)
	if maxPayload > 0 {
		chunk = uint32(min(int64(chunk), maxPayload/2))
	}
	return &httpCache{kv: kv, pages: pages, hubs: hubs, chunk: chunk}, nil
}

// crawledPage is a page as BucketPages keeps it.
type crawledPage struct {
	URL         string `json:"url"` // as fetched, after redirects
	Asked       string `json:"asked"`
	ContentType string `json:"content_type,omitempty"`
	// The validator, which the records built from the page keep.
	ETag         string `json:"etag,omitempty"`
	LastModified string `json:"last_modified,omitempty"`
	Body         []byte `json:"body"`
}

func pageKey(runID, u string) string {
	sum := sha256.Sum256([]byte(runID + " " + u))
	return "page." + hex.EncodeToString(sum[:16])
}

// Page returns the page at u that run runID fetched, if it did
// (ingest.Pages).
func (c *httpCache) Page(ctx context.Context, runID, u string) (*ingest.Response, bool) {
	e, err := c.pages.Get(ctx, pageKey(runID, u))
	if err != nil {
		return nil, false
	}
	var p crawledPage
	if json.Unmarshal(e.Value(), &p) != nil || p.Asked != u {
		return nil, false
	}
	h := http.Header{}
	for k, v := range map[string]string{"Content-Type": p.ContentType, "ETag": p.ETag, "Last-Modified": p.LastModified} {
		if v != "" {
			h.Set(k, v)
		}
	}
	return &ingest.Response{URL: p.URL, Status: http.StatusOK, Header: h, Body: p.Body}, true
}

// StorePage keeps a page run runID fetched in full.
func (c *httpCache) StorePage(ctx context.Context, runID, u string, r *ingest.Response) error {
	b, err := json.Marshal(crawledPage{URL: r.URL, Asked: u, ContentType: r.Header.Get("Content-Type"),
		ETag: r.Header.Get("ETag"), LastModified: r.Header.Get("Last-Modified"), Body: r.Body})
	if err != nil {
		return err
	}
	_, err = c.pages.Put(ctx, pageKey(runID, u), b)
	return err
}

// recordKey is the key of the pages record recordID was built from.
func recordKey(recordID string) string { return "record." + recordID }

func urlKey(u string) string {
	sum := sha256.Sum256([]byte(u))
	return "url." + hex.EncodeToString(sum[:16])
}

// Validator returns the validator stored for u (ingest.Validators).
func (c *httpCache) Validator(ctx context.Context, u string) (ingest.Validator, bool) {
	var v validators
	if !c.getJSON(ctx, urlKey(u), &v) || v.URL != u {
		return ingest.Validator{}, false
	}
	return ingest.Validator{ETag: v.ETag, LastModified: v.LastModified}, true
}

// StoreValidator stores the validator of u.
func (c *httpCache) StoreValidator(ctx context.Context, u string, v ingest.Validator) error {
	return c.putJSON(ctx, urlKey(u), validators{URL: u, ETag: v.ETag, LastModified: v.LastModified})
}

// RecordPages are the pages a record was built from, with their
// validators (ingest.History), as versions before 2026-12-02 kept them
// for a record the fetch stage did not tag: an entry per record in the
// bucket. This version keeps them with the record itself (pagesHeader),
// and a hub's crawl hands them to its papers' tasks (hubPages), so this is
// asked only of a paper the hub listed before whose pages the hub's crawl
// did not find. An entry of a still older version lists URLs only; their
// validators are then those kept per URL.
func (c *httpCache) RecordPages(ctx context.Context, recordID string) []ingest.SourcePage {
	e, err := c.kv.Get(ctx, recordKey(recordID))
	if err != nil {
		return nil
	}
	pages := readPages(e.Value())
	if pages == nil {
		return nil
	}
	return sourcePages(pages)
}

// readPages reads the pages a record was built from: as pagesHeader
// writes them, or as URLs alone (an older version's). Nil if unreadable.
func readPages(value []byte) []validators {
	var pages []validators
	if json.Unmarshal(value, &pages) != nil {
		var urls []string
		if json.Unmarshal(value, &urls) != nil {
			return nil
		}
		pages = make([]validators, len(urls))
		for i, u := range urls {
			pages[i] = validators{URL: u}
		}
	}
	return pages
}

// sourcePages and pagesOf translate between the crawler's pages and how
// they are stored and carried (validators).
func sourcePages(pages []validators) []ingest.SourcePage {
	out := make([]ingest.SourcePage, len(pages))
	for i, p := range pages {
		out[i] = ingest.SourcePage{URL: p.URL, Validator: ingest.Validator{ETag: p.ETag, LastModified: p.LastModified}}
	}
	return out
}

func pagesOf(pages []ingest.SourcePage) []validators {
	out := make([]validators, len(pages))
	for i, p := range pages {
		out[i] = validators{URL: p.URL, ETag: p.ETag, LastModified: p.LastModified}
	}
	return out
}

// pagesHeader is the Citecrawl-Pages header of a record built from pages:
// what its hub's next crawl reads back to ask each page whether it
// changed (see hubPages).
func pagesHeader(recordID string, pages []ingest.SourcePage) (string, error) {
	b, err := json.Marshal(pagesOf(pages))
	if err != nil {
		return "", fmt.Errorf("pages of record %s: %w", recordID, err)
	}
	return string(b), nil
}

// HubMembers are the citing papers a hub listed at its last crawl: record
// id to paper title. Memberships stored by earlier versions, in the
// key-value bucket, are still read.
func (c *httpCache) HubMembers(ctx context.Context, hubID string) map[string]string {
	m := map[string]string{}
	b, err := c.hubs.GetBytes(ctx, "hub."+hubID)
	if err == nil && json.Unmarshal(b, &m) == nil {
		return m
	}
	c.getJSON(ctx, "hub."+hubID, &m)
	return m
}

func (c *httpCache) StoreHubMembers(ctx context.Context, hubID string, m map[string]string) error {
	return c.putObject(ctx, "hub."+hubID, m)
}

// putObject keeps v, as JSON, as the object name of BucketHubs.
func (c *httpCache) putObject(ctx context.Context, name string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return rideOut(ctx, func(ctx context.Context) error {
		meta := jetstream.ObjectMeta{Name: name, Opts: &jetstream.ObjectMetaOptions{ChunkSize: c.chunk}}
		_, err := c.hubs.Put(ctx, meta, bytes.NewReader(b))
		return err
	})
}

func (c *httpCache) getJSON(ctx context.Context, key string, v any) bool {
	e, err := c.kv.Get(ctx, key)
	if err != nil {
		return false
	}
	return json.Unmarshal(e.Value(), v) == nil
}

func (c *httpCache) putJSON(ctx context.Context, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	// A put is the same whatever the number of tries, so one lost in a
	// failover is made again rather than dropped.
	return rideOut(ctx, func(ctx context.Context) error {
		_, err := c.kv.Put(ctx, key, b)
		return err
	})
}

// TakeBudget counts one more discovered page for a run and reports whether
// it is within max (ingest.Budget). The count lives in the bucket so that
// workers on several machines share one budget; compare-and-set keeps it
// exact.
func (c *httpCache) TakeBudget(ctx context.Context, runID string, max int) (bool, error) {
	key := "budget." + runID
	for range 100 {
		var n int
		e, err := c.kv.Get(ctx, key)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
			if n >= max {
				return false, nil
			}
			b, _ := json.Marshal(1)
			if _, err := c.kv.Create(ctx, key, b); err == nil {
				return true, nil
			}
			continue
		case err != nil:
			return false, err
		}
		_ = json.Unmarshal(e.Value(), &n)
		if n >= max {
			return false, nil
		}
		b, _ := json.Marshal(n + 1)
		if _, err := c.kv.Update(ctx, key, b, e.Revision()); err == nil {
			return true, nil
		}
	}
	return false, errors.New("page budget: too much contention")
}
