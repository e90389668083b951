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

	"github.com/citecrawl/citecrawl/ingest/snapshot"
	"github.com/citecrawl/citecrawl/internal/testkit"
	"github.com/citecrawl/citecrawl/pipeline"
	"github.com/citecrawl/citecrawl/record"
)

// A `citecrawl reprocess` from the stream killed with SIGKILL three times
// (after its first and second checkpoints, while it writes the batch
// after them, and once it has read every record, while it closes the new
// generation), then run again, writes the same output as a reprocess that
// was never killed: the same lines, none twice, every record there.
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
	publishRaw(t, data, n, versions)

	reprocess := func(out string) *exec.Cmd {
		return exec.Command(bin, "reprocess", "--data", data, "--out", out, "--log-level", "warn",
			"--rules", filepath.Join("..", "..", "configs", "rules"))
	}
	clean := filepath.Join(dir, "clean")
	if b, err := reprocess(clean).CombinedOutput(); err != nil {
		t.Fatalf("clean reprocess: %v\n%s", err, b)
	}

	out := filepath.Join(dir, "out")
	checkpoint := filepath.Join(out+".next", ".reprocess-checkpoint.json")
	done := func() uint64 { // the raw stream sequence the checkpoint is at
		var cp struct {
			Done uint64 `json:"done"`
		}
		b, err := os.ReadFile(checkpoint)
		if err != nil || json.Unmarshal(b, &cp) != nil {
			return 0
		}
		return cp.Done
	}
	for _, at := range []uint64{1, 16_385, n} {
		run := reprocess(out)
		var stderr testkit.LogBuffer
		run.Stderr = &stderr
		if err := run.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan struct{})
		go func() { _ = run.Wait(); close(exited) }()
		ended := func() bool {
			select {
			case <-exited:
				return true
			default:
				return false
			}
		}
		// The last kill may come too late: the run may have ended.
		waitFor(t, 2*time.Minute, func() bool { return done() >= at || ended() }, func() string {
			run.Process.Kill()
			return fmt.Sprintf("the checkpoint is at %d, waiting for %d:\n%s", done(), at, stderr.String())
		})
		if ended() {
			t.Logf("the run ended before it could be killed at %d:\n%s", at, stderr.String())
			continue
		}
		at := done()
		if err := run.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		<-exited
		t.Logf("killed with the checkpoint at %d of %d", at, n)
	}
	if b, err := reprocess(out).CombinedOutput(); err != nil {
		t.Fatalf("reprocess after the kills: %v\n%s", err, b)
	}

	want, got := hubLines(t, clean), hubLines(t, out)
	ids := map[string]bool{}
	for hub, lines := range want {
		if !slices.Equal(got[hub], lines) {
			t.Errorf("hub %s: %d lines after the kills, %d in the clean reprocess, not the same", hub, len(got[hub]), len(lines))
		}
		for i, line := range lines {
			if i > 0 && line == lines[i-1] {
				t.Errorf("hub %s: a line twice in the clean reprocess", hub)
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
	if len(got) != len(want) {
		t.Errorf("%d hub folders after the kills, %d in the clean reprocess", len(got), len(want))
	}
	if len(ids) != n-versions {
		t.Errorf("%d records in the clean reprocess, want %d", len(ids), n-versions)
	}
}

// publishRaw fills the data folder's raw stream with n records as the
// fetch stage publishes them, over five hubs, the last versions of them
// new versions (another summary) of the first.
func publishRaw(t *testing.T, data string, n, versions int) {
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
		k := i
		if i >= n-versions {
			k = i - (n - versions) // the record k again
		}
		hub := fmt.Sprint("hub-", k%5)
		p := papers[i%len(papers)]
		r := record.Record{Schema: record.Schema, ID: record.ID(hub, fmt.Sprint(k)),
			Hub:      record.Hub{ID: hub, Title: "A generated hub", CitedWorkIDs: []string{}},
			Paper:    record.Paper{Title: p.Title, Summary: p.Summary, Published: p.Date, Categories: []string{p.Cat}},
			Contexts: []record.Context{}, SourceURLs: []string{}, Missing: []string{}}
		b, err := record.Marshal(&r)
		if err != nil {
			t.Fatal(err)
		}
		outs = append(outs, pipeline.Out{Subject: pipeline.RawSubject(hub), Data: b})
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
