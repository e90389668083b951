package pipeline

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"

	"github.com/citecrawl/citecrawl/ingest"
	"github.com/citecrawl/citecrawl/ingest/snapshot"
)

// closedAddr is a loopback address nothing listens on: connections to it
// are refused.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// A run whose every configured hub refuses connections ends with
// ErrHubsUnreachable naming the host, its hub tasks dead letters rather
// than left queued for the next run.
func TestRunEndsWhenNoHubCanBeReached(t *testing.T) {
	a, b := closedAddr(t), closedAddr(t)
	cfg := testConfig(t, t.TempDir(), []string{
		"http://" + a + "/citations/11111111-2222-3333-4444-555555555555",
		"http://" + b + "/citations/66666666-7777-8888-9999-000000000000",
	})
	cfg.Stages.MaxDeliver = 100 // only giving up on unreachable hubs ends this run soon
	bus := openBus(t, cfg)
	defer bus.Close()
	res, err := Run(context.Background(), bus, cfg, testEnv())
	if !errors.Is(err, ErrHubsUnreachable) || !strings.Contains(err.Error(), "cannot reach 127.0.0.1") {
		t.Fatalf("err = %v, want ErrHubsUnreachable naming the host", err)
	}
	if res == nil || len(res.DeadLetters) != 2 {
		t.Fatalf("result %+v: want both hub tasks as dead letters", res)
	}
	for _, d := range res.DeadLetters {
		if !strings.Contains(d.Error, "connection refused") {
			t.Errorf("dead letter reason %q", d.Error)
		}
	}
	if busy, err := consumerBusy(context.Background(), bus, StreamTasks, ConsumerFetch); err != nil || busy {
		t.Errorf("hub tasks left queued (busy %v, %v)", busy, err)
	}
}

// One unreachable hub beside one that answers is retried as usual: the
// run is not ended, and the unreachable hub becomes a dead letter only
// after its deliveries.
func TestRunKeepsRetryingWhenAHubAnswers(t *testing.T) {
	site := snapshot.Default()
	web := startSite(t, site)
	hubs := append(site.HubURLs(web.URL)[:1], "http://"+closedAddr(t)+"/citations/11111111-2222-3333-4444-555555555555")
	cfg := testConfig(t, t.TempDir(), hubs)
	cfg.FullText.ArxivBase = web.URL
	bus := openBus(t, cfg)
	defer bus.Close()
	res, err := Run(context.Background(), bus, cfg, testEnv())
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if len(res.DeadLetters) != 1 || res.DeadLetters[0].Deliveries != "2" || res.Written == 0 {
		t.Fatalf("want the unreachable hub parked after its 2 deliveries and the other written: %+v", res)
	}
	if n := KnownRecords(context.Background(), bus, hubs); n != int(res.Written) {
		t.Errorf("KnownRecords = %d, want the %d records the answering hub listed", n, res.Written)
	}
}

func TestHubWatch(t *testing.T) {
	refused := &ingest.UnreachableError{Host: "h", Err: errors.New("connection refused")}
	w := newHubWatch("run", []string{"a", "b"})
	if w.observe(Task{RunID: "run", URL: "a"}, refused) || w.err() != nil {
		t.Fatal("one of two hubs unreachable ended the run")
	}
	if w.observe(Task{RunID: "other", URL: "b"}, refused) || w.observe(Task{RunID: "run", URL: "b", Depth: 1}, refused) {
		t.Fatal("a task of another run or a discovered hub counted")
	}
	if w.observe(Task{RunID: "run", URL: "b"}, errors.New("timeout")) {
		t.Fatal("a timeout counted as unreachable")
	}
	if !w.observe(Task{RunID: "run", URL: "b"}, refused) || !errors.Is(w.err(), ErrHubsUnreachable) {
		t.Fatal("both hubs unreachable did not end the run")
	}
	if w.observe(Task{RunID: "run", URL: "a"}, nil) || w.err() != nil {
		t.Fatal("a hub reached again still counted as unreachable")
	}
	var none *hubWatch
	if none.observe(Task{RunID: "run", URL: "a"}, refused) || none.err() != nil {
		t.Fatal("a worker without a run's watch gave up")
	}
}
