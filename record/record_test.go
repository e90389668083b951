package record

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestIDIsStableAndNormalised(t *testing.T) {
	a := ID("hub-1", "Title:  A Study")
	if a != ID("hub-1", "title a study") {
		t.Fatal("the same paper key written differently gave different ids")
	}
	if a == ID("hub-2", "title a study") {
		t.Fatal("the same paper on two hubs got one id")
	}
}

// NormaliseKey and ID are what they were when they lower-cased the whole
// key first and hashed a concatenation: ids stored before stay the ids.
func TestNormaliseKeyIsUnchanged(t *testing.T) {
	was := func(s string) string {
		var b strings.Builder
		space := false
		for _, r := range strings.ToLower(s) {
			if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r > 127 {
				if space && b.Len() > 0 {
					b.WriteByte(' ')
				}
				space = false
				b.WriteRune(r)
				continue
			}
			space = true
		}
		return b.String()
	}
	for _, k := range []string{"", "  ", "Title:  A Study", "pith:NO2DCVEM4WV3G34NQHJBW2WTFM", "arxiv:2402.05070v2",
		"\u212a\u0130STANBUL \u1e9e \u00c9T\u00c9", "bad \xff\xfe bytes", "\uFFFD", "--a--", "\u00a0nbsp\u2028x", strings.Repeat("Long title ", 40)} {
		if got, want := NormaliseKey(k), was(k); got != want {
			t.Errorf("NormaliseKey(%q) = %q, was %q", k, got, want)
		}
		sum := sha256.Sum256([]byte("hub-1\n" + was(k)))
		if got, want := ID("hub-1", k), "cc1-"+hex.EncodeToString(sum[:10]); got != want {
			t.Errorf("ID(hub-1, %q) = %s, was %s", k, got, want)
		}
	}
}

func TestFingerprintIgnoresFetchTimeAndAddresses(t *testing.T) {
	r := Record{ID: "x", Hub: Hub{ID: "h", URL: "http://127.0.0.1:1/citations/h"}, Paper: Paper{Title: "T", URL: "http://127.0.0.1:1/pith/P"},
		Role: RoleUses, FetchedAt: time.Unix(1, 0), SourceURLs: []string{"http://127.0.0.1:1/a"}}
	s := r
	s.FetchedAt = time.Unix(2, 0)
	s.Hub.URL, s.Paper.URL, s.SourceURLs = "http://127.0.0.1:2/citations/h", "http://127.0.0.1:2/pith/P", []string{"b"}
	if r.Fingerprint() != s.Fingerprint() {
		t.Fatal("a re-fetch of the same content changed the fingerprint")
	}
	s.Role = RoleCompares
	if r.Fingerprint() == s.Fingerprint() {
		t.Fatal("a changed tag kept the fingerprint")
	}
}

// The JSON Schema file documents the struct: every field the struct
// writes is in the schema, and the other way round.
func TestSchemaFileMatchesRecord(t *testing.T) {
	b, err := os.ReadFile("schema.json")
	if err != nil {
		t.Fatal(err)
	}
	var schema struct {
		Properties map[string]struct {
			Properties map[string]any `json:"properties"`
			Items      struct {
				Properties map[string]any `json:"properties"`
			} `json:"items"`
		} `json:"properties"`
	}
	if err := json.Unmarshal(b, &schema); err != nil {
		t.Fatalf("schema.json: %v", err)
	}
	check := func(where string, typ reflect.Type, props map[string]any) {
		seen := map[string]bool{}
		for i := range typ.NumField() {
			name := strings.Split(typ.Field(i).Tag.Get("json"), ",")[0]
			seen[name] = true
			if _, ok := props[name]; !ok {
				t.Errorf("%s.%s is written but not in schema.json", where, name)
			}
		}
		for name := range props {
			if !seen[name] {
				t.Errorf("schema.json has %s.%s, which the record does not write", where, name)
			}
		}
	}
	top := map[string]any{}
	for k := range schema.Properties {
		top[k] = nil
	}
	check("record", reflect.TypeFor[Record](), top)
	check("hub", reflect.TypeFor[Hub](), schema.Properties["hub"].Properties)
	check("paper", reflect.TypeFor[Paper](), schema.Properties["paper"].Properties)
	check("contexts[]", reflect.TypeFor[Context](), schema.Properties["contexts"].Items.Properties)
	check("pluralism", reflect.TypeFor[Pluralism](), schema.Properties["pluralism"].Properties)
}

// The label constants are values the schema knows, and the label lists
// are the schema's enums (read from it, not a second copy).
func TestLabelConstantsAreInTheSchema(t *testing.T) {
	for kind, consts := range map[string][]string{
		"role":      {RoleBackground, RoleUses, RoleCompares, RoleMotivation, RoleExtends, RoleFuture},
		"polarity":  {PolaritySupporting, PolarityContrasting, PolarityNeutral},
		"pluralism": {PluralismOverton, PluralismSteerable, PluralismDistributional, PluralismMultiObjective, PluralismTradeoffSteerable, PluralismJury, PluralismNone},
	} {
		enum := SchemaLabels(kind)
		for _, c := range consts {
			if !slices.Contains(enum, c) {
				t.Errorf("%s %q is not in schema.json's $defs.%s %v", kind, c, kind, enum)
			}
		}
	}
	if !slices.Equal(Roles, SchemaLabels("role")) || PluralismCategories[len(PluralismCategories)-1] != PluralismNone {
		t.Errorf("Roles %v, PluralismCategories %v", Roles, PluralismCategories)
	}
}

func TestUnder(t *testing.T) {
	r := Record{Role: RoleUses, RoleConfidence: 0.9, Polarity: PolarityNeutral, PolarityConfidence: 0.4,
		Pluralism: &Pluralism{Primary: PluralismNone, Confidence: 0.5}}
	if got := r.Under(0.5); !slices.Equal(got, []string{"polarity"}) {
		t.Errorf("Under(0.5) = %v, want [polarity]", got)
	}
	if got := r.Under(0); len(got) != 0 {
		t.Errorf("Under(0) = %v, want none", got)
	}
	if got := (&Record{}).Under(1); len(got) != 0 {
		t.Errorf("an untagged record has no tags under: %v", got)
	}
}
