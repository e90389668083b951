package pipeline

import (
	"context"
	"encoding/json"
	"os"
	"testing"
	"time"
)

// checkFor polls f until it returns nil or the deadline passes, in the
// manner of nats-server's tests.
func checkFor(t testing.TB, total time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(total)
	var err error
	for time.Now().Before(deadline) {
		if err = f(); err == nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("condition not met within %v: %v", total, err)
}

func readJSON(t testing.TB, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// startStages starts the named stages for a test, which stops them
// (before it closes their bus).
func startStages(t testing.TB, bus *Bus, cfg Config, env Env, names ...string) *Workers {
	t.Helper()
	w, err := StartStages(context.Background(), bus, cfg, names, env)
	if err != nil {
		t.Fatal(err)
	}
	return w
}
