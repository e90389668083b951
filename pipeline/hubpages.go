package pipeline

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	json "github.com/goccy/go-json"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/citecrawl/citecrawl/ingest"
)

// hubPages are the pages each record of one hub was last built from,
// with their validators: what the hub's next crawl hands to the tasks of
// the papers it listed before (ingest.PaperJob.Known), so that building
// one asks its pages whether they changed without a lookup per record.
//
// A record carries its pages in its Citecrawl-Pages header (pagesHeader),
// on its hub's raw subject or self-tagged one. A hub's crawl reads the
// headers stored there since its last crawl, merges them into what that
// crawl kept, and keeps the result, pruned to the papers the hub lists
// now, as one object of BucketHubs. The broker so holds one subject per
// hub, not one per record, and a crawl reads what changed since the last.
type hubPages struct {
	// Raw and Tagged are how far the raw and tagged streams were read.
	Raw    streamMark             `json:"raw"`
	Tagged streamMark             `json:"tagged"`
	Record map[string]recordPages `json:"records"`
	// fresh says nothing was kept for the hub (its first crawl by this
	// version): a record not read is then looked up as older versions
	// kept it (ingest.History.RecordPages).
	fresh bool
	// changed says whether this crawl read anything new.
	changed bool
}

// streamMark is the last sequence read on a stream, and when the stream
// was made: a stream made again starts its sequences again, and is read
// from its start.
type streamMark struct {
	Seq     uint64    `json:"seq"`
	Created time.Time `json:"created"`
}

// recordPages are one record's pages, as of the version stored at At
// (Unix nanoseconds): of two versions read, the later wins. A version
// stored without them (over the message limit, or a gone record) leaves
// Pages empty: the record is built again in full. Lookup says they are to
// be looked up as versions before 2026-12-02 kept them, in the bucket
// (ingest.History.RecordPages), until a version of this one is read: so
// it is for a paper the hub's first crawl by this version found no
// version of, or only an older version's raw record, which has no header.
type recordPages struct {
	At     int64        `json:"at"`
	Pages  []validators `json:"pages"`
	Lookup bool         `json:"lookup,omitempty"`
}

func hubPagesObject(hubID string) string { return "pages." + hubID }

// loadHubPages is what the last crawl of hub hubID kept, brought up to
// date with the records stored since. A hub crawled for the first time by
// this version reads every record of it still on the streams, including
// the self-tagged ones older versions stored on a subject each; so does one
// whose object cannot be read (within wait), which is written anew. When
// the streams cannot be read, it returns what was kept with the error.
func loadHubPages(ctx context.Context, bus *Bus, hubID string, wait time.Duration) (*hubPages, error) {
	hp := &hubPages{}
	octx, cancel := context.WithTimeout(ctx, wait)
	b, err := bus.cache.hubs.GetBytes(octx, hubPagesObject(hubID))
	cancel()
	switch {
	case errors.Is(err, jetstream.ErrObjectNotFound):
		hp.fresh = true
	case ctx.Err() != nil:
		return nil, ctx.Err()
	case err != nil || json.Unmarshal(b, hp) != nil:
		// Unreadable (or its chunks gone): the records' headers are still
		// on the streams; read them again from their start.
		bus.log.Warn().Err(err).Str("hub", hubID).Msg("the pages kept for the hub are unreadable; reading its records again")
		hp = &hubPages{fresh: true, changed: true}
	}
	if hp.Record == nil {
		hp.Record = map[string]recordPages{}
	}
	merge := func(m jetstream.Msg, meta *jetstream.MsgMetadata) error {
		h := m.Headers()
		id := recordOfMsgID(h.Get(jetstream.MsgIDHeader))
		at := meta.Timestamp.UnixNano()
		if kept, ok := hp.Record[id]; id == "" || ok && kept.At > at {
			return nil
		}
		pages := h.Get(HeaderPages)
		if pages == "" && hp.fresh {
			// Maybe stored by an older version, which kept the pages of a
			// raw record in the bucket.
			hp.Record[id] = recordPages{At: at, Lookup: true}
			return nil
		}
		hp.Record[id] = recordPages{At: at, Pages: readPages([]byte(pages))}
		return nil
	}
	for _, part := range []struct {
		stream, filter string
		mark           *streamMark
	}{{StreamRaw, RawSubject(hubID), &hp.Raw}, {StreamTagged, hubSelfTagged(hubID), &hp.Tagged}} {
		s, err := bus.JS.Stream(ctx, part.stream)
		if err != nil {
			return hp, fmt.Errorf("pages of hub %s on %s: %w", hubID, part.stream, err)
		}
		if created := s.CachedInfo().Created; !created.Equal(part.mark.Created) {
			*part.mark = streamMark{Created: created}
		}
		last, err := readHeaders(ctx, bus, s, part.filter, part.mark.Seq, merge)
		if err != nil {
			return hp, fmt.Errorf("pages of hub %s on %s: %w", hubID, part.stream, err)
		}
		hp.changed = hp.changed || last != part.mark.Seq
		part.mark.Seq = last
	}
	return hp, nil
}

// recordOfMsgID is the record id of a record's message id: rawRecord's
// and taggedOut's begin with it, before a colon.
func recordOfMsgID(msgID string) string {
	id, _, _ := strings.Cut(msgID, ":")
	return id
}

// known are the pages of record id, a paper the hub listed before, for
// its job: empty when none are known, so that it is built again in full,
// or nil when they are to be looked up as older versions kept them (see
// recordPages.Lookup and ingest.PaperJob.Known).
func (hp *hubPages) known(id string) []ingest.SourcePage {
	kept, ok := hp.Record[id]
	if !ok && hp.fresh {
		kept = recordPages{Lookup: true}
		hp.Record[id], hp.changed = kept, true
	}
	if kept.Lookup {
		return nil
	}
	return sourcePages(kept.Pages)
}

// keep stores hp for the hub's next crawl, with only the records of the
// papers the hub lists now (ids); nothing is written when nothing changed.
func (hp *hubPages) keep(ctx context.Context, bus *Bus, hubID string, ids []string) error {
	listed := make(map[string]bool, len(ids))
	for _, id := range ids {
		listed[id] = true
	}
	pruned := 0
	for id := range hp.Record {
		if !listed[id] {
			delete(hp.Record, id)
			pruned++
		}
	}
	if !hp.changed && pruned == 0 {
		return nil
	}
	if err := bus.cache.putObject(ctx, hubPagesObject(hubID), hp); err != nil {
		return fmt.Errorf("keeping the pages of hub %s: %w", hubID, err)
	}
	return nil
}
