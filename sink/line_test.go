package sink

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/citecrawl/citecrawl/record"
)

// A record's JSON as the stages publish it parses into the Line encoding
// the record gives: the same bytes, fingerprint, id, hub and tags, through
// one parser, whichever hub the record before had (or none). A field
// TagsOf reads that lineFields lacks fails it.
func TestLineParserGivesLineOfTheRecord(t *testing.T) {
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
	// Hubs in turn: a, a again (with its counts), a, a, b, none, a.
	recs = append([]*record.Record{recs[1]}, append(recs, &noHub, recs[1])...)
	var p LineParser
	for _, r := range recs {
		want, err := LineOf(r)
		if err != nil {
			t.Fatal(err)
		}
		got, err := p.Parse(data(t, r), want.Fingerprint)
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
	for _, bad := range []string{``, `{"id":`, `{"id":"a"} x`, `[]`, `{"id":"a","contexts":[{"text":"x}]}`, `{"hub":{"id":"c","url":`, string(indented)} {
		if _, err := p.Parse([]byte(bad), "0123"); err == nil {
			t.Errorf("Parse(%.40q) took it for a line", bad)
		}
	}
	for _, none := range []string{`{"id":"x","hub":null}`, `{"id":"x"}`} {
		if _, err := p.Parse(data(t, recs[0]), "0123"); err != nil {
			t.Fatal(err)
		}
		if l, err := p.Parse([]byte(none), "0123"); err != nil || !reflect.DeepEqual(l.Hub, record.Hub{}) {
			t.Errorf("%s parsed to hub %+v (%v), want none", none, l.Hub, err)
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
