package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/citecrawl/citecrawl/classify"
	"github.com/citecrawl/citecrawl/ingest/snapshot"
	"github.com/citecrawl/citecrawl/internal/testkit"
	"github.com/citecrawl/citecrawl/pipeline"
	"github.com/citecrawl/citecrawl/record"
)

// A `citecrawl reprocess` killed with SIGKILL three times (after its
// first and second checkpoints, while it writes the batch after them, and
// once it has read every record, while it closes the new generation),
// then run again, writes the same output as a reprocess that was never
// killed: the same lines, none twice, every record there. From the
// stream, then from the folder that wrote.
func TestReprocessKilledThenRerun(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	// A checkpoint every 16,384 records (pipeline's default batch): three
	// and more of them, over five hubs, the last 5,000 records being new
	// versions of earlier ones.
	const n, versions = 70_000, 5_000
	dir := t.TempDir()
	bin := buildCitecrawl(t, dir)
	data := filepath.Join(dir, "data")
	publishRecords(t, data, n, versions, nil)
	reprocess := func(out string, from ...string) *exec.Cmd {
		return exec.Command(bin, append([]string{"reprocess", "--data", data, "--out", out, "--log-level", "info",
			"--rules", filepath.Join("..", "..", "configs", "rules")}, from...)...)
	}

	clean := filepath.Join(dir, "clean")
	if b, err := reprocess(clean).CombinedOutput(); err != nil {
		t.Fatalf("clean reprocess: %v\n%s", err, b)
	}
	t.Run("stream", func(t *testing.T) {
		out := filepath.Join(dir, "out")
		killThenRerun(t, func() *exec.Cmd { return reprocess(out) }, out, n)
		sameLines(t, out, clean, n-versions)
	})
	t.Run("folder", func(t *testing.T) {
		again, out := filepath.Join(dir, "again"), filepath.Join(dir, "from-folder")
		if b, err := reprocess(again, "--from", clean).CombinedOutput(); err != nil {
			t.Fatalf("clean reprocess from a folder: %v\n%s", err, b)
		}
		killThenRerun(t, func() *exec.Cmd { return reprocess(out, "--from", clean) }, out, n-versions)
		sameLines(t, out, again, n-versions)
	})
	// Records as `citecrawl run` stores them: tagged by their fetcher, on
	// a subject a hub, read from the tagged stream through the broker
	// child.
	t.Run("self-tagged", func(t *testing.T) {
		tagger, err := classify.Load(filepath.Join("..", "..", "configs", "rules"))
		if err != nil {
			t.Fatal(err)
		}
		data := filepath.Join(dir, "data-self-tagged")
		publishRecords(t, data, n, versions, tagger)
		reprocess := func(out string) *exec.Cmd {
			return exec.Command(bin, "reprocess", "--data", data, "--out", out, "--log-level", "info",
				"--rules", filepath.Join("..", "..", "configs", "rules"))
		}
		clean, out := filepath.Join(dir, "clean-self-tagged"), filepath.Join(dir, "out-self-tagged")
		if b, err := reprocess(clean).CombinedOutput(); err != nil {
			t.Fatalf("clean reprocess: %v\n%s", err, b)
		}
		killThenRerun(t, func() *exec.Cmd { return reprocess(out) }, out, n)
		sameLines(t, out, clean, n-versions)

		// Its broker child killed with SIGKILL mid-run: reprocess fails,
		// its server gone, and the next run resumes to the same output.
		t.Run("broker killed", func(t *testing.T) {
			out := filepath.Join(dir, "out-broker-killed")
			run := reprocess(out)
			stderr, ended, _ := startWatched(t, run)
			defer run.Process.Kill()
			waitFor(t, 2*time.Minute, func() bool { return checkpointDone(out) > 16_384 || ended() },
				func() string { return "no checkpoint past the first batch:\n" + stderr.String() })
			if ended() {
				t.Fatalf("reprocess ended before its broker could be killed:\n%s", stderr.String())
			}
			broker := served(t, data).PID
			if broker == run.Process.Pid {
				t.Fatal("reprocess serves the folder itself, not through a broker child")
			}
			if err := syscall.Kill(broker, syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			waitFor(t, 2*time.Minute, ended, func() string { return "reprocess still runs without its server:\n" + stderr.String() })
			if run.ProcessState.Success() {
				t.Fatalf("reprocess succeeded with its server killed:\n%s", stderr.String())
			}
			b, err := reprocess(out).CombinedOutput()
			if err != nil || !strings.Contains(string(b), "resuming an interrupted reprocess") {
				t.Fatalf("reprocess after its broker was killed: %v, want it to resume:\n%s", err, b)
			}
			sameLines(t, out, clean, n-versions)
		})
	})
}

// startWatched starts run with its standard error in stderr; ended says
// whether it has exited, and exited is closed when it has.
func startWatched(t *testing.T, run *exec.Cmd) (stderr *testkit.LogBuffer, ended func() bool, exited <-chan struct{}) {
	t.Helper()
	stderr = &testkit.LogBuffer{}
	run.Stderr = stderr
	if err := run.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = run.Wait(); close(done) }()
	ended = func() bool {
		select {
		case <-done:
			return true
		default:
			return false
		}
	}
	return stderr, ended, done
}

