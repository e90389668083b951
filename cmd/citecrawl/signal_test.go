package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/citecrawl/citecrawl/ingest/snapshot"
	"github.com/citecrawl/citecrawl/internal/testkit"
	"github.com/citecrawl/citecrawl/pipeline"
)

// A worker stopped with SIGTERM while it is writing shuts down cleanly:
// exit 0, the open segment sealed, and no half-written file left in view.
func TestWorkerStopsOnSIGTERM(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	dir := t.TempDir()
	bin := buildCitecrawl(t, dir)

	// A real NATS server with a hub task queued on it, and a loopback site
	// that answers at a steady pace, so that records keep arriving at the
	// sink and its segment stays open until the signal.
	ns := startNATS(t, filepath.Join(dir, "nats"))
	site := snapshot.New(snapshot.StyleCards, snapshot.Generated(400))
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(10 * time.Millisecond)
		site.ServeHTTP(w, r)
	}))
	defer web.Close()
	ctx := context.Background()
	bus, err := pipeline.Open(ctx, pipeline.BrokerConfig{URL: ns.ClientURL()}, 16, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	task, err := pipeline.HubTask("sigterm", site.HubURLs(web.URL)[0], 0, web.URL)
	if err == nil {
		err = bus.PublishAll(ctx, []pipeline.Out{task})
	}
	bus.Close()
	if err != nil {
		t.Fatal(err)
	}

	out := filepath.Join(dir, "out")
	cmd := exec.Command(bin, "worker", "--stage", "fetch,classify,sink", "--nats", ns.ClientURL(), "--out", out,
		"--rules", filepath.Join("..", "..", "configs", "rules"), "--set", "fetch.delay=0s", "--set", "sink.segment_max_age=1m", "--set", "stages.ack_wait=2m", "--set", "fetch.allow_addresses=127.0.0.1")
	var stderr testkit.LogBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	temporary := func() []string {
		tmp, _ := filepath.Glob(filepath.Join(out, "*", ".*.tmp"))
		return tmp
	}
	deadline := time.Now().Add(60 * time.Second)
	for len(temporary()) == 0 {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("no segment was opened:\n%s", stderr.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("worker exited with %v after SIGTERM:\n%s", err, stderr.String())
	}
	if leftovers := temporary(); len(leftovers) > 0 {
		t.Fatalf("temporary files left in view: %v", leftovers)
	}
	sealed, _ := filepath.Glob(filepath.Join(out, "*", "seg-*.jsonl"))
	if len(sealed) == 0 {
		t.Fatalf("the open segment was not sealed on SIGTERM:\n%s", stderr.String())
	}
	_ = os.RemoveAll(dir)
}
