// Package record defines the citing-paper record that every stage of
// citecrawl passes along: the fetch stage fills the paper and hub parts,
// the classify stage adds the tags, the sinks write it out unchanged.
package record

import (
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"
)

// Schema is the value of the schema field of every record this version writes.
const Schema = "citecrawl.record/v1"

// Role values (see TAXONOMY.md).
const (
	RoleBackground = "background"
	RoleUses       = "uses"
	RoleCompares   = "compares"
	RoleMotivation = "motivation"
	RoleExtends    = "extends"
	RoleFuture     = "future"
)

// Roles lists the role values in a fixed order, for reports and metrics:
// the enum of $defs.role in schema.json, the one list of them.
var Roles = SchemaLabels("role")

// Polarity values.
const (
	PolaritySupporting  = "supporting"
	PolarityContrasting = "contrasting"
	PolarityNeutral     = "neutral"
)

// Polarities lists the polarity values in a fixed order ($defs.polarity in schema.json).
var Polarities = SchemaLabels("polarity")

// Pluralism category values.
const (
	PluralismOverton           = "overton"
	PluralismSteerable         = "steerable"
	PluralismDistributional    = "distributional"
	PluralismMultiObjective    = "multi_objective"
	PluralismTradeoffSteerable = "tradeoff_steerable"
	PluralismJury              = "jury_pluralistic"
	PluralismNone              = "none"
)

// PluralismCategories lists the category values, none last ($defs.pluralism in schema.json).
var PluralismCategories = SchemaLabels("pluralism")

// SchemaJSON is record/schema.json, the contract of every record written.
//
//go:embed schema.json
var SchemaJSON []byte

// SchemaLabels is the enum of $defs.<kind> in schema.json ("role",
// "polarity", "pluralism"), in the order written there. The rule files'
// labels must be among these (classify refuses rules that are not), so a
// label is added in one place: the schema, then the rule file that uses it.
// It panics on a kind the schema has no enum for: that is a programming error.
func SchemaLabels(kind string) []string {
	var s struct {
		Defs map[string]struct {
			Enum []string `json:"enum"`
		} `json:"$defs"`
	}
	if err := json.Unmarshal(SchemaJSON, &s); err != nil {
		panic(fmt.Sprintf("record/schema.json: %v", err))
	}
	enum := s.Defs[kind].Enum
	if len(enum) == 0 {
		panic(fmt.Sprintf("record/schema.json has no enum $defs.%s", kind))
	}
	return enum
}

// Role sources: where a record's role was decided from.
const (
	RoleSourceContext = "context"
	RoleSourceSummary = "summary"
)

// Record is one citing paper of one hub.
type Record struct {
	Schema   string    `json:"schema"`
	ID       string    `json:"id"`
	Hub      Hub       `json:"hub"`
	Paper    Paper     `json:"paper"`
	Contexts []Context `json:"contexts"`
	Role     string    `json:"role,omitempty"`
	// RoleConfidence is the mean of the contexts' probabilities of Role,
	// or a capped guess when the role was read from the summary.
	RoleConfidence float64    `json:"role_confidence,omitempty"`
	RoleSource     string     `json:"role_source,omitempty"`
	RoleEvidence   []Evidence `json:"role_evidence,omitempty"`
	Polarity       string     `json:"polarity,omitempty"`
	// PolarityConfidence is the highest probability of Polarity among the
	// contexts that have it (the summary's, when there are none).
	PolarityConfidence float64    `json:"polarity_confidence,omitempty"`
	Pluralism          *Pluralism `json:"pluralism,omitempty"`
	FullText           *FullText  `json:"full_text,omitempty"`
	RulesVersion       string     `json:"rules_version,omitempty"`
	Gone               bool       `json:"gone,omitempty"` // the hub no longer lists this paper
	FetchedAt          time.Time  `json:"fetched_at"`
	SourceURLs         []string   `json:"source_urls"`
	Missing            []string   `json:"missing"`
	// Truncated counts what was cut to fit one broker message (nil: nothing).
	Truncated *Truncated `json:"truncated,omitempty"`
}

// Truncated counts what was left out of a record so that it fits in one
// broker message: contexts beyond the cap, and sentences cut to the cap.
type Truncated struct {
	Contexts  int `json:"contexts,omitempty"`
	Sentences int `json:"sentences,omitempty"`
}

// Hub identifies the citation hub the paper was found on, with the
// aggregates the hub itself publishes (so a summary can show both).
type Hub struct {
	URL          string     `json:"url"`
	ID           string     `json:"id"`
	Title        string     `json:"title"`
	CitedWorkIDs []string   `json:"cited_work_ids"`
	Published    *HubCounts `json:"published,omitempty"`
}

// HubCounts are the figures a hub page prints about itself.
type HubCounts struct {
	CitingPapers      int                       `json:"citing_papers"`
	BackgroundPercent *int                      `json:"background_percent,omitempty"`
	PolarityIndexing  bool                      `json:"polarity_indexing,omitempty"`
	Facets            map[string]map[string]int `json:"facets,omitempty"`
	Canonical         bool                      `json:"canonical,omitempty"`
}

// Paper is the citing paper's metadata. Fields a source did not give stay
// empty and are named in Record.Missing.
type Paper struct {
	Title      string   `json:"title"`
	Summary    string   `json:"summary,omitempty"`
	Abstract   string   `json:"abstract,omitempty"`
	Authors    []string `json:"authors,omitempty"`
	Arxiv      string   `json:"arxiv,omitempty"`
	Pith       string   `json:"pith,omitempty"`
	URL        string   `json:"url,omitempty"`
	Categories []string `json:"categories,omitempty"`
	Published  string   `json:"published,omitempty"`
	Verdict    string   `json:"verdict,omitempty"`
	Novelty    *float64 `json:"novelty,omitempty"`
	Refs       *int     `json:"refs,omitempty"`
}

