package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// reprocess from a wrong --data (an empty one) refuses to replace the
// output, with exit 2, as often as it is asked; the output and its run
// reports stay; from the right --data it replaces it and keeps the run
// reports.
func TestReprocessRefusesAnEmptyGeneration(t *testing.T) {
	data, out := t.TempDir(), filepath.Join(t.TempDir(), "out")
	if code, _, stderr := runCLI(t, "run", "--offline", "--data", data, "--out", out); code != exitOK {
		t.Fatalf("run: %d\n%s", code, stderr)
	}
	segments := func(dir string) int {
		files, _ := filepath.Glob(filepath.Join(dir, "*", "seg-*.jsonl"))
		return len(files)
	}
	before := segments(out)
	for range 2 {
		code, _, stderr := runCLI(t, "reprocess", "--data", t.TempDir(), "--out", out, "--rules", "../../configs/rules")
		if code != exitUsage || !strings.Contains(stderr, "--allow-shrink") {
			t.Fatalf("reprocess from an empty --data: exit %d, want %d and a word on --allow-shrink\n%s", code, exitUsage, stderr)
		}
		if n := segments(out); n != before || n == 0 {
			t.Fatalf("the output has %d segments after a refused reprocess, had %d", n, before)
		}
		if _, err := os.Stat(out + ".prev"); !os.IsNotExist(err) {
			t.Fatalf("a refused reprocess made %s.prev (%v)", out, err)
		}
	}
	if code, _, stderr := runCLI(t, "reprocess", "--data", data, "--out", out, "--rules", "../../configs/rules"); code != exitOK {
		t.Fatalf("reprocess: exit %d\n%s", code, stderr)
	}
	if reports, _ := filepath.Glob(filepath.Join(out, "runs", "*.json")); len(reports) != 1 {
		t.Fatalf("run reports after reprocess: %v, want the run's", reports)
	}
}
