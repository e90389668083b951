package pipeline

import (
	"context"
	"errors"
	"fmt"
	"strings"

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
	// Raw and Tagged are the last sequences read on the raw and tagged
	// streams.
	Raw    uint64                 `json:"raw"`
	Tagged uint64                 `json:"tagged"`
	Record map[string]recordPages `json:"records"`
	// changed says whether this crawl read anything new.
	changed bool
}

// recordPages are one record's pages, as of the version stored at At
// (Unix nanoseconds): of two versions read, the later wins.
type recordPages struct {
	At    int64        `json:"at"`
	Pages []validators `json:"pages"`
}

func hubPagesObject(hubID string) string { return "pages." + hubID }

// loadHubPages is what the last crawl of hub hubID kept, brought up to
// date with the records stored since. A hub crawled for the first time by
// this version reads every record of it still on the streams, including
// the self-tagged ones older versions stored on a subject each.
func loadHubPages(ctx context.Context, bus *Bus, hubID string) (*hubPages, error) {
	hp := &hubPages{}
	b, err := bus.cache.hubs.GetBytes(ctx, hubPagesObject(hubID))
	switch {
	case errors.Is(err, jetstream.ErrObjectNotFound):
	case err != nil:
		return nil, fmt.Errorf("pages of hub %s: %w", hubID, err)
	case json.Unmarshal(b, hp) != nil:
		// Unreadable: read the streams again from their start.
		bus.log.Warn().Str("hub", hubID).Msg("the pages kept for the hub are unreadable; reading its records again")
		hp = &hubPages{}
	}
	if hp.Record == nil {
		hp.Record = map[string]recordPages{}
	}
	merge := func(m jetstream.Msg) error {
		h := m.Headers()
		pages := h.Get(HeaderPages)
		if pages == "" {
			return nil // a gone record, or one whose pages did not fit
		}
		meta, err := m.Metadata()
		if err != nil {
			return err
		}
		id := recordOfMsgID(h.Get(jetstream.MsgIDHeader))
		at := meta.Timestamp.UnixNano()
		if kept, ok := hp.Record[id]; id == "" || ok && kept.At > at {
			return nil
		}
		hp.Record[id] = recordPages{At: at, Pages: pagesOf(decodePages([]byte(pages)))}
		return nil
	}
	for _, part := range []struct {
		stream, filter string
		after          *uint64
	}{{StreamRaw, RawSubject(hubID), &hp.Raw}, {StreamTagged, hubSelfTagged(hubID), &hp.Tagged}} {
		last, err := readHeaders(ctx, bus, part.stream, part.filter, *part.after, merge)
		if err != nil {
			return nil, fmt.Errorf("pages of hub %s on %s: %w", hubID, part.stream, err)
		}
		hp.changed = hp.changed || last != *part.after
		*part.after = last
	}
	return hp, nil
}

// recordOfMsgID is the record id of a record's message id: rawRecord's
// and taggedOut's begin with it, before a colon.
func recordOfMsgID(msgID string) string {
	id, _, _ := strings.Cut(msgID, ":")
	return id
}

// known are the pages of record id, nil when none were read.
func (hp *hubPages) known(id string) []ingest.SourcePage {
	kept, ok := hp.Record[id]
	if !ok {
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