// Context is one sentence of the citing paper that cites the hub's work.
type Context struct {
	Text      string `json:"text"`
	Section   string `json:"section,omitempty"`
	Paragraph string `json:"paragraph,omitempty"` // id of the paragraph in the full text
	CiteSpan  []int  `json:"cite_span,omitempty"`
	Marker    string `json:"marker,omitempty"` // "linked" (a #bib link) or "text" (a plain [n], fallback)
	Role      string `json:"role,omitempty"`
	Polarity  string `json:"polarity,omitempty"`
	// The chances that Role and Polarity are right: classify's softmax of
	// the label scores at the rule file's temperature, through its fitted
	// calibration map.
	RoleConfidence     float64    `json:"role_confidence,omitempty"`
	PolarityConfidence float64    `json:"polarity_confidence,omitempty"`
	Evidence           []Evidence `json:"evidence,omitempty"`
}

// Full-text statuses.
const (
	FullTextOK           = "ok"                  // contexts were read from linked citations
	FullTextMissing      = "missing"             // no full text: 404, not converted, withdrawn
	FullTextNoMatch      = "no_match"            // the bibliography does not list the cited work
	FullTextNoLinks      = "no_linked_citations" // listed, but the text never links to it
	FullTextUnparsable   = "unparsable"          // fetched, but not a LaTeXML page
	FullTextNoArxivID    = "no_arxiv_id"         // no arXiv id known to fetch it by
	FullTextNotRequested = ""
)

// FullText says how the citing sentences were found, or why none were.
type FullText struct {
	URL             string  `json:"url,omitempty"`
	Status          string  `json:"status"`
	Reason          string  `json:"reason,omitempty"`
	Entry           string  `json:"entry,omitempty"` // bibliography entry id, bib.bibN
	Label           string  `json:"label,omitempty"`
	Method          string  `json:"method,omitempty"` // arxiv, doi or title
	Score           float64 `json:"score,omitempty"`
	References      int     `json:"references"`
	LinkedCitations int     `json:"linked_citations"`
}

// Evidence is one cue that fired for a label, with its weight.
type Evidence struct {
	Label  string  `json:"label"`
	Rule   string  `json:"rule"`
	Cue    string  `json:"cue"`
	Weight float64 `json:"weight"`
}

// Pluralism is the per-paper pluralism tag.
type Pluralism struct {
	Primary string `json:"primary"`
	// Confidence is the calibrated probability of Primary.
	Confidence float64            `json:"confidence"`
	Labels     []string           `json:"labels"`
	Scores     map[string]float64 `json:"scores"`
	Evidence   []Evidence         `json:"evidence"`
}

// ID returns the stable id of a citing paper on a hub: the same paper on
// the same hub always gets the same id, whichever run or worker makes it.
// paperKey should be the most stable identifier known (Pith id, arXiv id,
// or else the title).
func ID(hubID, paperKey string) string {
	// Hashed from one buffer, on the stack for most keys: a hub crawl
	// works out the id of each of its papers several times.
	var buf [256]byte
	b := append(buf[:0], hubID...)
	b = append(b, '\n')
	sum := sha256.Sum256(appendNormalisedKey(b, paperKey))
	var id [4 + 20]byte
	copy(id[:], "cc1-")
	hex.Encode(id[4:], sum[:10])
	return string(id[:])
}

// NormaliseKey lower-cases a key and folds runs of non-alphanumerics to one
// space, so that "Title:  A" and "title a" name the same paper.
func NormaliseKey(s string) string { return string(appendNormalisedKey(nil, s)) }

// appendNormalisedKey appends NormaliseKey(s) to b: each character
// lower-cased as strings.ToLower does, letters a-z, digits and anything
// beyond ASCII kept, runs of the rest one space between them.
func appendNormalisedKey(b []byte, s string) []byte {
	start, space := len(b), false
	for _, r := range s {
		switch {
		case r >= 'A' && r <= 'Z':
			r += 'a' - 'A'
		case r >= utf8.RuneSelf:
			r = unicode.ToLower(r) // which can be ASCII: the Kelvin sign is k
		}
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r >= utf8.RuneSelf {
			if space && len(b) > start {
				b = append(b, ' ')
			}
			space = false
			b = utf8.AppendRune(b, r)
			continue
		}
		space = true
	}
	return b
}

// Fingerprint hashes the content of a record, leaving out when and from
// which addresses it was fetched (a mirror or the offline snapshot on
// another port is the same content), so that a re-crawl of an unchanged
// paper has the same fingerprint and a changed one does not.
func (r *Record) Fingerprint() string {
	// Encoded into a reused buffer, and hashed with the fields it leaves
	// out blanked (encoder's cuts).
	buf := buffers.Get().(*[]byte)
	defer buffers.Put(buf)
	e := encoder{b: (*buf)[:0]}
	appendRecord(&e, r)
	*buf = e.b
	return e.fingerprint(0)
}

// buffers hold the JSON Fingerprint hashes.
var buffers = sync.Pool{New: func() any { return new([]byte) }}

// Under names the record's tags ("role", "polarity", "pluralism") whose
// confidence is below p; a tag written before confidences existed counts
// as 0. tail, report and reprocess's --min-confidence use it.
func (r *Record) Under(p float64) []string {
	var out []string
	if r.Role != "" && r.RoleConfidence < p {
		out = append(out, "role")
	}
	if r.Polarity != "" && r.PolarityConfidence < p {
		out = append(out, "polarity")
	}
	if r.Pluralism != nil && r.Pluralism.Confidence < p {
		out = append(out, "pluralism")
	}
	return out
}
