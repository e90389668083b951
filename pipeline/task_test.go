package pipeline

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/citecrawl/citecrawl/ingest"
	"github.com/citecrawl/citecrawl/record"
	"github.com/citecrawl/citecrawl/retry"
)

func TestTaskRoundTrip(t *testing.T) {
	novelty, refs := 0.7, 42
	job := ingest.PaperJob{
		Hub:        record.Hub{URL: "https://pith.science/citations/667ba460-8f85-44de-abed-e988dbbf316b", ID: "667ba460-8f85-44de-abed-e988dbbf316b", Title: "Roadmap", CitedWorkIDs: []string{"arxiv:2402.05070"}},
		HubMissing: []string{"hub.abstract"}, HubSource: "https://pith.science/citations/667ba460-8f85-44de-abed-e988dbbf316b",
		Paper: ingest.CitingPaper{Title: "T", Summary: "S", Category: "cs.CL", Published: "2026-01-02", Verdict: "v", Novelty: &novelty, Refs: &refs,
			PithID: "AAAAAAAAAAAAAAAAAAAAAAAAAA", ArxivID: "2601.00001", URL: "/pith/AAAAAAAAAAAAAAAAAAAAAAAAAA", Meta: true, Explorer: true, Represents: true},
		Depth: 1, CrawlID: "run1", ArxivBase: "http://127.0.0.1:1",
	}
	o, err := paperTask("run1", job)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(o.Data), `"version":2`) || !strings.Contains(string(o.Data), `"pith_id":"AAAAAAAAAAAAAAAAAAAAAAAAAA"`) {
		t.Fatalf("wire form %s", o.Data)
	}
	task, err := DecodeTask(o.Data)
	if err != nil {
		t.Fatal(err)
	}
	back, err := task.paperJob()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, job) {
		t.Fatalf("round trip\n got %+v\nwant %+v", back, job)
	}
}

// A task queued by a worker of version 1 (the parser's CitingPaper
// embedded with Go's field names, no version) is still done.
func TestTaskVersion1StillDecodes(t *testing.T) {
	v1 := `{"kind":"paper","url":"https://arxiv.org/abs/2601.00002","run_id":"r","depth":1,"arxiv_base":"https://arxiv.org",
"hub":{"url":"https://pith.science/citations/11111111-2222-3333-4444-555555555555","id":"11111111-2222-3333-4444-555555555555","title":"W","cited_work_ids":[]},
"hub_missing":["hub.abstract"],"hub_source":"https://pith.science/citations/11111111-2222-3333-4444-555555555555",
"paper":{"Title":"Paper B","Summary":"B summary.","Category":"cs.LG","Published":"2026-01-07","Verdict":"","Novelty":0.5,"Refs":12,
"PithID":"","ArxivID":"2601.00002","URL":"https://arxiv.org/abs/2601.00002","Meta":true,"Explorer":true,"Represents":false}}`
	task, err := DecodeTask([]byte(v1))
	if err != nil {
		t.Fatal(err)
	}
	j, err := task.paperJob()
	if err != nil {
		t.Fatal(err)
	}
	p := j.Paper
	if task.Version != TaskVersion || p.Title != "Paper B" || p.ArxivID != "2601.00002" || p.Category != "cs.LG" || *p.Novelty != 0.5 || *p.Refs != 12 ||
		!p.Meta || !p.Explorer || j.Depth != 1 || j.CrawlID != "r" || j.Hub.ID != "11111111-2222-3333-4444-555555555555" || j.HubMissing[0] != "hub.abstract" {
		t.Fatalf("v1 task read as %+v", j)
	}
}

func TestTaskBadInput(t *testing.T) {
	for _, tc := range []struct{ data, want string }{
		{`{"version":3,"kind":"hub","url":"x"}`, "task version 3 is not one this worker reads"},
		{`not json`, "not valid JSON"},
		{`{"version":2,"kind":"paper","url":"x","paper":"a string"}`, "task version 2"},
	} {
		_, err := DecodeTask([]byte(tc.data))
		if !retry.IsPermanent(err) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want a permanent error with %q", tc.data, err, tc.want)
		}
	}
	task, err := DecodeTask([]byte(`{"version":2,"kind":"paper","url":"x"}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := task.paperJob(); !retry.IsPermanent(err) {
		t.Errorf("paper task without its paper: %v", err)
	}
	var hub Task
	o, _ := HubTask("r", "https://pith.science/citations/11111111-2222-3333-4444-555555555555", 0, "")
	if err := json.Unmarshal(o.Data, &hub); err != nil || hub.Version != TaskVersion || hub.Kind != TaskHub {
		t.Errorf("hub task %s", o.Data)
	}
}
