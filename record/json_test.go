package record

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"math"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"
)

// trickyRecords are records whose JSON is easy to get subtly wrong:
// HTML and line-separator characters, invalid UTF-8, control characters,
// floats at the edges of their formats, maps to sort, nil against empty
// slices, times with zones and nanoseconds.
func trickyRecords() []Record {
	one, novelty := 1, 4.25
	bg := 40
	base := Record{Schema: Schema, ID: "cc1-0", FetchedAt: time.Date(2026, 11, 30, 20, 13, 40, 954480919, time.UTC),
		Hub:   Hub{URL: "http://h/citations/x", ID: "x", Title: "Hub", CitedWorkIDs: []string{"arxiv:2402.05070"}},
		Paper: Paper{Title: "T", Novelty: &novelty, Refs: &one}, Contexts: []Context{}, SourceURLs: []string{}, Missing: []string{}}
	var out []Record
	for _, s := range []string{"", "<b>a & b</b>", "line\u2028sep\u2029para", "bad \xff\xfe utf-8", "ctl \x00\x01\x1f\x7f \t\n\r\"\\",
		"émigré 日本語 🙂", "\ufffd", strings1k()} {
		r := base
		r.Paper.Title, r.Paper.Summary = s, s+s
		r.Contexts = []Context{{Text: s, CiteSpan: []int{0, 3}, Evidence: []Evidence{{Label: "uses", Rule: "r", Cue: s, Weight: 0.1}}}}
		out = append(out, r)
	}
	for _, f := range []float64{0, 0.1, 1e-7, 1e-6, 123456789.125, 1e20, 1e21, -2.5e-9, math.MaxFloat64, math.SmallestNonzeroFloat64, 0.1 + 0.2} {
		r := base
		r.RoleConfidence, r.PolarityConfidence = f, -f
		r.Pluralism = &Pluralism{Primary: "none", Confidence: f, Labels: []string{"none"},
			Scores: map[string]float64{"z": f, "a": -f, "<&>": 1, "é": 2}, Evidence: []Evidence{}}
		out = append(out, r)
	}
	r := base
	r.Hub.Published = &HubCounts{CitingPapers: 5000, BackgroundPercent: &bg, Canonical: true,
		Facets: map[string]map[string]int{"years": {"2026": 1, "2024": 3}, "fields": {}, "b<": {"&": 1}}}
	r.FullText = &FullText{Status: FullTextOK, Score: 0.75, References: 3}
	r.Truncated = &Truncated{Contexts: 2}
	r.Gone = true
	out = append(out, r)
	r = base
	r.Contexts, r.SourceURLs, r.Missing = nil, nil, nil // null, not []
	r.FetchedAt = time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("x", 5*3600+1800))
	out = append(out, r, Record{})
	return out
}

func strings1k() string { return string(bytes.Repeat([]byte("ab<c>"), 200)) }

// Records are hashed (Fingerprint) and compared by their bytes, so the
// fast encoder must give exactly what encoding/json gives, and decode
// what encoding/json wrote to the same record.
func TestMarshalIsEncodingJSON(t *testing.T) {
	for i, r := range trickyRecords() {
		want, err := json.Marshal(&r)
		if err != nil {
			t.Fatal(err)
		}
		got, err := Marshal(&r)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("record %d:\nMarshal:       %s\nencoding/json: %s", i, got, want)
		}
		if line, _, err := MarshalLine(&r); err != nil || !bytes.Equal(line, append(want, '\n')) {
			t.Errorf("record %d:\nMarshalLine:   %s (%v)\nencoding/json: %s", i, line, err, want)
		}
		var back, stdBack Record
		if err := Unmarshal(want, &back); err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		if err := json.Unmarshal(want, &stdBack); err != nil {
			t.Fatal(err)
		}
		again, _ := json.Marshal(&back)
		stdAgain, _ := json.Marshal(&stdBack)
		if !bytes.Equal(again, stdAgain) {
			t.Errorf("record %d decodes differently:\nUnmarshal:     %s\nencoding/json: %s", i, again, stdAgain)
		}
	}
}

