package pipeline

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"time"

	// A task is decoded once a page: encoding/json cost a tenth of the
	// fetch stage. The same bytes either way.
	gojson "github.com/goccy/go-json"

	"github.com/citecrawl/citecrawl/ingest"
	"github.com/citecrawl/citecrawl/record"
	"github.com/citecrawl/citecrawl/retry"
)

// Task kinds. A papers task carries several citing papers of one hub
// (fetchHandler.taskSize), so that storing, delivering and acking a task is shared by
// them; a paper task carries one (a paper of a papers task that failed is
// queued again so, and older workers queued every paper so).
const (
	TaskHub    = "hub"
	TaskPaper  = "paper"
	TaskPapers = "papers"
)

// papersPerTask is how many citing papers a hub's crawl puts in one papers
// task: a task stored, delivered and acked is about a fifth of what a page
// costs the pipeline, so 8 make it small, yet a worker holding a few
// tasks holds few papers, and a task redone after a crash refetches few.
//
// papersPerOwnedTask is the most for a hub whose papers are fetched
// without a delay (see fetchHandler.taskSize): a host the user owns, such
// as their own mirror. Its 64 pages take a worker milliseconds on such a
// host, so it holds them back from the sink and refetches them after a
// crash about as briefly as 8 polite ones; and it publishes their 64
// records before it waits for their acknowledgements rather than 8, which
// is the most of the saving: a tenth to a fifth of a run's CPU on the
// generated hub of 5,000 papers (see README, Speed).
const (
	papersPerTask      = 8
	papersPerOwnedTask = 64
)

// TaskVersion is the layout of the tasks this build writes. Version 1
// (no version field) embedded the parser's CitingPaper with Go's field
// names; it is still read, so tasks queued by an older worker are done.
const TaskVersion = 2

// Task is a fetch task on the work queue: its own wire type, so that
// renaming a parser field never breaks a task already queued.
type Task struct {
	Version int    `json:"version"`
	Kind    string `json:"kind"`
	URL     string `json:"url"`
	RunID   string `json:"run_id"`
	Depth   int    `json:"depth,omitempty"` // links followed from a configured hub
	// ArxivBase is where arXiv is for this crawl: the run that starts a
	// crawl decides it (its --offline snapshot, say), not each worker.
	ArxivBase  string           `json:"arxiv_base,omitempty"`
	Hub        *record.Hub      `json:"hub,omitempty"`
	HubMissing []string         `json:"hub_missing,omitempty"`
	HubSource  string           `json:"hub_source,omitempty"`
	Paper      *TaskCitingPaper `json:"paper,omitempty"`
	// Papers are a papers task's citing papers; the hub fields above are
	// theirs, and their New is each paper's own.
	Papers []TaskPaperItem `json:"papers,omitempty"`

	// Shared says the run has more than one hub (see ingest.HubJob); a
	// task without it (an older worker's) simply shares nothing.
	Shared bool `json:"shared,omitempty"`
	// New says the hub did not list the paper at its last crawl (see
	// ingest.PaperJob); a task without it looks its record up.
	New bool `json:"new,omitempty"`
	// Known are the pages the paper's record was last built from (see
	// ingest.PaperJob), an empty list when there are none to ask; a task
	// without them looks them up.
	Known *[]validators `json:"known,omitempty"`
	// NotBefore (Unix milliseconds) is when a paper task queued again
	// after failing in a papers task may be tried: its backoff, or the
	// Retry-After its server asked for (see fetchHandler.alone).
	NotBefore int64 `json:"not_before,omitempty"`
}

// TaskPaperItem is one citing paper of a papers task.
type TaskPaperItem struct {
	Paper TaskCitingPaper `json:"paper"`
	New   bool            `json:"new,omitempty"`   // as Task.New
	Known *[]validators   `json:"known,omitempty"` // as Task.Known
}

// TaskCitingPaper is a citing paper as a paper task carries it.
type TaskCitingPaper struct {
	Title      string   `json:"title,omitempty"`
	Summary    string   `json:"summary,omitempty"`
	Category   string   `json:"category,omitempty"`
	Published  string   `json:"published,omitempty"`
	Verdict    string   `json:"verdict,omitempty"`
	Novelty    *float64 `json:"novelty,omitempty"`
	Refs       *int     `json:"refs,omitempty"`
	PithID     string   `json:"pith_id,omitempty"`
	ArxivID    string   `json:"arxiv_id,omitempty"`
	URL        string   `json:"url,omitempty"`
	Meta       bool     `json:"meta,omitempty"`
	Explorer   bool     `json:"explorer,omitempty"`
	Represents bool     `json:"represents,omitempty"`
}

