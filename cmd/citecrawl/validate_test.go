package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Every option and flag is checked before anything starts: a bad value
// exits 2 naming the option and what it accepts, and no data folder or
// server is created. Each of these was accepted, or failed late with the
// broker's raw text, before.
func TestBadValuesExitTwoBeforeStarting(t *testing.T) {
	const hub = "https://pith.science/citations/667ba460-8f85-44de-abed-e988dbbf316b"
	for _, tc := range []struct {
		args []string
		says []string
	}{
		{[]string{"run", "--set", "fetch.delay=-1s"}, []string{"fetch.delay", "0 or more"}},
		{[]string{"run", "--set", "fetch.host_delays=arxiv.org=-3s"}, []string{"fetch.host_delays", "arxiv.org"}},
		{[]string{"run", "--set", "fetch.retries=-1"}, []string{"fetch.retries", "at least 0"}},
		{[]string{"run", "--set", "fetch.timeout=0s"}, []string{"fetch.timeout", "more than 0"}},
		{[]string{"run", "--set", "fetch.max_redirects=-2"}, []string{"fetch.max_redirects", "at least 0"}},
		{[]string{"run", "--set", "fetch.backoff_max=1ms"}, []string{"fetch.backoff_max", "fetch.backoff_base"}},
		{[]string{"run", "--set", "fetch.user_agent="}, []string{"fetch.user_agent"}},
		{[]string{"run", "--set", "fetch.allow_addresses=localhost"}, []string{"fetch.allow_addresses", "localhost"}},
		{[]string{"run", "--set", "lease_ttl=0s"}, []string{"lease_ttl", "more than 0"}},
		{[]string{"run", "--set", "discover.depth=-1"}, []string{"discover.depth", "at least 0"}},
		{[]string{"run", "--set", "discover.max_pages=-1"}, []string{"discover.max_pages", "at least 0"}},
		{[]string{"run", "--set", "stages.backoff=0s"}, []string{"stages.backoff", "more than 0"}},
		{[]string{"run", "--set", "stages.max_pending_publishes=0"}, []string{"stages.max_pending_publishes", "at least 1"}},
		{[]string{"run", "--set", "stages.sink_durable=a.b"}, []string{"stages.sink_durable", `"a.b"`, "letters, digits"}},
		{[]string{"run", "--set", "sink.segment_max_bytes=0"}, []string{"sink.segment_max_bytes", "at least 1"}},
		{[]string{"run", "--set", "nats.replicas=5"}, []string{"nats.replicas", "embedded server is one server"}},
		{[]string{"run", "--set", "nats.replicas=7", "--nats", "nats://127.0.0.1:1"}, []string{"nats.replicas", "from 1 to 5"}},
		{[]string{"reprocess", "--set", "nats.embedded_process=true"}, []string{"nats.embedded_process", "auto, always or never"}},
		{[]string{"run", "--set", "nats.retain_records=-1h"}, []string{"nats.retain_records"}},
		{[]string{"run", "--nats-tls-cert", "c.pem"}, []string{"nats.tls_cert and nats.tls_key"}},
		{[]string{"run", "--nats-tls-ca", "no-such-ca.pem"}, []string{"nats.tls_ca", "no-such-ca.pem"}},
		{[]string{"run", "--nats-listen", "0.0.0.0:4222"}, []string{"nats.listen", "nats.token"}},
		{[]string{"run", "--metrics-listen", "nine"}, []string{"metrics.listen", "host:port"}},
		{[]string{"run", "--progress", "bogus"}, []string{"--progress", "bogus", "auto, on or off"}},
		{[]string{"run", "--hub", ""}, []string{"-hub", "empty"}},
		{[]string{"run", "--set", "hubs="}, []string{"hubs", "no hub"}},
		{[]string{"run", "--hub", "file:///citations/667ba460-8f85-44de-abed-e988dbbf316b"}, []string{"hubs", "file:///citations/", "http and https"}},
		{[]string{"run", "--hub", "ftp://pith.science/citations/667ba460-8f85-44de-abed-e988dbbf316b"}, []string{"hubs", "ftp://pith.science", "http and https"}},
		{[]string{"run", "--set", "full_text.arxiv_base=file:///srv/arxiv"}, []string{"full_text.arxiv_base", "file:///srv/arxiv"}},
		{[]string{"worker", "--stage", "sink", "--set", "stages.sink_durable=my sink"}, []string{"stages.sink_durable"}},
		{[]string{"tail", "--format", "xml"}, []string{"--format", "xml", "json, table or auto"}},
		{[]string{"tail", "--durable", "a.b"}, []string{"--durable", "a.b"}},
		{[]string{"tail", "--role", "praises"}, []string{"--role", "praises", "background"}},
		{[]string{"tail", "--polarity", "angry"}, []string{"--polarity", "angry", "supporting"}},
		{[]string{"tail", "--pluralism", "everything"}, []string{"--pluralism", "everything", "overton"}},
		{[]string{"report", "--hub", hub, "--format", "pdf"}, []string{"--format", "pdf", "md, html or json"}},
		{[]string{"healthcheck"}, []string{"healthcheck", "URL"}},
		{[]string{"tail", "--hub", ""}, []string{"--hub is empty"}},
		{[]string{"worker", "--stage", "fetch,bogus"}, []string{"--stage", "bogus"}},
		{[]string{"reprocess", "--workers", "0"}, []string{"--workers", "at least 1"}},
		{[]string{"snapshot", "--listen", "8080"}, []string{"--listen", "host:port"}},
	} {
		data := filepath.Join(t.TempDir(), "data")
		code, _, stderr := runCLI(t, append(tc.args, "--data", data)...)
		if tc.args[0] == "report" || tc.args[0] == "healthcheck" || tc.args[0] == "snapshot" {
			code, _, stderr = runCLI(t, tc.args...)
		}
		if code != exitUsage {
			t.Errorf("%q: exit %d, want %d\n%s", tc.args, code, exitUsage, stderr)
		}
		for _, s := range tc.says {
			if !strings.Contains(stderr, s) {
				t.Errorf("%q: stderr does not say %q:\n%s", tc.args, s, stderr)
			}
		}
		if _, err := os.Stat(data); err == nil {
			t.Errorf("%q: the data folder was created before the value was refused", tc.args)
		}
	}
}

