package record

import (
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"testing"
)

// withoutTagDetail is r as UnmarshalUntagged should give it: without the
// evidence and pluralism scores, unless it is gone.
func withoutTagDetail(r Record) Record {
	if r.Gone {
		return r
	}
	r.RoleEvidence = nil
	if r.Contexts != nil {
		r.Contexts = append([]Context{}, r.Contexts...)
		for i := range r.Contexts {
			r.Contexts[i].Evidence = nil
		}
	}
	if r.Pluralism != nil {
		p := *r.Pluralism
		p.Evidence, p.Scores = nil, nil
		r.Pluralism = &p
	}
	return r
}

// Decoded without the tags' detail, a record is the record decoded whole
// less that detail, whatever its fields hold (texts that look like the
// fields left out, a facet named evidence) and however its JSON is spaced.
func TestUnmarshalUntaggedLeavesOutOnlyTheTagsDetail(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	records := trickyRecords()
	lookalike := taggedRecord()
	lookalike.Paper.Title = `","evidence":[{"label":"x"}],"scores":{"a":1},"gone":true,"x":"`
	lookalike.Contexts = []Context{{Text: `\"evidence\":[`, Evidence: []Evidence{{Label: "uses", Cue: `a "quoted" \ cue]}`}}}}
	lookalike.Hub.Published = &HubCounts{Facets: map[string]map[string]int{"evidence": {"a": 1}, "scores": {"b": 2}}}
	records = append(records, lookalike)
	for range 5000 {
		records = append(records, randomRecord(rng))
	}
	var buf []byte
	for i, r := range records {
		compact, err := Marshal(&r)
		if err != nil {
			t.Fatal(err)
		}
		spaced, err := json.MarshalIndent(&r, " ", "\t")
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range [][]byte{compact, spaced} {
			var whole, got Record
			if err := Unmarshal(line, &whole); err != nil {
				t.Fatalf("record %d: %v", i, err)
			}
			if buf, err = UnmarshalUntagged(line, &got, buf); err != nil {
				t.Fatalf("record %d: %v\n%s", i, err, line)
			}
			if want := withoutTagDetail(whole); !reflect.DeepEqual(got, want) {
				t.Fatalf("record %d decoded as\n%+v\nwant\n%+v\nfrom %s", i, got, want, line)
			}
		}
	}
}

func TestUnmarshalUntaggedRefusesBadJSON(t *testing.T) {
	for _, b := range []string{``, `{`, `{"id": 3}`, `[]`, `{"id":"a"} x`, `{"contexts":[{"cite_span":"x"}]}`,
		`{"contexts":[{"evidence":[}]}`, `{"pluralism":{"scores":{"a":1}`, `{"role_evidence":"x`} {
		var r Record
		if _, err := UnmarshalUntagged([]byte(b), &r, nil); err == nil {
			t.Errorf("%q decoded without an error", b)
		}
	}
}

// BenchmarkUnmarshal's tagged record, decoded without the tags' detail.
func BenchmarkUnmarshalUntagged(b *testing.B) {
	r := taggedRecord()
	line, _ := Marshal(&r)
	var buf []byte
	b.ReportAllocs()
	b.SetBytes(int64(len(line)))
	for b.Loop() {
		var r Record
		var err error
		if buf, err = UnmarshalUntagged(line, &r, buf); err != nil {
			b.Fatal(err)
		}
	}
}

// Damaged JSON (cut short, a byte left out) is an error or a record,
// never a panic or a walk past the end; what it decodes to whole, the
// walk decodes to as well, less the tags' detail.
func TestUnmarshalUntaggedOfDamagedJSON(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	var buf []byte
	for range 300 {
		r := randomRecord(rng)
		line, err := Marshal(&r)
		if err != nil {
			t.Fatal(err)
		}
		for range 40 {
			cut := rng.IntN(len(line))
			damaged := append(append([]byte{}, line[:cut]...), line[cut+1:]...)
			if rng.IntN(2) == 0 {
				damaged = line[:cut]
			}
			var got, whole Record
			buf, err = UnmarshalUntagged(damaged, &got, buf)
			if Unmarshal(damaged, &whole) == nil && err == nil {
				if want := withoutTagDetail(whole); !reflect.DeepEqual(got, want) {
					t.Fatalf("%s decoded as\n%+v\nwant\n%+v", damaged, got, want)
				}
			}
		}
	}
}