// checkpointDone is what the checkpoint of the reprocess writing out says
// it read (of one kind of record, raw or self-tagged), 0 before the first.
func checkpointDone(out string) uint64 {
	var cp struct {
		Done   uint64 `json:"done"`
		Tagged uint64 `json:"tagged"`
	}
	b, err := os.ReadFile(filepath.Join(out+".next", ".reprocess-checkpoint.json"))
	if err != nil || json.Unmarshal(b, &cp) != nil {
		return 0
	}
	return cp.Done + cp.Tagged
}

// killThenRerun starts reprocess (a command writing out, logging at info)
// and kills it with SIGKILL once its checkpoint is past the first batch,
// the second, and at n (the records it reads: all read, the generation
// closing), then runs it to its end. Each run after a kill must resume
// from the killed one's checkpoint, not start over.
func killThenRerun(t *testing.T, reprocess func() *exec.Cmd, out string, n uint64) {
	t.Helper()
	done := func() uint64 { return checkpointDone(out) }
	const resumed = "resuming an interrupted reprocess"
	killed := false
	for _, at := range []uint64{1, 16_385, n} {
		run := reprocess()
		stderr, ended, exited := startWatched(t, run)
		// The last kill may come too late: the run may have ended.
		waitFor(t, 2*time.Minute, func() bool { return done() >= at || ended() }, func() string {
			run.Process.Kill()
			return fmt.Sprintf("the checkpoint is at %d, waiting for %d:\n%s", done(), at, stderr.String())
		})
		if killed && !strings.Contains(stderr.String(), resumed) {
			run.Process.Kill()
			t.Fatalf("a run after a kill did not resume:\n%s", stderr.String())
		}
		if ended() {
			t.Logf("the run ended before it could be killed at %d:\n%s", at, stderr.String())
			continue
		}
		at := done()
		if err := run.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		<-exited
		killed = true
		t.Logf("killed with the checkpoint at %d of %d", at, n)
	}
	b, err := reprocess().CombinedOutput()
	if err != nil {
		t.Fatalf("reprocess after the kills: %v\n%s", err, b)
	}
	if killed && !strings.Contains(string(b), resumed) {
		t.Fatalf("the run after the kills did not resume:\n%s", b)
	}
}

// sameLines fails unless the output folder out has the lines of want, by
// hub folder, none twice, records of them in all.
func sameLines(t *testing.T, out, want string, records int) {
	t.Helper()
	got, wantLines := hubLines(t, out), hubLines(t, want)
	ids := map[string]bool{}
	for hub, lines := range wantLines {
		if !slices.Equal(got[hub], lines) {
			t.Errorf("hub %s: %d lines after the kills, %d in the run never killed, not the same", hub, len(got[hub]), len(lines))
		}
		for i, line := range lines {
			if i > 0 && line == lines[i-1] {
				t.Errorf("hub %s: a line twice in the run never killed", hub)
			}
			var r struct {
				ID string `json:"id"`
			}
			if err := json.Unmarshal([]byte(line), &r); err != nil {
				t.Fatalf("hub %s: %v", hub, err)
			}
			ids[r.ID] = true
		}
	}
	if len(got) != len(wantLines) {
		t.Errorf("%d hub folders after the kills, %d in the run never killed", len(got), len(wantLines))
	}
	if len(ids) != records {
		t.Errorf("%d records in the run never killed, want %d", len(ids), records)
	}
}

// publishRecords fills the data folder with n records as the fetch stage
// publishes them (pipeline.FetchedRecord: raw, or self-tagged with
// tagger), over five hubs, the last versions of them new versions
// (another summary) of the first.
func publishRecords(t *testing.T, data string, n, versions int, tagger *classify.Classifier) {
	t.Helper()
	ctx := context.Background()
	cfg := pipeline.DefaultConfig()
	cfg.NATS.DataDir = data
	bus, err := pipeline.Open(ctx, cfg.NATS, 4096, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer bus.Close()
	papers := snapshot.Generated(50).Papers
	outs := make([]pipeline.Out, 0, n)
	for i := range n {
		k, change, p := i, pipeline.ChangeNew, papers[i%len(papers)]
		if i >= n-versions {
			// The record k again, with the next paper's text: a version
			// the stream's duplicate window does not drop.
			k, change = i-(n-versions), pipeline.ChangeChanged
			p = papers[(k+1)%len(papers)]
		}
		hub := fmt.Sprint("hub-", k%5)
		r := record.Record{Schema: record.Schema, ID: record.ID(hub, fmt.Sprint(k)),
			Hub:      record.Hub{ID: hub, Title: "A generated hub", CitedWorkIDs: []string{}},
			Paper:    record.Paper{Title: p.Title, Summary: p.Summary, Published: p.Date, Categories: []string{p.Cat}},
			Contexts: []record.Context{}, SourceURLs: []string{}, Missing: []string{}}
		o, err := pipeline.FetchedRecord(fmt.Sprint("run-", i/10_000), &r, change, tagger, nil)
		if err != nil {
			t.Fatal(err)
		}
		outs = append(outs, o)
	}
	if err := bus.PublishAll(ctx, outs); err != nil {
		t.Fatal(err)
	}
}

// hubLines is every record line of an output folder, by hub folder, sorted.
func hubLines(t *testing.T, out string) map[string][]string {
	t.Helper()
	segs, err := filepath.Glob(filepath.Join(out, "*", "seg-*.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	lines := map[string][]string{}
	for _, seg := range segs {
		b, err := os.ReadFile(seg)
		if err != nil {
			t.Fatal(err)
		}
		hub := filepath.Base(filepath.Dir(seg))
		lines[hub] = append(lines[hub], strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")...)
	}
	for _, l := range lines {
		slices.Sort(l)
	}
	return lines
}