// More replicas than the server can hold is refused after connecting, as a
// usage error naming nats.replicas, not with the server's placement text.
func TestReplicasOverClusterSize(t *testing.T) {
	ns := startNATS(t, t.TempDir())
	code, _, stderr := runCLI(t, "worker", "--stage", "fetch", "--nats", ns.ClientURL(), "--set", "nats.replicas=5")
	if code != exitUsage || !strings.Contains(stderr, "nats.replicas is 5") || !strings.Contains(stderr, "not part of a cluster") {
		t.Fatalf("exit %d, want %d naming nats.replicas:\n%s", code, exitUsage, stderr)
	}
}

// citecrawl healthcheck URL: exit 0 on 200, 1 otherwise.
func TestHealthcheckCommand(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/readyz" {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	if code, _, stderr := runCLI(t, "healthcheck", srv.URL+"/readyz"); code != exitOK {
		t.Errorf("200: exit %d: %s", code, stderr)
	}
	if code, _, stderr := runCLI(t, "healthcheck", srv.URL+"/other"); code != exitFailed || !strings.Contains(stderr, "503") {
		t.Errorf("503: exit %d: %s", code, stderr)
	}
	if code, _, _ := runCLI(t, "healthcheck", "http://127.0.0.1:1/readyz"); code != exitFailed {
		t.Errorf("nothing listening: exit %d", code)
	}
}

