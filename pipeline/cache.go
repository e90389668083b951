package pipeline

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/citecrawl/citecrawl/ingest"
)

// BucketHTTP is the key-value bucket of conditional-request state: the
// ETag and Last-Modified of every page fetched, and the pages each record
// was built from.
const BucketHTTP = "citecrawl_http"

// BucketHubs is the object store of hub memberships: the papers each hub
// listed at its last crawl, for "gone" detection. A hub of a hundred
// thousand papers lists megabytes, more than one message may hold; the
// object store keeps it in chunks.
const BucketHubs = "citecrawl_hubs"

// httpCache keeps what the crawler remembers in JetStream, so every
// worker on the cluster shares it: it is the crawler's ingest.Validators,
// ingest.History and ingest.Budget.
type httpCache struct {
	kv    jetstream.KeyValue
	hubs  jetstream.ObjectStore
	chunk uint32 // object chunk size: well under the broker's message limit
}

var (
	_ ingest.Validators = (*httpCache)(nil)
	_ ingest.History    = (*httpCache)(nil)
	_ ingest.Budget     = (*httpCache)(nil)
)

type validators struct {
	URL          string `json:"url"`
	ETag         string `json:"etag,omitempty"`
	LastModified string `json:"last_modified,omitempty"`
}

func openHTTPCache(ctx context.Context, js jetstream.JetStream, replicas int, maxPayload int64) (*httpCache, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: BucketHTTP, Description: "citecrawl conditional requests: validators per URL, pages per record",
		Storage: jetstream.FileStorage, Replicas: max(replicas, 1),
	})
	if err != nil {
		return nil, fmt.Errorf("key-value bucket %s: %w", BucketHTTP, err)
	}
	hubs, err := js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{
		Bucket: BucketHubs, Description: "citecrawl hub memberships: the papers each hub listed at its last crawl",
		Storage: jetstream.FileStorage, Replicas: max(replicas, 1),
	})
	if err != nil {
		return nil, fmt.Errorf("object store %s: %w", BucketHubs, err)
	}
	chunk := uint32(128 << 10)
	if maxPayload > 0 {
		chunk = uint32(min(int64(chunk), maxPayload/2))
	}
	return &httpCache{kv: kv, hubs: hubs, chunk: chunk}, nil
}

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

// RecordPages are the URLs a record was built from (ingest.History).
func (c *httpCache) RecordPages(ctx context.Context, recordID string) []string {
	var urls []string
	c.getJSON(ctx, "record."+recordID, &urls)
	return urls
}

func (c *httpCache) StoreRecordPages(ctx context.Context, recordID string, urls []string) error {
	return c.putJSON(ctx, "record."+recordID, urls)
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
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return rideOut(ctx, func(ctx context.Context) error {
		meta := jetstream.ObjectMeta{Name: "hub." + hubID, Opts: &jetstream.ObjectMetaOptions{ChunkSize: c.chunk}}
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
