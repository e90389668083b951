package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// A run that leaves a dead letter says so; the next run says dead letters
// are kept; `dead list` shows it with its reason, `dead replay` queues it
// again and empties the list.
func TestDeadListAndReplay(t *testing.T) {
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.NotFound(w, r)
	}))
	defer web.Close()
	data := t.TempDir()
	run := []string{"run", "--hub", web.URL + "/citations/deadbeef-0000", "--data", data, "--out", t.TempDir(),
		"--set", "fetch.delay=0s", "--set", "fetch.allow_addresses=127.0.0.1"}
	if code, _, stderr := runCLI(t, run...); code != exitFailed || !strings.Contains(stderr, "citecrawl dead replay") {
		t.Fatalf("run: exit %d, stderr:\n%s", code, stderr)
	}

	code, stdout, stderr := runCLI(t, "dead", "list", "--data", data, "--stage", "fetch", "--reason", "404")
	if code != exitOK || !strings.Contains(stdout, "citecrawl.tasks.hub.") || !strings.Contains(stdout, "404") || !strings.Contains(stderr, "1 dead letters") {
		t.Fatalf("dead list: exit %d\n%s\n%s", code, stdout, stderr)
	}
	if code, stdout, _ := runCLI(t, "dead", "list", "--data", data, "--stage", "sink"); code != exitOK || strings.Contains(stdout, "404") {
		t.Fatalf("dead list --stage sink: exit %d, listed another stage's letter:\n%s", code, stdout)
	}
	if code, _, stderr := runCLI(t, run...); !strings.Contains(stderr, "dead letters from earlier runs") {
		t.Fatalf("a run over earlier dead letters did not mention them: exit %d\n%s", code, stderr)
	}

	code, stdout, stderr = runCLI(t, "dead", "replay", "--data", data, "--reason", "404")
	if code != exitOK || !strings.Contains(stdout, "replayed 2 dead letters") {
		t.Fatalf("dead replay: exit %d\n%s\n%s", code, stdout, stderr)
	}
	if _, _, stderr := runCLI(t, "dead", "list", "--data", data); !strings.Contains(stderr, "0 dead letters") {
		t.Fatalf("dead letters left after the replay:\n%s", stderr)
	}
}

func TestDeadRefusesBadUsage(t *testing.T) {
	for _, args := range [][]string{{"dead"}, {"dead", "show"}, {"dead", "list", "--stage", "parse"}, {"dead", "list", "--format", "xml"}} {
		if code, _, stderr := runCLI(t, args...); code != exitUsage || stderr == "" {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 with a message", args, code, stderr)
		}
	}
}
