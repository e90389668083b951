package record

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"reflect"
	"strconv"
	"testing"
	"unsafe"

	gojson "github.com/goccy/go-json"
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

// A tagged record decoded without the tags' detail: BenchmarkUnmarshal's
// (tricky, mostly characters to escape) and reprocessedRecord, plain
// text, as reprocess reads a folder it wrote.
func BenchmarkUnmarshalUntagged(b *testing.B) {
	for _, c := range []struct {
		name string
		r    Record
	}{{"tricky", taggedRecord()}, {"reprocessed", reprocessedRecord()}} {
		b.Run(c.name, func(b *testing.B) {
			line, _ := Marshal(&c.r)
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
		})
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

// decoderLines are JSON for the hand-written decoder to read or give up
// on: Marshal's JSON (which it must read, or the tests would hold the
// other way to itself), spaced out, with members inserted (repeated,
// nulled, renamed, escaped, left-out fields malformed), damaged.
func decoderLines(t *testing.T) [][]byte {
	rng := rand.New(rand.NewPCG(9, 10))
	inserts := []string{`"role":"x",`, `"contexts":[],`, `"contexts":null,`, `"hub":{"id":"y"},`, `"pluralism":null,`, `"pluralism":{"primary":"p"},`,
		`"Schema":"x",`, `"scores":{"a":1,"a":2},`, `"facets":{"f":{"x":1},"f":null},`, `"evidence":[],`, `"evidence":[{"cue":"c"}],`, `"id":null,`,
		`"text":"\u00e9\/\ud83d\ude42",`, `"title":"\ud800",`, `"title":"a\u2028\"\\\b\f\n\r\t",`, `"cite_span":[1.5],`, `"refs":null,`, `"refs":1e2,`,
		`"novelty":-0,`, `"weight":1E400,`, `"gone":false,`, `"gone":true,`, `"fetched_at":"2026-01-02T03:04:05+01:00",`, `"fetched_at":null,`, "\"title\":\"\xff\",",
		`"url":"x" ,`, `"references":-0,`, `"labels":[null],`, `"truncated":{},`, `"truncated":{"contexts":1,"contexts":2},`, `"published":{"facets":null},`,
		`"role_evidence":,`, `"role_evidence":[1 2 {],`, `"evidence":[{"a":"]}\"{"}],`, `"scores":nul,`, `"scores":{"a":[}],`, `"role_evidence":"x\"",`,
		`"Evidence":[],`, `"role_Evidence":[],`, `"evidence":null,`, `"scores":null,`, `"role_evidence":null,`, `"refs":12,`, `"novelty":1.5e3,`,
		`"background_percent":7,`, `"canonical":true,`, `"polarity_indexing":false,`, `"cite_span":[],`, `"cite_span":[1,-2],`,
		`"evidence":[{"label":"a","label":"b","weight":-0}],`, `"evidence":[null],`, `"evidence":[{}],`, `"scores":{},`, `"scores":{"none":0.5,"x":-1e-7},`,
		`"weight":"1",`, `"gone":null,`, `"role_evidence":[{"rule":"r","cue":"\u00e9"}],`, `"scores":{"none":null},`}
	var lines [][]byte
	add := func(b []byte) { lines = append(lines, b) }
	records := append(trickyRecords(), reprocessedRecord())
	// Every label and role source, which the decoder does not copy.
	labels := append(append(append([]string{RoleSourceContext, RoleSourceSummary, Schema}, Roles...), Polarities...), PluralismCategories...)
	for _, l := range labels {
		r := reprocessedRecord()
		r.Schema, r.Role, r.RoleSource, r.Polarity, r.Pluralism.Primary, r.Pluralism.Labels = l, l, l, l, l, []string{l, l + "x"}
		r.Contexts = []Context{{Text: l, Role: l, Polarity: l, Marker: l}}
		records = append(records, r)
	}
	for range 3000 {
		records = append(records, randomRecord(rng))
	}
	for _, r := range records {
		b, err := Marshal(&r)
		if err != nil {
			t.Fatal(err)
		}
		add(b)
		for _, untagged := range []bool{false, true} {
			if untagged && r.Gone { // decoded whole, by the walk
				continue
			}
			var got Record
			d := decoder{b: b, ok: true, untagged: untagged}
			if d.record(&got); !d.ok {
				t.Fatalf("Marshal's JSON was not read by hand (untagged %v): %s", untagged, b)
			}
		}
		var indented bytes.Buffer
		json.Indent(&indented, b, "", " \t")
		add(indented.Bytes())
		// Something inserted where a member begins, in any object.
		for range 4 {
			from := rng.IntN(len(b))
			i := bytes.Index(b[from:], []byte(`,"`))
			if i < 0 {
				continue
			}
			at := from + i + 1
			add(append(append(append([]byte{}, b[:at]...), inserts[rng.IntN(len(inserts))]...), b[at:]...))
		}
		// A byte left out, or the JSON cut short.
		cut := rng.IntN(len(b))
		add(append(append([]byte{}, b[:cut]...), b[cut+1:]...))
		add(b[:cut])
	}
	for _, b := range []string{``, `null`, `{}`, ` {"id":"a"} `, `{"id":"a"} x`, `[]`, `{"id": 3}`, `{"contexts":[{"cite_span":"x"}]}`, `{"contexts":[null]}`,
		`{"hub":null}`, `{"source_urls":[1]}`, `{"id":"\u00"}`, `{"id":"\uzzzz"}`, `{"id":"a\u0000b"}`, `{"ID":"a"}`, `{"i\u0064":"a"}`, `{"fetched_at":"x"}`,
		`{"fetched_at":"2026-13-01T00:00:00Z"}`, `{"refs":01}`, `{"refs":-}`, `{"refs":1.}`, `{"role_confidence":.5}`, `{"role_confidence":+1}`,
		`{"role_confidence":1e}`, `{"refs":99999999999999999999}`, `{"gone":tru}`, `{"gone":nul}`, "{\"id\":\"a\tb\"}", `{"id":"a",}`, `{,}`, `{"id" "a"}`,
		`{"role_evidence":}`, `{"role_evidence":[}`, `{"pluralism":{"scores":{"a":1}}`, `{"id":"a\`, `{"id":"a\"`, `{"contexts":[{"evidence":"\\"}]}`} {
		add([]byte(b))
	}
	return lines
}

// The hand-written decoder, untagged, gives what the walk and
// goccy/go-json give, or gives up (decoderLines), also into a record that
// is not zero.
func TestUntaggedDecoderIsTheWalk(t *testing.T) {
	lines := decoderLines(t)
	var buf []byte
	for i, b := range lines {
		var got, want Record
		_, err := UnmarshalUntagged(b, &got, nil)
		var wantErr error
		buf, wantErr = unmarshalUntaggedWalk(b, &want, buf)
		if (err == nil) != (wantErr == nil) || err != nil && err.Error() != wantErr.Error() || !reflect.DeepEqual(got, want) {
			t.Fatalf("JSON %d: %s\nby hand: %+v (%v)\nwalked:  %+v (%v)", i, b, got, err, want, wantErr)
		}
	}
	// Into a record that is not zero: goccy/go-json's merging.
	for i, b := range lines[:300] {
		got, want := taggedRecord(), taggedRecord()
		_, err := UnmarshalUntagged(b, &got, nil)
		_, wantErr := unmarshalUntaggedWalk(b, &want, nil)
		if (err == nil) != (wantErr == nil) || !reflect.DeepEqual(got, want) {
			t.Fatalf("JSON %d into a tagged record: %s\nby hand: %+v (%v)\nwalked:  %+v (%v)", i, b, got, err, want, wantErr)
		}
	}
}

// Unmarshal, by hand, gives what goccy/go-json gives, or gives up on it
// (decoderLines), into a zero record.
func TestDecoderIsGoccy(t *testing.T) {
	for i, b := range decoderLines(t) {
		checkDecoderIsGoccy(t, b, i)
	}
}

// checkDecoderIsGoccy fails t unless b decodes by Unmarshal as it does
// by goccy/go-json: to the same record, or with the same error.
func checkDecoderIsGoccy(t *testing.T, b []byte, i int) {
	var got, want Record
	err := Unmarshal(b, &got)
	wantErr := gojson.Unmarshal(b, &want)
	if (err == nil) != (wantErr == nil) || err != nil && err.Error() != wantErr.Error() || !reflect.DeepEqual(got, want) {
		t.Fatalf("JSON %d: %q\nUnmarshal: %+v (%v)\ngoccy:     %+v (%v)", i, b, got, err, want, wantErr)
	}
}

// FuzzDecoderIsGoccy: go test ./record -run '^$' -fuzz FuzzDecoderIsGoccy
func FuzzDecoderIsGoccy(f *testing.F) {
	for _, r := range append(trickyRecords(), reprocessedRecord(), rawRecord()) {
		b, err := Marshal(&r)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) { checkDecoderIsGoccy(t, b, 0) })
}

// Unmarshal's strings are slices of one copy of its input, but for what
// the sink keeps of a record beyond it (its id, hub and tags, the paper's
// year among them), which would keep the whole input with them.
func TestUnmarshalKeepsOnlyTheRecordInItsInput(t *testing.T) {
	r := crawledRecord()
	r.Role, r.RoleSource, r.Polarity, r.RulesVersion = "a-role-of-a-later-schema", "x", "y", "rules-7c62f30"
	r.Pluralism = &Pluralism{Primary: "z", Labels: []string{}, Scores: map[string]float64{}, Evidence: []Evidence{}}
	b, err := Marshal(&r)
	if err != nil {
		t.Fatal(err)
	}
	var got Record
	if err := Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	at := func(s string) uintptr { return uintptr(unsafe.Pointer(unsafe.StringData(s))) }
	input := at(got.Paper.Title) - uintptr(bytes.Index(b, []byte(got.Paper.Title)))
	in := func(s string) bool { return s != "" && at(s) >= input && at(s) < input+uintptr(len(b)) }
	if !in(got.Paper.Summary) || !in(got.Contexts[0].Text) {
		t.Fatal("the paper's summary and the contexts are not slices of the input: this test tells nothing")
	}
	kept := map[string]string{"id": got.ID, "hub url": got.Hub.URL, "hub id": got.Hub.ID, "hub title": got.Hub.Title,
		"cited work": got.Hub.CitedWorkIDs[0], "published": got.Paper.Published, "role": got.Role, "role source": got.RoleSource,
		"polarity": got.Polarity, "pluralism": got.Pluralism.Primary, "rules version": got.RulesVersion}
	for facet := range got.Hub.Published.Facets {
		kept["facet"] = facet
	}
	for name, s := range kept {
		if in(s) {
			t.Errorf("the %s is a slice of the input", name)
		}
	}
}

// Numbers of up to 15 digits, read the quick way, are what strconv reads.
func TestDecimalIsStrconv(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	check := func(s string) {
		want, err := strconv.ParseFloat(s, 64)
		if got, ok := decimal([]byte(s)); ok && (err != nil || math.Float64bits(got) != math.Float64bits(want)) {
			t.Fatalf("%s: %v, strconv %v (%v)", s, got, want, err)
		}
	}
	for _, s := range []string{"0", "-0", "-0.0", "0.1", "0.3", "123456789012345", "0.000000000000001", "99999999999999.9", "1.005", "2.59", "-1.419"} {
		check(s)
	}
	for range 1_000_000 {
		digits := 1 + rng.IntN(15)
		m := rng.Int64N(int64(math.Pow10(digits)))
		s := strconv.FormatInt(m, 10)
		if d := rng.IntN(len(s) + 1); d < len(s) {
			s = s[:d] + "." + s[d:]
			if d == 0 {
				s = "0" + s
			}
		}
		if rng.IntN(2) == 0 {
			s = "-" + s
		}
		check(s)
	}
}

// stringEnd, eight bytes at a time, ends a string where reading it byte by
// byte does, and plainEnd stops where it does: quotes, backslashes,
// control characters and bytes beyond ASCII at every place, cut short
// anywhere.
func TestStringEndIsBytewise(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	alphabet := []byte("ab\"\\\x00\x1f\x20\x7f\x80\xff\x22\x5c\xa2\xdc ")
	for range 200_000 {
		b := make([]byte, 1+rng.IntN(40))
		b[0] = '"'
		for i := 1; i < len(b); i++ {
			b[i] = alphabet[rng.IntN(len(alphabet))]
			if rng.IntN(3) > 0 {
				b[i] = 'a'
			}
		}
		if got, want := stringEnd(b, 0), stringEndBytewise(b, 0); got != want {
			t.Fatalf("%q: %d, byte by byte %d", b, got, want)
		}
		want := 1
		for want < len(b) && b[want] != '"' && b[want] != '\\' && b[want] >= 0x20 && b[want] < 0x80 {
			want++
		}
		if got := plainEnd(b, 1); got != want {
			t.Fatalf("%q: plainEnd %d, byte by byte %d", b, got, want)
		}
	}
}

// stringEndBytewise is stringEnd read a byte at a time: the index after
// the closing quote of the string whose opening quote is b[q], or -1.
func stringEndBytewise(b []byte, q int) int {
	if q >= len(b) || b[q] != '"' {
		return -1
	}
	for i := q + 1; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return -1
}

// valueEnd, passing over strings eight bytes at a time, ends a value where
// reading it byte by byte does: nested, escaped, cut short anywhere.
func TestValueEndIsBytewise(t *testing.T) {
	stringEnd := stringEndBytewise
	bytewise := func(b []byte, i int) int {
		switch b[i] {
		case '"':
			return stringEnd(b, i)
		case '{', '[':
			depth := 0
			for i < len(b) {
				switch b[i] {
				case '"':
					if i = stringEnd(b, i); i < 0 {
						return -1
					}
					continue
				case '{', '[':
					depth++
				case '}', ']':
					if depth--; depth == 0 {
						return i + 1
					}
				}
				i++
			}
			return -1
		}
		for i < len(b) {
			switch b[i] {
			case ',', '}', ']', ' ', '\t', '\r', '\n':
				return i
			}
			i++
		}
		return i
	}
	rng := rand.New(rand.NewPCG(17, 18))
	alphabet := []byte(`"\{}[]ab,: `)
	for range 300_000 {
		b := make([]byte, 1+rng.IntN(60))
		for i := range b {
			b[i] = 'a'
			if rng.IntN(3) == 0 {
				b[i] = alphabet[rng.IntN(len(alphabet))]
			}
		}
		b[0] = "{[\"a"[rng.IntN(4)]
		if got, want := valueEnd(b, 0), bytewise(b, 0); got != want {
			t.Fatalf("%q: %d, byte by byte %d", b, got, want)
		}
	}
}
