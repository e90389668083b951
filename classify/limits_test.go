package classify

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/citecrawl/citecrawl/record"
)

// A line over the limit is reported by number and skipped; the lines after
// it are still tagged; blank lines are skipped silently; lines longer than
// the old scanner's buffer are read when the limit allows them.
func TestStreamLineLimit(t *testing.T) {
	c := testClassifier(t)
	long := `{"id":"long","context":"We use [1]. ` + strings.Repeat("x ", 40_000) + `"}`
	in := strings.Join([]string{
		`{"id":"a","context":"We use the parser of [3]."}`,
		"",
		"   \t",
		long,
		`{"id":"b","context":"Unlike [2], we succeed."}`,
	}, "\n") // no newline at the end: the last line counts too
	type badLine struct {
		line int
		err  string
	}
	var bad []badLine
	var out bytes.Buffer
	n, err := StreamWith(c, strings.NewReader(in), &out, StreamOptions{MaxLineBytes: 1000, MaxEvidence: 5}, func(line int, err error) {
		bad = append(bad, badLine{line, err.Error()})
	})
	if err != nil || n != 1 || len(bad) != 1 || bad[0].line != 4 || !strings.Contains(bad[0].err, "over the limit of 1000 bytes") {
		t.Fatalf("n=%d err=%v bad=%+v, want line 4 refused as too long", n, err, bad)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], `"id":"a"`) || !strings.Contains(lines[1], `"id":"b"`) {
		t.Fatalf("output:\n%s", out.String())
	}

	// With room for it, the 80 kB line is tagged (bufio.Scanner's default
	// buffer would have stopped at 64 kB).
	out.Reset()
	n, err = StreamWith(c, strings.NewReader(long+"\n"), &out, StreamOptions{MaxLineBytes: 1 << 20, MaxEvidence: 5}, func(line int, err error) {
		t.Errorf("line %d: %v", line, err)
	})
	if err != nil || n != 0 || !strings.Contains(out.String(), `"role":"uses"`) {
		t.Fatalf("long line: n=%d err=%v", n, err)
	}
}

// Evidence is capped per label, however many cues a text repeats.
func TestStreamCapsEvidence(t *testing.T) {
	c := testClassifier(t)
	text := strings.Repeat("We use the parser of [1]. We adopt the method of [1]. We build on [1]. ", 50)
	in, _ := json.Marshal(map[string]string{"id": "x", "context": text})
	var out bytes.Buffer
	if _, err := StreamWith(c, bytes.NewReader(in), &out, StreamOptions{MaxLineBytes: 1 << 20, MaxEvidence: 3}, func(int, error) {}); err != nil {
		t.Fatal(err)
	}
	var got struct{ Evidence []record.Evidence }
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	perLabel := map[string]int{}
	for _, e := range got.Evidence {
		perLabel[e.Label]++
	}
	if len(got.Evidence) == 0 {
		t.Fatal("no evidence at all")
	}
	for l, n := range perLabel {
		if n > 3 {
			t.Errorf("%d evidence entries for %s, want at most 3", n, l)
		}
	}
}

// eval refuses a gold file that does not fit the task or the format, or
// that holds no rows for the task.
func TestReadGoldRefusesMisfits(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name, format, task, body, says string
	}{
		{"empty.jsonl", "acl-arc", TaskRole, "", "no rows"},
		{"blank.jsonl", "acl-arc", TaskRole, "\n\n", "no rows"},
		{"scicite-nopolarity.jsonl", "scicite", TaskPolarity, `{"string":"x","label":"method"}` + "\n", "no rows"},
		{"scicite-as-role.jsonl", "scicite", TaskRole, `{"string":"x","label":"method"}` + "\n", `"method" is not a role label`},
		{"aclarc-as-polarity.jsonl", "acl-arc", TaskPolarity, `{"text":"x","label":"Uses"}` + "\n", `"uses" is not a polarity label`},
		{"pluralism-as-role.jsonl", "pluralism", TaskRole, `{"title":"t","primary":"overton"}` + "\n", "not a role label"},
		{"athar-as-pluralism.tsv", "athar", TaskPluralism, "A\tB\to\t\"x\"\n", "not a pluralism label"},
	} {
		p := filepath.Join(dir, tc.name)
		writeFile(t, p, tc.body)
		_, err := ReadGold(p, tc.format, tc.task)
		if err == nil || !strings.Contains(err.Error(), tc.says) || !strings.Contains(err.Error(), p) {
			t.Errorf("%s: err = %v, want it to name the file and say %q", tc.name, err, tc.says)
		}
	}
	p := filepath.Join(dir, "ok.jsonl")
	writeFile(t, p, `{"text":"x","label":"Uses"}`+"\n")
	if exs, err := ReadGold(p, "acl-arc", TaskRole); err != nil || len(exs) != 1 {
		t.Fatalf("a fitting file: %v, %d rows", err, len(exs))
	}
}
