package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/citecrawl/citecrawl/ingest/snapshot"
	"github.com/citecrawl/citecrawl/internal/testkit"
)

// chaosSite serves a generated hub of n papers with neither ETag nor
// Last-Modified (nothing can be skipped with a 304), counting the pages
// asked for (robots.txt aside, counted in robotsTxt); each answer takes
// delay.
func chaosSite(t *testing.T, n int, delay time.Duration) (*httptest.Server, *snapshot.Site, *siteCounts) {
	t.Helper()
	site := snapshot.New(snapshot.StyleCards, snapshot.Generated(n))
	counts := &siteCounts{}
	web := httptest.NewServer(snapshot.WithoutValidators(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/robots.txt" {
			counts.robots.Add(1)
		} else {
			counts.pages.Add(1)
		}
		time.Sleep(delay)
		site.ServeHTTP(w, r)
	})))
	t.Cleanup(web.Close)
	return web, site, counts
}

// siteCounts are the requests a chaosSite answered.
type siteCounts struct{ pages, robots atomic.Int64 }

func (c *siteCounts) Load() int64   { return c.pages.Load() }
func (c *siteCounts) Store(n int64) { c.pages.Store(n); c.robots.Store(n) }

// runCmd is `citecrawl run` of the site's hub on data and out.
func runCmd(bin, hub, arxiv, data, out string) *exec.Cmd {
	return exec.Command(bin, "run", "--hub", hub, "--data", data, "--out", out, "--progress", "off",
		"--rules", filepath.Join("..", "..", "configs", "rules"),
		"--set", "fetch.delay=0s", "--set", "fetch.allow_addresses=127.0.0.1", "--set", "full_text.arxiv_base="+arxiv)
}

// A run killed with SIGKILL three times, then run again, writes every
// record exactly once, fetches at most 1.5 times the pages of a clean run
// from a site without validators, and its finishing run takes at most
// 20 seconds longer than a clean run.
func TestRunKilledThenRerun(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	const n = 300
	dir := t.TempDir()
	bin := buildCitecrawl(t, dir)
	web, site, pages := chaosSite(t, n, 2*time.Millisecond)
	hub := site.HubURLs(web.URL)[0]

	clean := runCmd(bin, hub, web.URL, filepath.Join(dir, "clean-data"), filepath.Join(dir, "clean-out"))
	start := time.Now()
	if out, err := clean.CombinedOutput(); err != nil {
		t.Fatalf("clean run: %v\n%s", err, out)
	}
	cleanWall, cleanPages := time.Since(start), pages.Load()
	pages.Store(0)

	data, out := filepath.Join(dir, "data"), filepath.Join(dir, "out")
	for kill := range 3 {
		run := runCmd(bin, hub, web.URL, data, out)
		var stderr testkit.LogBuffer
		run.Stderr = &stderr
		if err := run.Start(); err != nil {
			t.Fatal(err)
		}
		target := cleanPages * int64(kill+1) / 5
		waitFor(t, 90*time.Second, func() bool { return pages.Load() >= target }, func() string {
			run.Process.Kill()
			return fmt.Sprintf("kill %d: only %d pages fetched, waiting for %d:\n%s", kill+1, pages.Load(), target, stderr.String())
		})
		if err := run.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = run.Wait()
	}
	rerun := runCmd(bin, hub, web.URL, data, out)
	start = time.Now()
	summary, err := rerun.CombinedOutput()
	if err != nil {
		t.Fatalf("rerun: %v\n%s", err, summary)
	}
	rerunWall := time.Since(start)
	t.Logf("clean run: %d pages in %v; three kill -9 and a rerun: %d pages, the rerun took %v",
		cleanPages, cleanWall.Round(time.Millisecond), pages.Load(), rerunWall.Round(time.Millisecond))

	lines, ids := outLines(t, out)
	if lines != n || len(ids) != n {
		t.Fatalf("%d lines, %d distinct ids; want %d of each\n%s", lines, len(ids), n, summary)
	}
	if n := pages.robots.Load(); n > 5 {
		t.Errorf("robots.txt was fetched %d times by 5 processes on one host; want once per process", n)
	}
	if limit := cleanPages * 3 / 2; pages.Load() > limit {
		t.Fatalf("%d pages fetched; a clean run fetched %d, want at most %d", pages.Load(), cleanPages, limit)
	}
	if rerunWall > cleanWall+20*time.Second {
		t.Fatalf("the finishing run took %v, a clean run %v: more than 20s longer", rerunWall, cleanWall)
	}
}

