package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/citecrawl/citecrawl/classify"
)

// A fit on a small hand-made gold file must find the cue that tells the
// labels apart, keep a cue the data never shows at 1, and write the
// weights back into the rule file with its comments in place.
func TestFitAndWrite(t *testing.T) {
	dir := t.TempDir()
	rules := filepath.Join(dir, "rules")
	files := map[string]string{
		"rules.yaml": "version: test\n",
		"roles.yaml": `# Roles for the test.
prior:
  background: 0.5

negated: drop

labels:
  uses:
    # What is taken over.
    "we use": 0.1
    "never seen": 0.3
  compares:
    "than": 0.2

sections:
  "method": {uses: 0.5} # methods use things
`,
		"polarity.yaml":  "prior: {neutral: 1}\nnegated: flip\nlabels: {}\n",
		"pluralism.yaml": "negated: drop\nlabels: {}\n",
	}
	if err := os.MkdirAll(rules, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(rules, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var gold strings.Builder
	for i := range 20 {
		fmt.Fprintf(&gold, "{\"text\":\"We use the parser of [%d].\",\"label\":\"Uses\"}\n", i)
		fmt.Fprintf(&gold, "{\"text\":\"Parsing was studied in [%d].\",\"label\":\"Background\"}\n", i)
		fmt.Fprintf(&gold, "{\"text\":\"Ours is faster than [%d].\",\"label\":\"CompareOrContrast\"}\n", i)
	}
	goldPath := filepath.Join(dir, "acl-arc", "dev.jsonl")
	if err := os.MkdirAll(filepath.Dir(goldPath), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(goldPath, []byte(gold.String()), 0o644); err != nil {
		t.Fatal(err)
	}

	r, err := classify.LoadRules(rules)
	if err != nil {
		t.Fatal(err)
	}
	exs, err := classify.ReadGold(goldPath, "acl-arc", classify.TaskRole)
	if err != nil {
		t.Fatal(err)
	}
	m := newModel(r.Role)
	sets := []dataset{m.dataset(r, classify.TaskRole, "acl-arc", exs)}
	o := options{lambda: 0.0001, balance: 1, size: 1, iters: 300}
	theta := m.fit(sets, nil, o)
	if err := m.write(filepath.Join(rules, "roles.yaml"), theta); err != nil {
		t.Fatal(err)
	}

	written, err := os.ReadFile(filepath.Join(rules, "roles.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, keep := range []string{"# Roles for the test.", "    # What is taken over.", "# methods use things", `"never seen": 1`} {
		if !strings.Contains(string(written), keep) {
			t.Errorf("written file lost %q:\n%s", keep, written)
		}
	}
	r2, err := classify.LoadRules(rules)
	if err != nil {
		t.Fatalf("written rules do not load: %v\n%s", err, written)
	}
	c := classify.New(r2)
	for text, want := range map[string]string{
		"We use the tagger of [7].":  "uses",
		"Tagging was studied in [7]": "background",
		"Ours is better than [7].":   "compares",
	} {
		if got := c.Context(text, "", nil).Role; got != want {
			t.Errorf("%q after the fit: %s, want %s\n%s", text, got, want, written)
		}
	}
	if got := m.macroF1(sets[0], theta, nil); got < 0.99 {
		t.Errorf("macro-F1 on the training rows %.3f, want 1", got)
	}
}
