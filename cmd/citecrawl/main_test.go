package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/citecrawl/citecrawl/classify"
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
		"--set", "fetch.delay=0s", "--set", "fetch.allow_addresses=127.0.0.1")
	if code != exitFailed || !strings.Contains(stderr, "dead letter from fetch") || !strings.Contains(stderr, "404") {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr)
	}
}

// Every usage error exits 2 and says what is wrong, naming the input.
func TestUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		says string
	}{
		{[]string{}, "Usage"},
		{[]string{"frobnicate"}, "frobnicate"},
		{[]string{"run", "--set", "fetch.delay=soon"}, "fetch.delay"},
		{[]string{"run", "--set", "no.such=1"}, "no.such"},
		{[]string{"run", "--hub", "https://pith.science/not-a-hub"}, "not-a-hub"},
		{[]string{"run", "--data", "", "--nats", ""}, "nats.data_dir"},
		{[]string{"run", "--log-format", "xml"}, "xml"},
		{[]string{"run", "--log-level", "loud"}, "loud"},
		{[]string{"run", "--schedule", "0 0 * * funday"}, "funday"},
		{[]string{"run", "--progress", "sometimes"}, "sometimes"},
		{[]string{"run", "--offline", "--hub", "https://pith.science/citations/667ba460-8f85-44de-abed-e988dbbf316b"}, "--offline"},
		{[]string{"run", "extra"}, "extra"},
		{[]string{"run", "--config", "no-such-file.yaml"}, "no-such-file.yaml"},
		{[]string{"worker"}, "--stage"},
		{[]string{"worker", "--stage", "fetch", "--hub", "https://pith.science/citations/667ba460-8f85-44de-abed-e988dbbf316b"}, "-hub"},
		{[]string{"worker", "--stage", "fetch", "--offline"}, "-offline"},
		{[]string{"tail", "--out", "x"}, "-out"},
		{[]string{"tail", "--rules", "x"}, "-rules"},
		{[]string{"tail", "--hub", "nope"}, "nope"},
		{[]string{"tail", "--hub", "667ba460-not-a-uuid"}, "667ba460-not-a-uuid"},
		{[]string{"tail", "--since", "yesterday"}, "yesterday"},
		{[]string{"reprocess", "--hub", "x"}, "-hub"},
		{[]string{"reprocess", "--out", "-"}, "--out"},
		{[]string{"report"}, "--hub"},
		{[]string{"report", "--hub", "nope"}, "nope"},
		{[]string{"report", "--hub", "667ba460-8f85-44de-abed-e988dbbf316b", "extra"}, "extra"},
		{[]string{"snapshot", "--port", "1"}, "-port"},
		{[]string{"snapshot", "extra"}, "extra"},
		{[]string{"tail", "--min-confidence", "2"}, "--min-confidence"},
		{[]string{"report", "--hub", "667ba460-8f85-44de-abed-e988dbbf316b", "--min-confidence", "-1"}, "--min-confidence"},
		{[]string{"reprocess", "--min-confidence", "1.5"}, "--min-confidence"},
	} {
		code, _, stderr := runCLI(t, tc.args...)
		if code != exitUsage {
			t.Errorf("%v: exit %d, want %d\n%s", tc.args, code, exitUsage, stderr)
		}
		if !strings.Contains(stderr, tc.says) {
			t.Errorf("%v: stderr does not say %q:\n%s", tc.args, tc.says, stderr)
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
		// The second run says why it wrote nothing.
		nothingNew := fmt.Sprintf("nothing new: %d records already written", snapshot.Default().DistinctPapers())
		if strings.Contains(stderr, "nothing new") != (i == 1) || i == 1 && !strings.Contains(stderr, nothingNew) {
			t.Fatalf("run %d: want %q on the second run only:\n%s", i+1, nothingNew, stderr)
		}
	}
}

// After an offline crawl: report and reprocess work from the command line.
func TestReportAndReprocessCommands(t *testing.T) {
	data, out := t.TempDir(), t.TempDir()+"/out"
	if code, _, stderr := runCLI(t, "run", "--offline", "--data", data, "--out", out); code != exitOK {
		t.Fatalf("run: %d\n%s", code, stderr)
	}
	code, stdout, stderr := runCLI(t, "report", "--hub", snapshot.RoadmapHubID, "--out", out, "--format", "html")
	if code != exitOK || !strings.Contains(stdout, "<svg") || !strings.Contains(stdout, "A Roadmap to Pluralistic Alignment") {
		t.Fatalf("report: exit %d\n%s", code, stderr)
	}
	code, stdout, stderr = runCLI(t, "reprocess", "--data", data, "--out", out, "--rules", "../../configs/rules")
	if code != exitOK || !strings.Contains(stdout, "records re-tagged") {
		t.Fatalf("reprocess: exit %d\n%s\n%s", code, stdout, stderr)
	}
	// A hub's uuid in capitals names the same hub.
	if code, stdout, stderr := runCLI(t, "report", "--hub", strings.ToUpper(snapshot.RoadmapHubID), "--out", out); code != exitOK || !strings.Contains(stdout, "A Roadmap to Pluralistic Alignment") {
		t.Fatalf("report --hub in capitals: exit %d\n%s", code, stderr)
	}
	if code, _, _ := runCLI(t, "report", "--hub", "nope", "--out", out); code == exitOK {
		t.Fatal("report of an unknown hub succeeded")
	}
}