// taskV1Paper is how version 1 carried a paper: ingest.CitingPaper of the
// time, untagged. Frozen here; never change it.
type taskV1Paper struct {
	Title, Summary, Category, Published, Verdict string
	Novelty                                      *float64
	Refs                                         *int
	PithID, ArxivID, URL                         string
	Meta, Explorer, Represents                   bool
}

// DecodeTask reads a task of any version this build knows. An unknown
// version, or a body that is not a task, is a permanent error: retrying
// will not make this worker understand it.
func DecodeTask(data []byte) (Task, error) {
	// Decoded once as this build's layout; only an older task is read again.
	var t Task
	if err := gojson.Unmarshal(data, &t); err != nil {
		var head struct {
			Version int `json:"version"`
		}
		if herr := gojson.Unmarshal(data, &head); herr != nil {
			return Task{}, retry.Permanentf("task is not valid JSON: %w", herr)
		}
		if head.Version == TaskVersion {
			return Task{}, retry.Permanentf("task version %d: %w", head.Version, err)
		}
		t.Version = head.Version
	}
	switch t.Version {
	case TaskVersion:
		return t, nil
	case 0, 1:
		var v1 struct {
			Task
			Paper *taskV1Paper `json:"paper,omitempty"`
		}
		if err := gojson.Unmarshal(data, &v1); err != nil {
			return Task{}, retry.Permanentf("task version 1: %w", err)
		}
		t := v1.Task
		t.Version = TaskVersion
		if v1.Paper != nil {
			p := TaskCitingPaper(*v1.Paper) // the same fields, tags aside
			t.Paper = &p
		}
		return t, nil
	default:
		return Task{}, retry.Permanentf("task version %d is not one this worker reads (1 to %d)", t.Version, TaskVersion)
	}
}

// HubTaskSubject and PaperTaskSubject are where the tasks of one hub are
// queued: one subject per hub, so a run can see which hubs an earlier run
// left unfinished (see queuedHubs).
func HubTaskSubject(hubID string) string   { return SubjectHubTask + "." + token(hubID) }
func PaperTaskSubject(hubID string) string { return SubjectPaperTask + "." + token(hubID) }

// HubTask is the task that starts the crawl of one hub.
func HubTask(runID, hubURL string, depth int, arxivBase string) (Out, error) {
	return hubTask(runID, ingest.HubJob{URL: hubURL, Depth: depth, ArxivBase: arxivBase})
}

// hubTask is the task of hub job j of run runID.
func hubTask(runID string, j ingest.HubJob) (Out, error) {
	u := ingest.NormaliseHubURL(j.URL)
	id, err := ingest.HubID(u)
	if err != nil {
		return Out{}, err
	}
	b, err := gojson.Marshal(Task{Version: TaskVersion, Kind: TaskHub, URL: j.URL, RunID: runID, Depth: j.Depth, ArxivBase: j.ArxivBase, Shared: j.Shared})
	return Out{Subject: HubTaskSubject(id), MsgID: runID + ":" + u, Data: b}, err
}

// paperTask is the task that builds the record of one citing paper, to be
// tried from notBefore on (zero: at once).
func paperTask(runID string, j ingest.PaperJob, notBefore time.Time) (Out, error) {
	p := taskPaperOf(j.Paper)
	t := jobTask(TaskPaper, runID, j)
	t.URL, t.New, t.Known, t.Paper = p.URL, j.New, knownOf(j), &p
	if !notBefore.IsZero() {
		t.NotBefore = notBefore.UnixMilli()
	}
	b, err := gojson.Marshal(t)
	if err != nil {
		return Out{}, fmt.Errorf("paper task %q: %w", p.URL, err)
	}
	return Out{Subject: PaperTaskSubject(j.Hub.ID), MsgID: runID + ":" + record.ID(j.Hub.ID, j.Paper.Key()), Data: b}, nil
}

// jobTask is a task of kind with the fields of run runID and of j's hub
// crawl, which every paper of a papers task shares.
func jobTask(kind, runID string, j ingest.PaperJob) Task {
	hub := j.Hub
	return Task{Version: TaskVersion, Kind: kind, RunID: runID, Depth: j.Depth, ArxivBase: j.ArxivBase,
		Shared: j.Shared, Hub: &hub, HubMissing: j.HubMissing, HubSource: j.HubSource}
}

// paperTasks are the tasks that build the records of a hub's citing
// papers (jobs, all of one hub crawl): papers tasks of up to size papers,
// in the hub's order, each under the broker's message limit maxPayload
// (0: unknown). A task's message id names its papers, so a hub task
// handled again queues the same tasks, stored once.
func paperTasks(runID string, jobs []ingest.PaperJob, size int, maxPayload int64) ([]Out, error) {
	outs := make([]Out, 0, (len(jobs)+size-1)/size)
	for group := range slices.Chunk(jobs, size) {
		o, err := papersTask(runID, group, maxPayload)
		if err != nil {
			return nil, err
		}
		outs = append(outs, o...)
	}
	return outs, nil
}

