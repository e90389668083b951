package classify

import (
	"os"
	"path/filepath"
	"testing"
)

// TestDevQuality guards the figures the README states, on the development
// splits in ../shared/data (skipped when absent).
func TestDevQuality(t *testing.T) {
	c := testClassifier(t)
	for _, tc := range []struct {
		file, task string
		min        float64
	}{
		{"scicite/dev.jsonl", TaskIntent, 0.70},
		{"acl-arc/dev.jsonl", TaskRole, 0.50},
		{"act-3c/dev.csv", TaskRole, 0.30},
		{"athar/dev.tsv", TaskPolarity, 0.60},
		{"clinical/dev.jsonl", TaskPolarity, 0.62},
	} {
		path := sharedDataPath(t, tc.file)
		exs, err := ReadGold(path, GuessFormat(path), tc.task)
		if err != nil {
			t.Fatal(err)
		}
		r := c.Evaluate(tc.task, exs, 0)
		if r.MacroF1 < tc.min {
			t.Errorf("%s %s: macro-F1 %.3f fell below %.2f", tc.file, tc.task, r.MacroF1, tc.min)
		}
		t.Logf("%s %s: macro-F1 %.3f (target %.2f)", tc.file, tc.task, r.MacroF1, tc.min)
		if tc.task == TaskPluralism && r.Extra["pluralism_vs_none_accuracy"] < 0.90 {
			t.Errorf("pluralism versus none accuracy %.3f fell below 0.90", r.Extra["pluralism_vs_none_accuracy"])
		}
	}
}

func sharedDataPath(t *testing.T, rel string) string {
	t.Helper()
	p := filepath.Join("..", "..", "shared", "data", rel)
	if !exists(p) {
		t.Skipf("labelled data %s is absent: this test reads ../shared/data, never a copy", rel)
	}
	return p
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
