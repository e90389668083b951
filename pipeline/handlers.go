package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

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
	Kind       string              `json:"kind"`
	URL        string              `json:"url"`
	RunID      string              `json:"run_id"`
	Hub        *record.Hub         `json:"hub,omitempty"`
	HubMissing []string            `json:"hub_missing,omitempty"`
	HubSource  string              `json:"hub_source,omitempty"`
	Paper      *ingest.CitingPaper `json:"paper,omitempty"`
}

// HubTask is the task that starts the crawl of one hub.
func HubTask(runID, hubURL string) (Out, error) {
	u := ingest.NormaliseHubURL(hubURL)
	if _, err := ingest.HubID(u); err != nil {
		return Out{}, err
	}
	b, err := json.Marshal(Task{Kind: TaskHub, URL: hubURL, RunID: runID})
	return Out{Subject: SubjectHubTask, MsgID: runID + ":" + u, Data: b}, err
}

// fetchHandler fetches hubs and papers and turns them into raw records.
type fetchHandler struct {
	fetcher    *ingest.Fetcher
	fetchGraph bool
	now        func() time.Time
	stats      *Stats
	log        zerolog.Logger
}

func (h *fetchHandler) handle(ctx context.Context, m jetstream.Msg) ([]Out, error) {
	var t Task
	if err := json.Unmarshal(m.Data(), &t); err != nil {
		return nil, ingest.Permanent(fmt.Errorf("task on %s is not valid JSON: %w", m.Subject(), err))
	}
	switch t.Kind {
	case TaskHub:
		return h.hub(ctx, t)
	case TaskPaper:
		return h.paper(ctx, t)
	default:
		return nil, ingest.Permanent(fmt.Errorf("task on %s has unknown kind %q", m.Subject(), t.Kind))
	}
}

// hub fetches and parses a hub page and queues one paper task per citing
// paper.
func (h *fetchHandler) hub(ctx context.Context, t Task) ([]Out, error) {
	resp, err := h.fetcher.Get(ctx, t.URL, http.Header{"Accept": {"text/html"}})
	if err != nil {
		return nil, err
	}
	h.stats.PagesFetched.Add(1)
	page, err := ingest.ParseHub(t.URL, resp.Body, resp.Header.Get("Content-Type"))
	if err != nil {
		return nil, ingest.Permanent(err)
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
	outs := make([]Out, 0, len(page.Papers))
	for i := range page.Papers {
		p := page.Papers[i]
		b, err := json.Marshal(Task{Kind: TaskPaper, URL: p.URL, RunID: t.RunID, Hub: &hub, HubMissing: missing, HubSource: resp.URL, Paper: &p})
		if err != nil {
			return nil, err
		}
		outs = append(outs, Out{Subject: SubjectPaperTask, MsgID: t.RunID + ":" + record.ID(hub.ID, p.Key()), Data: b})
	}
	h.log.Debug().Str("hub", t.URL).Int("papers", len(outs)).Msg("hub parsed")
	return outs, nil
}

// paper builds the raw record of one citing paper, with its graph snapshot
// when the hub linked a Pith id.
func (h *fetchHandler) paper(ctx context.Context, t Task) ([]Out, error) {
	if t.Hub == nil || t.Paper == nil {
		return nil, ingest.Permanent(fmt.Errorf("paper task %q lacks its hub or paper", t.URL))
	}
	sources := []string{t.HubSource}
	var graph *ingest.Graph
	var missing []string
	if h.fetchGraph && t.Paper.PithID != "" {
		u := ingest.GraphURL(t.Hub.URL, t.Paper.PithID)
		resp, err := h.fetcher.Get(ctx, u, http.Header{"Accept": {"application/json"}})
		switch {
		case err == nil:
			h.stats.PagesFetched.Add(1)
			if graph, err = ingest.ParseGraph(u, resp.Body); err != nil {
				h.log.Warn().Err(err).Msg("graph snapshot unusable; record keeps the hub's data")
				missing = append(missing, "graph")
			} else {
				sources = append(sources, u)
			}
		case ingest.IsPermanent(err):
			// The record is still worth having from the hub's data alone.
			h.log.Warn().Err(err).Msg("no graph snapshot")
			missing = append(missing, "graph")
		default:
			return nil, err
		}
	}
	r := ingest.NewRecord(*t.Hub, *t.Paper, graph, sources, h.now())
	r.Missing = append(append(append([]string{}, t.HubMissing...), missing...), r.Missing...)
	b, err := json.Marshal(&r)
	if err != nil {
		return nil, err
	}
	h.stats.RecordsPublished.Add(1)
	return []Out{{Subject: RawSubject(r.Hub.ID), MsgID: r.ID + ":" + r.Fingerprint(), Data: b}}, nil
}

// classifyHandler tags raw records.
type classifyHandler struct {
	c     *classify.Classifier
	stats *Stats
}

func (h *classifyHandler) handle(_ context.Context, m jetstream.Msg) ([]Out, error) {
	var r record.Record
	if err := json.Unmarshal(m.Data(), &r); err != nil {
		return nil, ingest.Permanent(fmt.Errorf("raw record on %s is not valid JSON: %w", m.Subject(), err))
	}
	if r.ID == "" || r.Schema != record.Schema {
		return nil, ingest.Permanent(fmt.Errorf("raw record on %s: no id or schema %q is not %q", m.Subject(), r.Schema, record.Schema))
	}
	h.c.Tag(&r)
	b, err := json.Marshal(&r)
	if err != nil {
		return nil, err
	}
	h.stats.RecordsTagged.Add(1)
	return []Out{{Subject: TaggedSubject(r.Hub.ID), MsgID: r.ID + ":" + r.Fingerprint(), Data: b}}, nil
}
