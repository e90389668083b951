package pipeline

import (
	"context"

	"github.com/citecrawl/citecrawl/ingest"
)

// KnownRecords is how many citing papers the hubs listed when last
// crawled (kept in the citecrawl_http bucket to find gone papers): what a
// run that writes nothing new has already written.
func KnownRecords(ctx context.Context, bus *Bus, hubs []string) int {
	n := 0
	for _, h := range hubs {
		id, err := ingest.HubID(h)
		if err != nil {
			continue
		}
		n += len(bus.cache.HubMembers(ctx, id))
	}
	return n
}