// classify --max-line-bytes: a longer line is an error naming it, the
// lines after it are still tagged, blank lines are skipped.
func TestClassifyLineLimit(t *testing.T) {
	in := `{"id":"a","context":"We use the parser of [3]."}` + "\n\n" +
		`{"id":"big","context":"` + strings.Repeat("word ", 100) + `"}` + "\n" +
		`{"id":"b","context":"Unlike [2], we succeed."}` + "\n"
	var out, errb strings.Builder
	code := cli{stdin: strings.NewReader(in), stdout: &out, stderr: &errb}.main([]string{"classify", "--max-line-bytes", "200"})
	if code != exitFailed || !strings.Contains(errb.String(), "line 3") || !strings.Contains(errb.String(), "--max-line-bytes") {
		t.Fatalf("exit %d, stderr %s", code, errb.String())
	}
	if lines := strings.Split(strings.TrimSpace(out.String()), "\n"); len(lines) != 2 || !strings.Contains(lines[1], `"id":"b"`) {
		t.Fatalf("output:\n%s", out.String())
	}
	if code, _, stderr := runCLI(t, "classify", "--max-line-bytes", "0"); code != exitUsage || !strings.Contains(stderr, "--max-line-bytes") {
		t.Fatalf("--max-line-bytes 0: exit %d %s", code, stderr)
	}
}

// eval refuses, with exit 2, a gold file with no rows or of another task.
func TestEvalRefusesMisfitGold(t *testing.T) {
	dir := t.TempDir()
	empty, polarity := filepath.Join(dir, "empty.jsonl"), filepath.Join(dir, "clinical.jsonl")
	os.WriteFile(empty, nil, 0o644)
	os.WriteFile(polarity, []byte(`{"text":"x","label":"NEUTRAL"}`+"\n"), 0o644)
	for _, args := range [][]string{
		{"eval", "--task", "role", "--format", "acl-arc", "--gold", empty},
		{"eval", "--task", "role", "--gold", polarity},
	} {
		code, _, stderr := runCLI(t, args...)
		if code != exitUsage || !strings.Contains(stderr, "gold file") {
			t.Errorf("%q: exit %d, stderr %s", args, code, stderr)
		}
	}
}

// run --metrics-listen serves the metrics for the length of the run.
func TestRunServesMetrics(t *testing.T) {
	code, _, stderr := runCLI(t, "run", "--offline", "--data", t.TempDir(), "--out", t.TempDir(), "--metrics-listen", "127.0.0.1:0")
	if code != exitOK || !strings.Contains(stderr, "serving /metrics, /healthz and /readyz") {
		t.Fatalf("exit %d:\n%s", code, stderr)
	}
}

// A shorter ack wait alone is accepted: the segment age left at its
// default follows it. Both set and inconsistent is refused, naming both.
func TestAckWaitAloneIsCoherent(t *testing.T) {
	for _, wait := range []string{"1s", "3s", "5s", "10s", "2m"} {
		o := newOptions("run", io.Discard, brokerFlags|outFlag)
		cfg, err := o.load([]string{"--set", "stages.ack_wait=" + wait}, nil)
		if err != nil {
			t.Errorf("stages.ack_wait=%s: %v", wait, err)
			continue
		}
		if cfg.Sink.SegmentMaxAge >= cfg.Stages.AckWait {
			t.Errorf("stages.ack_wait=%s: segment age %s is not shorter", wait, cfg.Sink.SegmentMaxAge)
		}
	}
	o := newOptions("run", io.Discard, brokerFlags|outFlag)
	_, err := o.load([]string{"--set", "stages.ack_wait=3s", "--set", "sink.segment_max_age=4s"}, nil)
	if err == nil || !strings.Contains(err.Error(), "sink.segment_max_age") || !strings.Contains(err.Error(), "stages.ack_wait") {
		t.Fatalf("ack wait 3s with segments of 4s: %v", err)
	}
}