// classify streams JSON lines: tags added, unknown fields kept, order
// kept, a malformed line reported by number with a non-zero exit.
func TestClassifyCommand(t *testing.T) {
	in := `{"id":"a","context":"We use the parser of [3].","keep":1}
{"id":"b","title":"Jury Learning","summary":"Models individual annotators and their disagreement with juries."}
not json
{"id":"c"}
{"id":"d","context":"Unlike [2], we succeed.","title":"Pareto fronts","summary":"Evaluates several objectives at once."}
`
	var out, errb bytes.Buffer
	code := cli{stdin: strings.NewReader(in), stdout: &out, stderr: &errb}.main([]string{"classify", "--rules", "../../configs/rules"})
	if code != exitFailed {
		t.Fatalf("exit %d with malformed lines", code)
	}
	if !strings.Contains(errb.String(), "line 3") || !strings.Contains(errb.String(), "line 4") {
		t.Fatalf("errors do not name the lines: %s", errb.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d output lines, want 3:\n%s", len(lines), out.String())
	}
	var a, b, d map[string]any
	json.Unmarshal([]byte(lines[0]), &a)
	json.Unmarshal([]byte(lines[1]), &b)
	json.Unmarshal([]byte(lines[2]), &d)
	if a["id"] != "a" || a["role"] != "uses" || a["keep"] != float64(1) || a["evidence"] == nil || a["rules_version"] == nil || a["role_confidence"] == nil {
		t.Errorf("context line: %v", a)
	}
	if b["id"] != "b" || b["pluralism"].(map[string]any)["primary"] != "jury_pluralistic" || b["role"] != nil {
		t.Errorf("paper line: %v", b)
	}
	if d["id"] != "d" || d["role"] == nil || d["pluralism"] == nil {
		t.Errorf("both kinds: %v", d)
	}
}

func TestEvalCommand(t *testing.T) {
	gold := t.TempDir() + "/acl-arc.jsonl"
	os.WriteFile(gold, []byte(`{"text":"We use the parser of Smith (2001).","label":"Uses"}
{"text":"Parsing has been studied (e.g. Smith, 2001).","label":"Background"}
`), 0o644)
	code, stdout, stderr := runCLI(t, "eval", "--task", "role", "--gold", gold, "--format", "acl-arc", "--rules", "../../configs/rules")
	if code != exitOK || !strings.Contains(stdout, "macro-F1 1.000") || !strings.Contains(stdout, "confusion") ||
		!strings.Contains(stdout, "expected calibration error") || !strings.Contains(stdout, "0.9-1.0") {
		t.Fatalf("eval: exit %d\n%s\n%s", code, stdout, stderr)
	}
	if code, _, stderr := runCLI(t, "eval", "--task", "role", "--gold", gold, "--format", "xml"); code != exitUsage || !strings.Contains(stderr, "xml") {
		t.Fatalf("bad format: exit %d %s", code, stderr)
	}

	// --errors lists the wrongly labelled rows with their cues.
	os.WriteFile(gold, []byte(`{"text":"We use the parser of Smith (2001).","label":"Future"}
{"text":"Parsing has been studied (e.g. Smith, 2001).","label":"Background"}
`), 0o644)
	code, stdout, stderr = runCLI(t, "eval", "--task", "role", "--gold", gold, "--format", "acl-arc", "--rules", "../../configs/rules", "--errors", "5")
	if code != exitOK || !strings.Contains(stdout, "line 1: gold future, predicted uses") || !strings.Contains(stdout, `uses "we use"`) || strings.Contains(stdout, "line 2:") {
		t.Fatalf("eval --errors: exit %d\n%s\n%s", code, stdout, stderr)
	}
	code, stdout, _ = runCLI(t, "eval", "--task", "role", "--gold", gold, "--format", "acl-arc", "--rules", "../../configs/rules", "--errors", "5", "--json")
	var rep struct {
		MacroF1     float64            `json:"macro_f1"`
		Mistakes    []classify.Mistake `json:"mistakes"`
		ECE         *float64           `json:"ece"`
		Reliability []classify.Bin     `json:"reliability"`
	}
	if err := json.Unmarshal([]byte(stdout), &rep); code != exitOK || err != nil || len(rep.Mistakes) != 1 || rep.Mistakes[0].Line != 1 || len(rep.Mistakes[0].Evidence) == 0 ||
		rep.ECE == nil || len(rep.Reliability) != 10 {
		t.Fatalf("eval --errors --json: exit %d, %v\n%s", code, err, stdout)
	}
}

// --hub takes a hub's uuid or its /citations/ URL, read by ingest.HubID.
func TestHubFlagValues(t *testing.T) {
	const id = "667ba460-8f85-44de-abed-e988dbbf316b"
	for _, v := range []string{id, strings.ToUpper(id), "https://pith.science/citations/" + id, "https://www.pith.science/citations/" + strings.ToUpper(id) + "?x=1"} {
		if got, err := hubID(v); err != nil || got != id {
			t.Errorf("%q: %q, %v; want %q", v, got, err, id)
		}
	}
}
