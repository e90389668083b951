package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/rs/zerolog"

	"github.com/citecrawl/citecrawl/internal/testkit"
	"github.com/citecrawl/citecrawl/pipeline"
	"github.com/citecrawl/citecrawl/record"
	"github.com/citecrawl/citecrawl/sink"
)

// Sink workers in separate processes share one output folder: two on the
// durable consumer "sink" (one of them killed with SIGKILL mid-way and
// started again) and one on a second durable that gets every record. Every
// record is written once, the survivors never touch the live temporary
// files of the others, the dead one's are cleared by its successor, and
// nothing is dead-lettered.
func TestSinkWorkersShareAnOutputFolder(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs several workers")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "citecrawl")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: filepath.Join(dir, "nats"), NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	ns.Start()
	defer ns.Shutdown()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("NATS server not ready")
	}
	ctx := context.Background()
	bus, err := pipeline.Open(ctx, pipeline.BrokerConfig{URL: ns.ClientURL(), Replicas: 1}, 4096, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer bus.Close()

	out := filepath.Join(dir, "out")
	type worker struct {
		cmd    *exec.Cmd
		stderr *testkit.LogBuffer
	}
	start := func(durable string) worker {
		cmd := exec.Command(bin, "worker", "--stage", "sink", "--nats", ns.ClientURL(), "--out", out,
			"--set", "stages.sink_durable="+durable, "--set", "stages.batch=64",
			"--set", "sink.segment_max_age=300ms", "--set", "stages.ack_wait=3s")
		w := worker{cmd: cmd, stderr: &testkit.LogBuffer{}}
		cmd.Stderr = w.stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		return w
	}
	const hubs, perHub = 4, 1500
	publish := func(from, to int) {
		var outs []pipeline.Out
		for h := range hubs {
			for i := from; i < to; i++ {
				r := record.Record{Schema: record.Schema, ID: fmt.Sprintf("hub-%d-%d", h, i), Hub: record.Hub{ID: fmt.Sprintf("hub-%d", h)},
					Paper: record.Paper{Title: fmt.Sprint("paper ", i)}, Role: record.RoleUses, Polarity: record.PolarityNeutral,
					Pluralism: &record.Pluralism{Primary: record.PluralismNone}}
				b, _ := json.Marshal(r)
				outs = append(outs, pipeline.Out{Subject: pipeline.TaggedSubject(r.Hub.ID), MsgID: r.ID, Data: b})
			}
		}
		if err := bus.PublishAll(ctx, outs); err != nil {
			t.Fatal(err)
		}
	}
	distinct := func() (lines, ids int) {
		rd, err := sink.OpenReader(ctx, sink.Config{Out: out})
		if err != nil {
			return 0, 0
		}
		seen := map[string]int{}
		_ = rd.Records(ctx, func(r *record.Record) error { seen[r.ID]++; lines++; return nil })
		return lines, len(seen)
	}
	waitFor := func(what string, limit time.Duration, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(limit)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("%s not reached within %s", what, limit)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	a, victim, b := start("sink"), start("sink"), start("sink-b")
	publish(0, perHub/2)
	// Kill one worker of the shared durable while records are coming in.
	waitFor("first records", 60*time.Second, func() bool { _, n := distinct(); return n > 0 })
	if err := victim.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = victim.cmd.Wait()
	victimTemps, _ := filepath.Glob(filepath.Join(out, "*", fmt.Sprintf(".*.%d-*.tmp", victim.cmd.Process.Pid)))
	publish(perHub/2, perHub)
	total := hubs * perHub
	waitFor("every record", 90*time.Second, func() bool { _, n := distinct(); return n == total })
	successor := start("sink") // clears the dead worker's temporary files
	drained := func() bool {
		for _, durable := range []string{"sink", "sink-b"} {
			c, err := bus.JS.Consumer(ctx, pipeline.StreamTagged, durable)
			if err != nil {
				return false
			}
			info, err := c.Info(ctx)
			if err != nil || info.NumPending > 0 || info.NumAckPending > 0 {
				return false
			}
		}
		return true
	}
	waitFor("both consumers drained", 60*time.Second, drained)
	// The successor removes the dead writer's files once it opens a hub:
	// give it a record of each hub (already written, so not written again).
	publishAgain := func() {
		var outs []pipeline.Out
		for h := range hubs {
			r := record.Record{Schema: record.Schema, ID: fmt.Sprintf("hub-%d-0", h), Hub: record.Hub{ID: fmt.Sprintf("hub-%d", h)},
				Paper: record.Paper{Title: "paper 0"}, Role: record.RoleUses, Polarity: record.PolarityNeutral,
				Pluralism: &record.Pluralism{Primary: record.PluralismNone}}
			data, _ := json.Marshal(r)
			outs = append(outs, pipeline.Out{Subject: pipeline.TaggedSubject(r.Hub.ID), MsgID: "again-" + r.ID, Data: data})
		}
		if err := bus.PublishAll(ctx, outs); err != nil {
			t.Fatal(err)
		}
	}
	_ = a.cmd.Process.Signal(syscall.SIGTERM)
	_ = a.cmd.Wait()
	publishAgain()
	waitFor("the repeats taken", 60*time.Second, drained)
	for _, w := range []worker{b, successor} {
		_ = w.cmd.Process.Signal(syscall.SIGTERM)
		if err := w.cmd.Wait(); err != nil {
			t.Errorf("worker exited with %v:\n%s", err, w.stderr.String())
		}
	}
	lines, ids := distinct()
	tmp, _ := filepath.Glob(filepath.Join(out, "*", ".*.tmp"))
	dead, err := pipeline.ReadDeadLetters(ctx, bus, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("3 sink processes (1 SIGKILLed holding %d temporary files, 1 successor) on one folder, 2 durables: %d records given, %d lines, %d distinct, %d duplicates, %d missing, %d temporary files left, %d dead letters",
		len(victimTemps), total, lines, ids, lines-ids, total-ids, len(tmp), len(dead))
	if lines != total || ids != total {
		t.Errorf("%d lines, %d distinct ids; want %d of each", lines, ids, total)
	}
	if len(tmp) != 0 {
		t.Errorf("temporary files left: %v", tmp)
	}
	if len(dead) != 0 {
		t.Errorf("dead letters: %+v", dead)
	}
	for _, w := range []worker{a, b, successor} {
		if s := w.stderr.String(); strings.Contains(s, `"level":"error"`) {
			t.Errorf("a worker logged errors:\n%s", s)
		}
	}
}
