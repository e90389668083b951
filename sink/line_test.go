package sink

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/citecrawl/citecrawl/record"
)

// A record's JSON as the stages publish it parses into the Line encoding
// the record gives: the same bytes, fingerprint, id, hub and tags. A field
// TagsOf reads that lineFields lacks fails it.
func TestParseLineIsLineOfTheRecord(t *testing.T) {
	bg := 40
	recs := testRecords(3, "hub-a")
	recs[0].Hub.Published = &record.HubCounts{CitingPapers: 3, BackgroundPercent: &bg,
		Facets: map[string]map[string]int{"years": {"2024": 2, "2025": 1}}}
	recs[0].Hub.CitedWorkIDs = []string{"arxiv:2402.05070"}
	recs[1].Pluralism, recs[1].Paper.Published = nil, ""
	recs[2].Gone, recs[2].RulesVersion = true, "2026.11.14"
	recs[2].Contexts = []record.Context{{Text: "Unlike \"quoted\" [3],\nwe \u2028 differ.", Role: record.RoleCompares,
		Evidence: []record.Evidence{{Label: record.RoleCompares, Cue: "unlike", Weight: 1.5}}}}
	recs[2].Paper.Summary = "role: results, polarity: positive" // the names of tags, in text
	for _, r := range recs {
		want, err := LineOf(r)
		if err != nil {
			t.Fatal(err)
		}
		data, err := record.Marshal(r) // a tagged message's data
		if err != nil {
			t.Fatal(err)
		}
		got, err := ParseLine(data, want.Fingerprint)
		if err != nil {
			t.Fatalf("record %s: %v", r.ID, err)
		}
		if !bytes.Equal(got.JSON, want.JSON) {
			t.Errorf("record %s: JSON\n%s\nwant\n%s", r.ID, got.JSON, want.JSON)
		}
		got.JSON, want.JSON = nil, nil
		if !reflect.DeepEqual(got, want) {
			t.Errorf("record %s: line\n%+v\nwant\n%+v", r.ID, got, want)
		}
		if want.Tags != TagsOf(r) || want.Fingerprint != r.Fingerprint() {
			t.Errorf("record %s: LineOf gives tags %+v and fingerprint %s, want %+v and %s", r.ID, want.Tags, want.Fingerprint, TagsOf(r), r.Fingerprint())
		}
	}
	indented, _ := json.MarshalIndent(recs[0], "", " ")
	for _, bad := range []string{``, `{"id":`, `{"id":"a"} x`, `[]`, `{"id":"a","contexts":[{"text":"x}]}`, string(indented)} {
		if _, err := ParseLine([]byte(bad), "0123"); err == nil {
			t.Errorf("ParseLine(%.40q) took it for a line", bad)
		}
	}
}
