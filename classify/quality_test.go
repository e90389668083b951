package classify

import (
	"os"
	"path/filepath"
	"testing"
)

// TestUnseenQuality guards the README's figure on the dev split the
// shipped role weights never saw: ACL-ARC dev (they were fitted on
// SciCite's and ACL-ARC's train files, SciCite dev and ACT, and only
// settings were chosen on it). SciCite dev names its sections, so its
// rows now fit the section weights, and ACT, Athar, clinical and
// pluralism have no train split: a dev figure there is no quality figure,
// and scripts/tune's TestCrossValidatedQuality guards their
// cross-validated figures instead. Skipped when ../shared/data is absent.
func TestUnseenQuality(t *testing.T) {
	c := testClassifier(t)
	for _, tc := range []struct {
		file, task string
		min        float64
	}{
		// Measured 0.559 (rules 2026.11.12). Its ECE is not guarded
		// here: the shipped calibration map was fitted on these rows
		// among others; scripts/tune's TestCrossValidatedQuality guards
		// the cross-fitted ECE.
		{"acl-arc/dev.jsonl", TaskRole, 0.55},
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
		t.Logf("%s %s: macro-F1 %.3f (floor %.2f)", tc.file, tc.task, r.MacroF1, tc.min)
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