// Two runs started at once on one data folder both end, and between them
// write every record once (each to its own output folder: sinks sharing
// one folder are tested in package sink); either one ends within 10
// seconds of SIGTERM.
func TestTwoRunsOnOneDataFolder(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	const n = 200
	dir := t.TempDir()
	bin := buildCitecrawl(t, dir)

	t.Run("both end", func(t *testing.T) {
		web, site, _ := chaosSite(t, n, time.Millisecond)
		data := filepath.Join(dir, "both", "data")
		var runs []*exec.Cmd
		var logs []*testkit.LogBuffer
		for i := range 2 {
			run := runCmd(bin, site.HubURLs(web.URL)[0], web.URL, data, filepath.Join(dir, "both", fmt.Sprint("out", i)))
			buf := &testkit.LogBuffer{}
			run.Stderr = buf
			if err := run.Start(); err != nil {
				t.Fatal(err)
			}
			runs, logs = append(runs, run), append(logs, buf)
		}
		for i, run := range runs {
			done := make(chan error, 1)
			go func() { done <- run.Wait() }()
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("run %d: %v\n%s", i+1, err, logs[i].String())
				}
			case <-time.After(3 * time.Minute):
				run.Process.Kill()
				t.Fatalf("run %d did not end in 3 minutes:\n%s", i+1, logs[i].String())
			}
		}
		lines0, ids := outLines(t, filepath.Join(dir, "both", "out0"))
		lines1, ids1 := outLines(t, filepath.Join(dir, "both", "out1"))
		for id, k := range ids1 {
			ids[id] += k
		}
		if lines := lines0 + lines1; lines != n || len(ids) != n {
			t.Fatalf("%d lines, %d distinct ids; want %d of each\nrun 1:\n%s\nrun 2:\n%s", lines, len(ids), n, logs[0].String(), logs[1].String())
		}
	})

	for _, first := range []int{0, 1} {
		t.Run(fmt.Sprintf("SIGTERM to run %d first", first+1), func(t *testing.T) {
			web, site, pages := chaosSite(t, 2000, 20*time.Millisecond)
			data, out := filepath.Join(dir, fmt.Sprint("term", first), "data"), filepath.Join(dir, fmt.Sprint("term", first), "out")
			var runs []*exec.Cmd
			var logs []*testkit.LogBuffer
			for i := range 2 {
				run := runCmd(bin, site.HubURLs(web.URL)[0], web.URL, data, out)
				buf := &testkit.LogBuffer{}
				run.Stderr = buf
				if err := run.Start(); err != nil {
					t.Fatal(err)
				}
				defer run.Process.Kill()
				runs, logs = append(runs, run), append(logs, buf)
				if i == 0 {
					waitFor(t, 60*time.Second, func() bool { return strings.Contains(buf.String(), "embedded NATS server") },
						func() string { return "the first run never started its server:\n" + buf.String() })
				}
			}
			waitFor(t, 60*time.Second, func() bool { return strings.Contains(logs[1].String(), "joined") && pages.Load() > 50 },
				func() string { return "the second run never joined, or nothing was fetched:\n" + logs[1].String() })
			for _, i := range []int{first, 1 - first} {
				done := make(chan error, 1)
				go func() { done <- runs[i].Wait() }()
				if err := runs[i].Process.Signal(syscall.SIGTERM); err != nil {
					t.Fatal(err)
				}
				select {
				case <-done:
				case <-time.After(10 * time.Second):
					t.Fatalf("run %d did not end within 10s of SIGTERM:\n%s", i+1, logs[i].String())
				}
			}
		})
	}
}

// outLines counts the lines and the distinct ids in out's sealed segments.
func outLines(t *testing.T, out string) (int, map[string]int) {
	t.Helper()
	ids := map[string]int{}
	lines := 0
	segs, _ := filepath.Glob(filepath.Join(out, "*", "seg-*.jsonl"))
	for _, seg := range segs {
		b, err := os.ReadFile(seg)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			var r struct {
				ID string `json:"id"`
			}
			if json.Unmarshal([]byte(line), &r) == nil && r.ID != "" {
				ids[r.ID]++
				lines++
			}
		}
	}
	return lines, ids
}
