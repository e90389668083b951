package pipeline

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/citecrawl/citecrawl/ingest/snapshot"
	"github.com/citecrawl/citecrawl/internal/testkit"
	"github.com/citecrawl/citecrawl/record"
)

// A reprocess whose disk fills mid-generation (its segments, index runs,
// label logs and checkpoints share it) fails with the disk's error and
// makes no output; run again once there is room, it resumes and writes
// the lines of a reprocess that never filled a disk, each record once.
func TestReprocessOnAFullDiskResumesOnceThereIsRoom(t *testing.T) {
	disk := testkit.SmallDisk(t, "4m")
	const n = 6000 // about 8 MB of tagged lines
	bus, c := busAndRules(t)
	ctx := context.Background()
	papers := snapshot.Generated(50).Papers
	var outs []Out
	for i := range n {
		hub := fmt.Sprint("hub-", i%5)
		r := generatedRaw(hub, i, papers[i%len(papers)])
		b, err := record.Marshal(&r)
		if err != nil {
			t.Fatal(err)
		}
		outs = append(outs, Out{Subject: RawSubject(hub), Data: b})
	}
	if err := bus.PublishAll(ctx, outs); err != nil {
		t.Fatal(err)
	}
	// A checkpoint every 500 records: the disk fills after a few.
	opts := ReprocessOptions{From: "stream", Out: filepath.Join(t.TempDir(), "ref"), Classifier: c, Log: zerolog.Nop(), Batch: 500}
	if _, err := Reprocess(ctx, bus, opts); err != nil {
		t.Fatal(err)
	}
	want := outLines(t, opts.Out)

	opts.Out = filepath.Join(disk, "out")
	_, err := Reprocess(ctx, bus, opts)
	if err == nil || !strings.Contains(err.Error(), "no space left on device") {
		t.Fatalf("reprocess on a full disk: %v; want the disk's error", err)
	}
	t.Logf("on a full disk: %v", err)
	if _, err := os.Stat(opts.Out); !os.IsNotExist(err) {
		t.Fatalf("a reprocess that failed made its output %s (%v)", opts.Out, err)
	}
	if b, err := exec.Command("mount", "-o", "remount,size=64m", disk).CombinedOutput(); err != nil {
		t.Fatalf("making room: %v %s", err, b)
	}
	res, err := Reprocess(ctx, bus, opts)
	if err != nil {
		t.Fatalf("reprocess once there is room: %v", err)
	}
	if !res.Resumed {
		t.Error("the reprocess started over instead of resuming from its last checkpoint")
	}
	got := outLines(t, opts.Out)
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("%d lines after the full disk, %d from a reprocess that never filled one, not the same", len(got), len(want))
	}
	if len(got) != n {
		t.Fatalf("%d lines, want %d", len(got), n)
	}
}