// taskHeadroom is what a task message needs beside its body (its subject
// and message id) under the broker's message limit.
const taskHeadroom = 1 << 10

// papersTask is the papers task of group, or those of its halves when it
// is over maxPayload. A paper alone over it makes a task the broker
// refuses, as a paper task of it would.
func papersTask(runID string, group []ingest.PaperJob, maxPayload int64) ([]Out, error) {
	hub := group[0].Hub
	t := jobTask(TaskPapers, runID, group[0]) // group is of one hub crawl: the hub's fields are every paper's
	t.URL, t.Papers = hub.URL, make([]TaskPaperItem, len(group))
	ids := sha256.New()
	for i, p := range group {
		t.Papers[i] = TaskPaperItem{Paper: taskPaperOf(p.Paper), New: p.New, Known: knownOf(p)}
		id := p.ID
		if id == "" {
			id = record.ID(hub.ID, p.Paper.Key())
		}
		ids.Write([]byte(id + "\n"))
	}
	b, err := gojson.Marshal(t)
	if err != nil {
		return nil, fmt.Errorf("papers task of hub %s: %w", hub.ID, err)
	}
	if half := len(group) / 2; maxPayload > 0 && int64(len(b)) > maxPayload-taskHeadroom && half > 0 {
		first, err := papersTask(runID, group[:half], maxPayload)
		if err != nil {
			return nil, err
		}
		second, err := papersTask(runID, group[half:], maxPayload)
		return append(first, second...), err
	}
	return []Out{{Subject: PaperTaskSubject(hub.ID), MsgID: runID + ":papers:" + hex.EncodeToString(ids.Sum(nil)[:16]), Data: b}}, nil
}

// hubJob is what a hub task asks of the crawler.
func (t Task) hubJob() ingest.HubJob {
	return ingest.HubJob{URL: t.URL, Depth: t.Depth, CrawlID: t.RunID, ArxivBase: t.ArxivBase, Shared: t.Shared}
}

// paperJob is what a paper task asks of the crawler.
func (t Task) paperJob() (ingest.PaperJob, error) {
	if t.Hub == nil || t.Paper == nil {
		return ingest.PaperJob{}, retry.Permanentf("paper task %q lacks its hub or paper", t.URL)
	}
	return t.job(*t.Paper, t.New, t.Known), nil
}

// paperJobs are what a papers task asks of the crawler, one job a paper.
func (t Task) paperJobs() ([]ingest.PaperJob, error) {
	if t.Hub == nil || len(t.Papers) == 0 {
		return nil, retry.Permanentf("papers task %q lacks its hub or papers", t.URL)
	}
	jobs := make([]ingest.PaperJob, len(t.Papers))
	for i, p := range t.Papers {
		jobs[i] = t.job(p.Paper, p.New, p.Known)
	}
	return jobs, nil
}

// job is the crawler's job for paper p of t (which has its hub).
func (t Task) job(p TaskCitingPaper, isNew bool, known *[]validators) ingest.PaperJob {
	j := ingest.PaperJob{Hub: *t.Hub, HubMissing: t.HubMissing, HubSource: t.HubSource, Paper: p.citingPaper(),
		Depth: t.Depth, CrawlID: t.RunID, ArxivBase: t.ArxivBase, Shared: t.Shared, New: isNew}
	if known != nil {
		j.Known = sourcePages(*known) // empty, not nil, when there are none
	}
	return j
}

// knownOf are the known pages of j as a task carries them: nil when the
// hub's crawl did not say, an empty list when it knew of none.
func knownOf(j ingest.PaperJob) *[]validators {
	if j.Known == nil {
		return nil
	}
	v := pagesOf(j.Known)
	return &v
}

// taskPaperOf and citingPaper translate between the parser's type and the
// wire's, field by field, so either may change without the other.
func taskPaperOf(p ingest.CitingPaper) TaskCitingPaper {
	return TaskCitingPaper{Title: p.Title, Summary: p.Summary, Category: p.Category, Published: p.Published, Verdict: p.Verdict,
		Novelty: p.Novelty, Refs: p.Refs, PithID: p.PithID, ArxivID: p.ArxivID, URL: p.URL,
		Meta: p.Meta, Explorer: p.Explorer, Represents: p.Represents}
}

func (p *TaskCitingPaper) citingPaper() ingest.CitingPaper {
	return ingest.CitingPaper{Title: p.Title, Summary: p.Summary, Category: p.Category, Published: p.Published, Verdict: p.Verdict,
		Novelty: p.Novelty, Refs: p.Refs, PithID: p.PithID, ArxivID: p.ArxivID, URL: p.URL,
		Meta: p.Meta, Explorer: p.Explorer, Represents: p.Represents}
}
