package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/citecrawl/citecrawl/ingest/snapshot"
	"github.com/citecrawl/citecrawl/internal/testkit"
)

// fetchWorkers is the test's stages.fetch_workers, and papersPerTask
// follows pipeline's papersPerTask: together they bound the papers the
// workers hold at a kill.
const (
	fetchWorkers  = 4
	papersPerTask = 8
)

// A run killed with SIGKILL while the fetch workers hold papers tasks half
// done (the site answers half the pages of a clean run, then
// holds every request) and run again writes every record exactly once;
// only the pages of the tasks held at the kill are fetched again.
func TestRunKilledMidPapersTask(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	const n = 200
	dir := t.TempDir()
	bin := buildCitecrawl(t, dir)
	site := snapshot.New(snapshot.StyleCards, snapshot.Generated(n))
	var answered, held, limit atomic.Int64
	limit.Store(-1) // no limit
	release := make(chan struct{})
	web := httptest.NewServer(snapshot.WithoutValidators(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/robots.txt" && !strings.HasPrefix(r.URL.Path, "/citations/") {
			if l := limit.Load(); l >= 0 && answered.Load() >= l {
				held.Add(1)
				select {
				case <-release:
				case <-r.Context().Done():
					return
				}
			}
		}
		if r.URL.Path != "/robots.txt" {
			answered.Add(1)
		}
		site.ServeHTTP(w, r)
	})))
	t.Cleanup(web.Close)
	hub := site.HubURLs(web.URL)[0]

	if out, err := runCmd(bin, hub, web.URL, filepath.Join(dir, "clean-data"), filepath.Join(dir, "clean-out")).CombinedOutput(); err != nil {
		t.Fatalf("clean run: %v\n%s", err, out)
	}
	clean := answered.Load()
	answered.Store(0)
	limit.Store(clean / 2)

	data, out := filepath.Join(dir, "data"), filepath.Join(dir, "out")
	run := runCmd(bin, hub, web.URL, data, out)
	run.Args = append(run.Args, "--set", fmt.Sprintf("stages.fetch_workers=%d", fetchWorkers))
	var stderr testkit.LogBuffer
	run.Stderr = &stderr
	if err := run.Start(); err != nil {
		t.Fatal(err)
	}
	// One request to the host at a time (the default): one fetch worker
	// waits for the page held, the others for their turn, each half-way
	// through the papers task it holds.
	waitFor(t, 90*time.Second, func() bool { return held.Load() >= 1 }, func() string {
		run.Process.Kill()
		return fmt.Sprintf("only %d requests held, %d answered:\n%s", held.Load(), answered.Load(), stderr.String())
	})
	if err := run.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = run.Wait()
	killed := answered.Load()
	close(release)
	limit.Store(-1)

	answered.Store(0)
	summary, err := runCmd(bin, hub, web.URL, data, out).CombinedOutput()
	if err != nil {
		t.Fatalf("rerun: %v\n%s", err, summary)
	}
	rerun := answered.Load()
	t.Logf("clean run: %d pages; killed at %d, the rerun fetched %d", clean, killed, rerun)
	lines, ids := outLines(t, out)
	if lines != n || len(ids) != n {
		t.Fatalf("%d lines, %d distinct ids; want %d of each\n%s", lines, len(ids), n, summary)
	}
	if rerun >= clean {
		t.Errorf("the rerun fetched %d pages, a clean run %d: the tasks done before the kill were done again", rerun, clean)
	}
	// Fetched twice: the pages of the tasks the workers held at the kill,
	// at most one task of papersPerTask papers per worker.
	perPaper := (clean - 1 + n - 1) / n // the hub aside, rounded up
	if most := fetchWorkers * papersPerTask * perPaper; killed+rerun-clean > most {
		t.Errorf("%d pages fetched twice; the tasks held at the kill have at most %d", killed+rerun-clean, most)
	}
}
