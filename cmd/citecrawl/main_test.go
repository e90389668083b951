package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/citecrawl/citecrawl/ingest/snapshot"
	"github.com/citecrawl/citecrawl/record"
)

func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := cli{stdout: &out, stderr: &errb, environ: nil}.main(args)
	return code, out.String(), errb.String()
}

// `citecrawl run --offline --out -` crawls the bundled snapshot through the
// embedded NATS and prints one JSON line per citing paper.
func TestRunOfflineToStdout(t *testing.T) {
	code, stdout, stderr := runCLI(t, "run", "--offline", "--data", t.TempDir(), "--out", "-", "--rules", "../../configs/rules")
	if code != exitOK {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	ids := map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(stdout))
	for sc.Scan() {
		var r record.Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("stdout line %q: %v", sc.Text(), err)
		}
		ids[r.ID] = true
	}
	if want := snapshot.Default().DistinctPapers(); len(ids) != want {
		t.Fatalf("%d records on stdout, want %d\n%s", len(ids), want, stderr)
	}
	if !strings.Contains(stderr, "records written") {
		t.Fatalf("no run summary on stderr: %s", stderr)
	}
}

func TestRunExitsNonZeroOnDeadLetters(t *testing.T) {
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.NotFound(w, r)
	}))
	defer web.Close()
	code, _, stderr := runCLI(t, "run", "--hub", web.URL+"/citations/deadbeef-0000", "--data", t.TempDir(), "--out", t.TempDir(),
		"--set", "fetch.delay=0s")
	if code != exitFailed || !strings.Contains(stderr, "dead letter from fetch") || !strings.Contains(stderr, "404") {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr)
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"frobnicate"},
		{"run", "--set", "fetch.delay=soon"},
		{"run", "--hub", "https://pith.science/not-a-hub", "--data", "", "--nats", ""},
		{"worker"},
		{"run", "--log-format", "xml"},
	} {
		code, _, stderr := runCLI(t, args...)
		if code != exitUsage && code != exitFailed {
			t.Errorf("%v: exit %d, want non-zero", args, code)
		}
		if stderr == "" {
			t.Errorf("%v: no message on stderr", args)
		}
	}
}

// Two offline runs (each serving the snapshot on a new port, each starting
// the embedded server anew on the same data) leave each record once.
func TestRunOfflineTwiceWritesOnce(t *testing.T) {
	data, out := t.TempDir(), t.TempDir()
	for i := range 2 {
		code, _, stderr := runCLI(t, "run", "--offline", "--data", data, "--out", out)
		if code != exitOK {
			t.Fatalf("run %d: exit %d\n%s", i+1, code, stderr)
		}
		if i == 1 && !strings.Contains(stderr, ": 0 records written") {
			t.Fatalf("second run wrote records again:\n%s", stderr)
		}
	}
}
