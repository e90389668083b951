package pipeline

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

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
	o, err := paperTask("run1", job, time.Time{})
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
	task, err = DecodeTask([]byte(`{"version":2,"kind":"papers","url":"x"}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := task.paperJobs(); !retry.IsPermanent(err) {
		t.Errorf("papers task without its papers: %v", err)
	}
	var hub Task
	o, _ := HubTask("r", "https://pith.science/citations/11111111-2222-3333-4444-555555555555", 0, "")
	if err := json.Unmarshal(o.Data, &hub); err != nil || hub.Version != TaskVersion || hub.Kind != TaskHub {
		t.Errorf("hub task %s", o.Data)
	}
}

// A hub's papers go out as papers tasks of papersPerTask papers, in the
// hub's order, each paper with its own New and Known (none said, none
// known, or some); the same papers give the same message ids; a task over
// the broker's limit is split until it fits. A paper task of one paper
// keeps its Known too.
func TestPapersTasks(t *testing.T) {
	hub := record.Hub{URL: "https://pith.science/citations/11111111-2222-3333-4444-555555555555", ID: "11111111-2222-3333-4444-555555555555", Title: "W"}
	var jobs []ingest.PaperJob
	for i := range 2*papersPerTask + 3 {
		jobs = append(jobs, ingest.PaperJob{Hub: hub, HubMissing: []string{"hub.abstract"}, HubSource: hub.URL, Depth: 1, CrawlID: "run1",
			ArxivBase: "http://127.0.0.1:1", Shared: true, New: i%3 == 0,
			Paper: ingest.CitingPaper{Title: fmt.Sprint("Paper ", i), Summary: strings.Repeat("s", 400), PithID: fmt.Sprintf("P%025d", i), URL: fmt.Sprintf("/pith/P%025d", i)}})
		switch i % 3 {
		case 1:
			jobs[i].Known = []ingest.SourcePage{{URL: fmt.Sprint("https://pith.science/api/", i), Validator: ingest.Validator{ETag: `"e"`, LastModified: "Mon, 30 Nov 2026 10:00:00 GMT"}}}
		case 2:
			jobs[i].Known = []ingest.SourcePage{} // none known: built in full, not looked up
		}
	}
	for _, j := range jobs[1:3] {
		o, err := paperTask("run1", j, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		task, err := DecodeTask(o.Data)
		if err != nil {
			t.Fatal(err)
		}
		if back, err := task.paperJob(); err != nil || !reflect.DeepEqual(back.Known, j.Known) {
			t.Fatalf("paper task's known pages %#v (%v), want %#v", back.Known, err, j.Known)
		}
	}
	decoded := func(outs []Out) []ingest.PaperJob {
		t.Helper()
		var back []ingest.PaperJob
		for _, o := range outs {
			task, err := DecodeTask(o.Data)
			if err != nil {
				t.Fatal(err)
			}
			got, err := task.paperJobs()
			if err != nil || task.Kind != TaskPapers || o.Subject != PaperTaskSubject(hub.ID) {
				t.Fatalf("task %s on %s: %v", o.Data, o.Subject, err)
			}
			back = append(back, got...)
		}
		return back
	}
	outs, err := paperTasks("run1", jobs, papersPerTask, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if len(outs) != 3 {
		t.Fatalf("%d tasks for %d papers, want 3", len(outs), len(jobs))
	}
	if back := decoded(outs); !reflect.DeepEqual(back, jobs) {
		t.Fatalf("round trip\n got %+v\nwant %+v", back, jobs)
	}
	again, _ := paperTasks("run1", jobs, papersPerTask, 1<<20)
	for i := range outs {
		if outs[i].MsgID != again[i].MsgID || (i > 0 && outs[i].MsgID == outs[i-1].MsgID) {
			t.Fatalf("message ids %s and %s: want the same for the same papers, different for others", outs[i].MsgID, again[i].MsgID)
		}
	}

	const limit = 4 << 10 // two or three papers a task
	small, err := paperTasks("run1", jobs, papersPerTask, limit)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range small {
		if len(o.Data) > limit-taskHeadroom {
			t.Fatalf("a task of %d bytes, over the limit of %d less %d", len(o.Data), limit, taskHeadroom)
		}
	}
	if back := decoded(small); len(small) <= len(outs) || !reflect.DeepEqual(back, jobs) {
		t.Fatalf("%d tasks under a %d-byte limit, papers %+v", len(small), limit, back)
	}
}