// A fingerprint is kept in the sink's state and in message ids across
// versions: this one was computed by encoding/json before Marshal.
func TestFingerprintIsStable(t *testing.T) {
	rs := trickyRecords()
	for i, want := range map[int]string{1: "50d137ea25e5fe31359afe93", 3: "9c8780479ca5a204d6c22eaa", 12: "ef59abb60fdd9df51b41fb51",
		19: "1cdaa1746176363f111fcc2c", 20: "671ea9bda303c136634d51f5"} {
		if got := rs[i].Fingerprint(); got != want {
			t.Errorf("record %d: fingerprint %s, want %s", i, got, want)
		}
	}
}

// MarshalLine hashes the line it encodes for the fingerprint, with the
// fields Fingerprint leaves out blanked in place: it must give what
// Fingerprint gives, whatever the strings and map keys hold (the names of
// those fields, quotes, the text it looks for).
func TestMarshalLineFingerprint(t *testing.T) {
	anchors := []string{`,"url":"x"`, `"},"contexts":[`, `,"full_text":{"url":"`, `,"reason":"r"`, `,"fetched_at":"x","source_urls":null`, `\",\"url\":\"`, `"`, `\`}
	var recs []Record
	for i, r := range trickyRecords() {
		recs = append(recs, r)
		for j, a := range anchors {
			r := r
			r.Hub.URL, r.Paper.URL, r.Paper.Title, r.Paper.Pith = "http://h/"+a, "", a, a
			r.SourceURLs = []string{a, "u"}
			r.Missing = []string{a}
			switch (i + j) % 4 {
			case 0:
				r.Paper.URL = "http://p/" + a
				r.FullText = &FullText{URL: "http://f/" + a, Status: FullTextOK, Reason: a, Entry: a}
			case 1:
				r.FullText = &FullText{Status: FullTextMissing, Reason: a}
			case 2:
				r.Paper.URL = a
				r.FullText = &FullText{URL: a, Status: FullTextNoMatch, Label: a}
			}
			r.Hub.Published = &HubCounts{Facets: map[string]map[string]int{"url": {a: 1}, "paper": {"title": 2}, "fetched_at": {}, "full_text": {"x": 1}, "reason": {"r": 1}}}
			r.Pluralism = &Pluralism{Primary: a, Scores: map[string]float64{"url": 1, "full_text": 2, "reason": 3, a: 4, "fetched_at": 5},
				Evidence: []Evidence{{Label: a, Rule: a, Cue: a}}}
			r.Contexts = []Context{{Text: a, Section: a, Evidence: []Evidence{{Cue: a}}}}
			recs = append(recs, r)
		}
	}
	for i, r := range recs {
		line, fp, err := MarshalLine(&r)
		if err != nil {
			t.Fatal(err)
		}
		if want := r.Fingerprint(); fp != want {
			t.Errorf("record %d: MarshalLine's fingerprint %s, Fingerprint %s: %s", i, fp, want, line)
		}
		if _, ok := FingerprintOfLine(line[:len(line)-1]); !ok && r.ID != "" {
			t.Errorf("record %d: its JSON was not read as a record's, so it was encoded twice: %s", i, line)
		}
	}
	// AppendLine: the same lines and fingerprints, one after another in
	// one buffer, which begins with something else.
	buf := []byte("before\n")
	for i, r := range recs {
		line, fp, _ := MarshalLine(&r)
		start := len(buf)
		var got string
		var err error
		if buf, got, err = AppendLine(buf, &r); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(buf[start:], line) || got != fp {
			t.Errorf("record %d: AppendLine gave %s (%s), MarshalLine %s (%s)", i, buf[start:], got, line, fp)
		}
	}
	if !bytes.HasPrefix(buf, []byte("before\n")) {
		t.Errorf("AppendLine changed what was in the buffer: %.20s", buf)
	}
}

func TestUnmarshalRefusesBadJSON(t *testing.T) {
	for _, b := range []string{``, `{`, `{"id": 3}`, `[]`, `{"id":"a"} x`, `{"contexts":[{"cite_span":"x"}]}`} {
		var r Record
		if err := Unmarshal([]byte(b), &r); err == nil {
			t.Errorf("%q decoded without an error", b)
		}
	}
}

// randomRecord fills each field of a record, or leaves it zero, nil or
// empty, at random, from values that are easy to encode wrongly.
func randomRecord(rng *rand.Rand) Record {
	strs := []string{"", "a", "<b>&amp;</b>", "q\"uo\\te", "\u2028\u2029", "bad \xff", "\xe2\x82", "ctl\x00\x1f\x7f\b\f", "émigré 🙂", "url", `","url":"`, "\ufffd"}
	floats := []float64{0, math.Copysign(0, -1), 0.5, 1e-7, 1e-6, 999999999999999999999, 1e21, -3.25e-10, 1.7976931348623157e308, 5e-324, 0.1 + 0.2, 123456.789, 0.1234, -12.3456, 1.005, 100}
	s := func() string { return strs[rng.IntN(len(strs))] }
	f := func() float64 { return floats[rng.IntN(len(floats))] }
	some := func() bool { return rng.IntN(2) == 0 }
	list := func() []string {
		switch rng.IntN(3) {
		case 0:
			return nil
		case 1:
			return []string{}
		}
		return []string{s(), s()}
	}
	evidence := func() []Evidence {
		switch rng.IntN(3) {
		case 0:
			return nil
		case 1:
			return []Evidence{}
		}
		return []Evidence{{Label: s(), Rule: s(), Cue: s(), Weight: f()}, {}}
	}
	intp := func() *int {
		if some() {
			return nil
		}
		n := rng.IntN(2000) - 1000
		return &n
	}
	r := Record{Schema: s(), ID: s(), Role: s(), RoleConfidence: f(), RoleSource: s(), RoleEvidence: evidence(), Polarity: s(),
		PolarityConfidence: f(), RulesVersion: s(), Gone: some(), SourceURLs: list(), Missing: list(),
		FetchedAt: time.Date(1990+rng.IntN(40), 1, 2, 3, 4, 5, rng.IntN(2)*123456789, time.FixedZone("z", 3600*(rng.IntN(5)-2)))}
	r.Hub = Hub{URL: s(), ID: s(), Title: s(), CitedWorkIDs: list()}
	if some() {
		facets := map[string]map[string]int{s(): nil, s(): {}, s(): {s(): 1, s(): -2, "z": 3}}
		if some() {
			facets = nil
		}
		r.Hub.Published = &HubCounts{CitingPapers: rng.IntN(100), BackgroundPercent: intp(), PolarityIndexing: some(), Facets: facets, Canonical: some()}
	}
	r.Paper = Paper{Title: s(), Summary: s(), Abstract: s(), Authors: list(), Arxiv: s(), Pith: s(), URL: s(), Categories: list(),
		Published: s(), Verdict: s(), Refs: intp()}
	if some() {
		x := f()
		r.Paper.Novelty = &x
	}
	if some() {
		r.Contexts = []Context{}
		for range rng.IntN(3) {
			var span []int
			if some() {
				span = []int{rng.IntN(50), rng.IntN(50)}
			}
			r.Contexts = append(r.Contexts, Context{Text: s(), Section: s(), Paragraph: s(), CiteSpan: span, Marker: s(), Role: s(),
				Polarity: s(), RoleConfidence: f(), PolarityConfidence: f(), Evidence: evidence()})
		}
	}
	if some() {
		var scores map[string]float64
		if some() {
			scores = map[string]float64{s(): f(), s(): f(), "none": f()}
		}
		r.Pluralism = &Pluralism{Primary: s(), Confidence: f(), Labels: list(), Scores: scores, Evidence: evidence()}
	}
	if some() {
		r.FullText = &FullText{URL: s(), Status: s(), Reason: s(), Entry: s(), Label: s(), Method: s(), Score: f(), References: rng.IntN(9), LinkedCitations: rng.IntN(9)}
	}
	if some() {
		r.Truncated = &Truncated{Contexts: rng.IntN(2), Sentences: rng.IntN(2)}
	}
	return r
}

// Every field, set or not, encodes as encoding/json encodes it, and the
// fingerprint is the hash of encoding/json's bytes of the record with the
// fields it leaves out blanked.
func TestMarshalIsEncodingJSONFieldByField(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 5000 {
		r := randomRecord(rng)
		want, err := json.Marshal(&r)
		if err != nil {
			t.Fatal(err)
		}
		got, err := Marshal(&r)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("record %d (%v):\nMarshal:       %s\nencoding/json: %s", i, err, got, want)
		}
		c := r
		c.FetchedAt, c.SourceURLs, c.Hub.URL, c.Paper.URL = time.Time{}, nil, "", ""
		if c.FullText != nil {
			ft := *c.FullText
			ft.URL, ft.Reason = "", ""
			c.FullText = &ft
		}
		blanked, _ := json.Marshal(&c)
		sum := sha256.Sum256(blanked)
		wantFP := hex.EncodeToString(sum[:12])
		if fp := r.Fingerprint(); fp != wantFP {
			t.Fatalf("record %d: Fingerprint %s, want %s: %s", i, fp, wantFP, want)
		}
		if _, fp, _ := MarshalLine(&r); fp != wantFP {
			t.Fatalf("record %d: MarshalLine's fingerprint %s, want %s: %s", i, fp, wantFP, want)
		}
	}
}

// What encoding/json cannot encode, Marshal refuses too, and AppendLine
// leaves the buffer as it was.
func TestMarshalRefusesWhatEncodingJSONRefuses(t *testing.T) {
	bad := []Record{{RoleConfidence: math.NaN()}, {Pluralism: &Pluralism{Scores: map[string]float64{"a": math.Inf(1)}}},
		{FetchedAt: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}}
	for i, r := range bad {
		if _, err := json.Marshal(&r); err == nil {
			t.Fatalf("record %d: encoding/json encoded it", i)
		}
		if b, err := Marshal(&r); err == nil {
			t.Errorf("record %d: Marshal gave %s, no error", i, b)
		}
		if b, _, err := AppendLine([]byte("x"), &r); err == nil || string(b) != "x" {
			t.Errorf("record %d: AppendLine gave %q, %v", i, b, err)
		}
	}
}

// taggedRecord is a record as reprocess writes it: 1.3 kB of JSON.
func taggedRecord() Record {
	r := trickyRecords()[1]
	r.Pluralism = &Pluralism{Primary: "steerable", Confidence: 0.661, Labels: []string{"steerable", "tradeoff_steerable"},
		Scores:   map[string]float64{"distributional": -0.639, "jury_pluralistic": -0.559, "multi_objective": -0.609, "none": 0.94, "overton": -1.419, "steerable": 2.59, "tradeoff_steerable": 1.36},
		Evidence: []Evidence{{Label: "steerable", Rule: "pluralism/cue", Cue: "value system", Weight: 1}, {Label: "tradeoff_steerable", Rule: "pluralism/cue", Cue: `re:\b(at|during) (inference|test|deployment)[- ]time\b`, Weight: 0.93}}}
	r.Role, r.RoleConfidence, r.RoleSource = RoleBackground, 0.5, RoleSourceSummary
	r.RoleEvidence = []Evidence{{Label: "background", Rule: "roles/summary-only-guess", Cue: "no citing sentence known: guessed from the paper's own summary"}, {Label: "uses", Rule: "roles/cue", Cue: "model", Weight: 0.67}}
	return r
}

// A tagged record's line and fingerprint: taggedRecord, whose text is
// mostly characters to escape, and reprocessedRecord, plain text as
// reprocess's tagged raw records have.
func BenchmarkAppendLine(b *testing.B) {
	for _, c := range []struct {
		name string
		r    Record
	}{{"tricky", taggedRecord()}, {"reprocessed", reprocessedRecord()}} {
		b.Run(c.name, func(b *testing.B) {
			var buf []byte
			b.ReportAllocs()
			for b.Loop() {
				buf, _, _ = AppendLine(buf[:0], &c.r)
			}
			b.SetBytes(int64(len(buf)))
		})
	}
}

// reprocessedRecord is rawRecord with tags as reprocess gives it (those
// of taggedRecord): 1.1 kB of JSON.
func reprocessedRecord() Record {
	r, t := rawRecord(), taggedRecord()
	r.Role, r.RoleConfidence, r.RoleSource, r.RoleEvidence, r.Pluralism = t.Role, t.RoleConfidence, t.RoleSource, t.RoleEvidence, t.Pluralism
	r.Polarity, r.PolarityConfidence, r.RulesVersion = PolarityNeutral, 0.52, "rules-7c62f30"
	return r
}

// Numbers of at most three decimals, written the quick way, are what
// strconv writes (encoding/json's way, between 1e-6 and 1e21).
func TestAppendMilliIsStrconv(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var e encoder
	check := func(f float64) {
		got := string(e.appendFloat(nil, f))
		if want := strconv.FormatFloat(f, 'f', -1, 64); got != want {
			t.Fatalf("%v: %s, strconv %s", f, got, want)
		}
	}
	for k := int64(-300_000); k <= 300_000; k++ {
		check(float64(k) / 1000)
	}
	for range 300_000 {
		k := rng.Int64N(2e16) - 1e16 // past 1e12, where the short way stops
		check(float64(k) / 1000)
		check(float64(k) / 1000 * (1 + 1e-15)) // not three decimals
		check(rng.Float64() * 1000)
	}
}

func BenchmarkUnmarshal(b *testing.B) { benchUnmarshal(b, taggedRecord()) }

// benchUnmarshal decodes r's JSON into a zeroed record, as reprocess
// decodes what it reads.
func benchUnmarshal(b *testing.B, r Record) {
	line, _ := Marshal(&r)
	b.ReportAllocs()
	b.SetBytes(int64(len(line)))
	for b.Loop() {
		var r Record
		if err := Unmarshal(line, &r); err != nil {
			b.Fatal(err)
		}
	}
}

// rawRecord is a record as the fetch stage publishes it and reprocess
// reads it from the stream: untagged, about 460 bytes of JSON (as
// scripts/rssbench generates them).
func rawRecord() Record {
	return Record{Schema: Schema, ID: ID("bench-hub-07", "1234"),
		Hub: Hub{ID: "bench-hub-07", Title: "A generated hub", CitedWorkIDs: []string{}},
		Paper: Paper{Title: "Jury learning: integrating dissenting voices into machine learning models",
			Summary:   "Aggregates individual annotator ratings with a jury to model disagreement between raters of different backgrounds, and lets a practitioner choose whose voices the classifier reflects.",
			Published: "2022-02-07", Categories: []string{"cs.HC"}},
		Contexts: []Context{}, SourceURLs: []string{}, Missing: []string{}}
}

// A raw record decoded as reprocess decodes it from the stream: into a
// zeroed record.
func BenchmarkUnmarshalRaw(b *testing.B) { benchUnmarshal(b, rawRecord()) }

// crawledRecord is a raw record as a crawl of pith.science with full
// texts publishes it: the hub's counts, the paper's metadata, text beyond
// ASCII, and two citing sentences; about 1.9 kB of JSON.
func crawledRecord() Record {
	novelty, refs, bg := 6.5, 48, 62
	return Record{Schema: Schema, ID: ID("667ba460-8f85-44de-abed-e988dbbf316b", "2502.01234"),
		Hub: Hub{URL: "https://pith.science/citations/667ba460-8f85-44de-abed-e988dbbf316b", ID: "667ba460-8f85-44de-abed-e988dbbf316b",
			Title: "A Roadmap to Pluralistic Alignment", CitedWorkIDs: []string{"arxiv:2402.05070"},
			Published: &HubCounts{CitingPapers: 412, BackgroundPercent: &bg, Facets: map[string]map[string]int{"years": {"2024": 130, "2025": 282}}}},
		Paper: Paper{Title: "Pluralistic Alignment Over Time: Learning Value Trade-offs from Jury Deliberation",
			Summary: "We study how a model can follow several value systems at once — steering to a chosen persona at inference time — and compare jury-based aggregation with distributional objectives (Søgaard et al.).",
			Authors: []string{"Ana Müller", "Jürgen Ødegaard", "Wei Zhang"},
			Arxiv:   "2502.01234", Pith: "c0ffee12", URL: "https://pith.science/papers/c0ffee12", Categories: []string{"cs.CL", "cs.AI"},
			Published: "2025-02-03", Verdict: "accepted", Novelty: &novelty, Refs: &refs},
		Contexts: []Context{
			{Text: "Following the taxonomy of Sorensen et al. [12], we distinguish Overton, steerable and distributional pluralism.", Section: "Related Work", Paragraph: "S2.p3", CiteSpan: []int{30, 34}, Marker: "linked"},
			{Text: "Unlike the roadmap's jury-pluralistic models [12], our method learns the trade-off weights from deliberation logs.", Section: "Method", Paragraph: "S4.p1", CiteSpan: []int{46, 50}, Marker: "linked"}},
		FullText:   &FullText{URL: "https://arxiv.org/html/2502.01234", Status: FullTextOK, Entry: "bib.bib12", Label: "[12]", Method: "arxiv", Score: 1, References: 48, LinkedCitations: 2},
		FetchedAt:  time.Date(2026, 11, 30, 20, 13, 40, 954480919, time.UTC),
		SourceURLs: []string{"https://pith.science/papers/c0ffee12", "https://arxiv.org/abs/2502.01234", "https://arxiv.org/html/2502.01234"}, Missing: []string{}}
}

// A crawled raw record (crawledRecord) decoded as the stages decode it.
func BenchmarkUnmarshalCrawled(b *testing.B) { benchUnmarshal(b, crawledRecord()) }

// safe8 passes over eight bytes only when each is one a JSON string holds
// as it is: every byte value at every place, among others.
func TestSafe8(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	check := func(s string) {
		want := true
		for i := range len(s) {
			want = want && s[i] < 0x80 && htmlSafe[s[i]] == 1
		}
		if got := safe8(s); got != want {
			t.Fatalf("safe8(%q) = %v", s, got)
		}
	}
	for c := range 256 {
		for at := range 8 {
			b := []byte("abcdefgh")
			b[at] = byte(c)
			check(string(b))
			b[(at+1)%8] = 0x20 // next to the edges of the ranges
			check(string(b))
			b[(at+1)%8] = 0x1f
			check(string(b))
		}
	}
	for range 1_000_000 {
		var b [8]byte
		for i := range b {
			b[i] = byte(0x20 + rng.IntN(0x60))
			if rng.IntN(16) == 0 {
				b[i] = byte(rng.IntN(256))
			}
		}
		check(string(b[:]))
	}
}

// A map of more scores than a record has is sorted too (another way).
func TestMarshalOfManyScores(t *testing.T) {
	r := trickyRecords()[0]
	r.Pluralism = &Pluralism{Scores: map[string]float64{}}
	for i := range 100 {
		r.Pluralism.Scores[strconv.Itoa(i*7919%1000)] = float64(i) / 8
	}
	want, _ := json.Marshal(&r)
	if got, err := Marshal(&r); err != nil || !bytes.Equal(got, want) {
		t.Errorf("Marshal:\n%s (%v)\nencoding/json:\n%s", got, err, want)
	}
}

// Scores whose keys are pluralism categories, any of them, are written
// as encoding/json writes them (the quick way, knownScores), and so are
// scores with one key more.
func TestMarshalOfKnownScores(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 16))
	if len(scoreKeys) != len(PluralismCategories) {
		t.Fatalf("scoreKeys has %d categories, the schema %d", len(scoreKeys), len(PluralismCategories))
	}
	for range 20000 {
		scores := map[string]float64{}
		for _, c := range PluralismCategories {
			if rng.IntN(3) > 0 {
				scores[c] = float64(rng.IntN(6000)-3000) / 1000
			}
		}
		if rng.IntN(10) == 0 {
			scores["zz"] = 1
		}
		r := Record{Pluralism: &Pluralism{Scores: scores}}
		got, err := Marshal(&r)
		if err != nil {
			t.Fatal(err)
		}
		if want, _ := json.Marshal(&r); !bytes.Equal(got, want) {
			t.Fatalf("Marshal gave\n%s\nencoding/json\n%s", got, want)
		}
	}
}
