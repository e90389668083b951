package classify

import (
	"crypto/sha256"
	"encoding/hex"
	"testing"

	"github.com/citecrawl/citecrawl/record"
)

// recordsDigest is the SHA-256 of the records Tag gives in digestRecords.
// TestTagsUnchanged's digest covers Context and Pluralism, not Tag's own
// path (a summary-only record's role read from its summary, the record's
// evidence in one array, one scratch for the record), which is what
// reprocess runs. It was printed by `go test ./classify -run
// TestRecordTagsUnchanged -v` on this file added to d294304, before
// tag13's changes to Tag, and replaced on purpose when rules or scoring
// change, as tagsDigest is.
const recordsDigest = "96a7eeab614d786d20dc9ddda76424c951cea9fe22bf405f9ea4b757edfce949"

// TestRecordTagsUnchanged tags records made of the labelled rows with Tag
// and compares their digest with the one recorded before Tag was sped up.
// Skipped when ../shared/data is absent.
func TestRecordTagsUnchanged(t *testing.T) {
	requireDigest(t, "records", digestRecords, recordsDigest)
}

// digestRecords tags with one Classifier, as reprocess does, a record per
// row of the pluralism file: its title and summary alone, and with the
// texts of three context rows as its citing sentences; and a record per
// fifth context row, with it as its one context. It hashes the tagged
// records as JSON.
func digestRecords(t *testing.T, c *Classifier) (string, int) {
	t.Helper()
	h := sha256.New()
	var contexts []Example
	var papers []Example
	for _, f := range digestFiles {
		path := sharedDataPath(t, f.file)
		exs, err := ReadGold(path, GuessFormat(path), f.task)
		if err != nil {
			t.Fatal(err)
		}
		if f.task == TaskPluralism {
			papers = append(papers, exs...)
		} else {
			contexts = append(contexts, exs...)
		}
	}
	n := 0
	tag := func(r *record.Record) {
		c.Tag(r)
		hashJSON(t, h, r)
		n++
	}
	for i, e := range papers {
		tag(&record.Record{ID: "p", Paper: record.Paper{Title: e.Title, Summary: e.Summary}})
		r := &record.Record{ID: "c", Paper: record.Paper{Title: e.Title, Summary: e.Summary}}
		for k := range 3 {
			x := contexts[(i*3+k)%len(contexts)]
			r.Contexts = append(r.Contexts, record.Context{Text: x.Text, Section: x.Section})
		}
		tag(r)
	}
	for i := 0; i < len(contexts); i += 5 {
		x := contexts[i]
		tag(&record.Record{ID: "x", Paper: record.Paper{Title: x.Title}, Contexts: []record.Context{{Text: x.Text, Section: x.Section}}})
	}
	return hex.EncodeToString(h.Sum(nil)), n
}
