package sink

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/citecrawl/citecrawl/record"
)

// A record's JSON as the stages publish it parses into the Line encoding
// the record gives: the same bytes, fingerprint, id, hub and tags.
func TestParseLineGivesLineOfTheRecord(t *testing.T) {
	bg := 40
	recs := append(testRecords(3, "hub-a"), testRecords(1, "hub-b")...)
	recs[0].Hub.Published = &record.HubCounts{CitingPapers: 3, BackgroundPercent: &bg,
		Facets: map[string]map[string]int{"years": {"2024": 2, "2025": 1}}}
	recs[0].Hub.CitedWorkIDs = []string{"arxiv:2402.05070"}
	recs[1].Pluralism, recs[1].Paper.Published = nil, ""
	recs[2].Gone, recs[2].RulesVersion = true, "2026.11.14"
	recs[2].Contexts = []record.Context{{Text: "Unlike \"quoted\" [3],\nwe \u2028 differ.", Role: record.RoleCompares,
		Evidence: []record.Evidence{{Label: record.RoleCompares, Cue: "unlike", Weight: 1.5}}}}
	recs[2].Paper.Summary = "role: results, polarity: positive" // the names of tags, in text
	noHub := *recs[3]
	noHub.Hub = record.Hub{}
	for _, r := range append(recs, &noHub) {
		want, err := LineOf(r)
		if err != nil {
			t.Fatal(err)
		}
		got, err := ParseLine(data(t, r), want.Fingerprint)
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
}

// What ParseLine would write as it came, and must not: not JSON, not one
// line, JSON that no record decodes from (a reader of the hub would trip
// on it), another schema's, no id, or a fingerprint that is not of these
// bytes (a stale header would write a new version under an old one's key,
// and the seal would drop it as already written).
func TestParseLineRefusesWhatIsNotTheRecordsLine(t *testing.T) {
	r := testRecords(1, "hub-a")[0]
	good, fp, err := record.MarshalLine(r)
	if err != nil {
		t.Fatal(err)
	}
	good = good[:len(good)-1]
	if _, err := ParseLine(good, fp); err != nil {
		t.Fatalf("the record's own line: %v", err)
	}
	changed := *r
	changed.Role = record.RoleCompares
	indented, _ := json.MarshalIndent(r, "", " ")
	field := func(name, value string) []byte { // good with one field's value replaced
		s := string(good)
		i := strings.Index(s, `"`+name+`":`)
		if i < 0 {
			t.Fatalf("no field %s in %s", name, s)
		}
		i += len(name) + 3
		end := i + strings.IndexAny(s[i:], ",}")
		if s[i] == '{' {
			end = i + strings.Index(s[i:], "}") + 1
		}
		return []byte(s[:i] + value + s[end:])
	}
	for name, b := range map[string][]byte{
		"empty":             nil,
		"cut":               good[:len(good)/2],
		"trailing":          append(append([]byte{}, good...), " x"...),
		"an array":          []byte(`[]`),
		"indented":          indented,
		"authors a string":  field("paper", `{"authors":"x"}`),
		"contexts a string": field("contexts", `"x"`),
		"fetched_at a word": field("fetched_at", `"yesterday"`),
		"another schema":    field("schema", `"citecrawl.record/v2"`),
		"no id":             field("id", `""`),
		"raw invalid UTF-8": field("title", "\"Paper \xff\""),
		"changed":           data(t, &changed),
	} {
		// Each given its own bytes' fingerprint, so that only the check
		// the case is about can refuse it; the changed record keeps the
		// fingerprint of the one before.
		given := fp
		if own, ok := record.FingerprintOfLine(b); ok && name != "changed" {
			given = own
		}
		if _, err := ParseLine(b, given); err == nil {
			t.Errorf("%s: ParseLine took %.60q for the line of fingerprint %s", name, b, given)
		}
	}
}

// data is a record's JSON, as a tagged message's data.
func data(t *testing.T, r *record.Record) []byte {
	t.Helper()
	b, err := record.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
