package ingest

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/citecrawl/citecrawl/internal/testkit"
)

// normaliseSpace gives what folding every string would give (the
// fields joined by single spaces), also for the strings it gives back as
// they are: spaces of every kind at the ends and in runs, and bytes that
// are not UTF-8 next to them.
func TestNormaliseSpaceIsTheFolding(t *testing.T) {
	fold := func(s string) string { return strings.Join(strings.FieldsFunc(s, isSpace), " ") }
	parts := []string{"a", "Zoë", " ", "  ", "\t", "\n", "\r", "\f", "\u00a0", "\u2009", "\u202f", "’", "\xff", "\xe2\x80", "\xc2", "x y"}
	rng := rand.New(rand.NewPCG(1, 2))
	cases := []string{"", " ", "a", "a b", " a", "a ", "a  b", "a\u00a0b", "a\xc2\xa0b", "\xe2\x80\xafa"}
	cases = testkit.Texts(rng, cases, parts, 20000, 6)
	given := 0
	for _, s := range cases {
		if got, want := normaliseSpace(s), fold(s); got != want {
			t.Fatalf("normaliseSpace(%q) = %q, want %q", s, got, want)
		}
		if normalSpaced(s) {
			given++
		}
	}
	if given == 0 || given == len(cases) {
		t.Fatalf("%d of %d strings given back as they are: the test tells nothing", given, len(cases))
	}
}
