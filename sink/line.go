package sink

import (
	"bytes"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"

	"github.com/citecrawl/citecrawl/record"
)

// Line is a record version as a sink writes it: the record's JSON, as
// record.Marshal gives it, and its Fingerprint, with what a sink keeps of
// the record besides (its id, hub and tags). Write encodes records into
// lines; WriteLines takes lines already encoded (LineParser), so a record
// that arrives encoded is written as it came, not decoded and encoded
// again.
type Line struct {
	ID          string
	Hub         record.Hub
	Tags        Tags
	Fingerprint string
	JSON        []byte // one line: no newline in it (the sink ends it with one)
}

// key is the line's record version, written once: id and fingerprint.
func (l *Line) key() string { return l.ID + "/" + l.Fingerprint }

// version is what the index keeps of the line's record version.
func (l *Line) version() version {
	return version{id: l.ID, fp: fingerprintBytes(l.Fingerprint), tags: l.Tags}
}

// lineFields are the fields of a record's JSON a Line keeps besides the
// JSON itself (those TagsOf reads, the id and the hub): decoding only
// them skips the rest (the paper, the contexts, the evidence) without
// building it, several times cheaper than decoding the whole record.
// TestLineParserGivesLineOfTheRecord holds them to TagsOf.
type lineFields struct {
	ID    string   `json:"id"`
	Hub   *hubJSON `json:"hub"`
	Paper struct {
		Published string `json:"published"`
	} `json:"paper"`
	Role       string `json:"role"`
	RoleSource string `json:"role_source"`
	Polarity   string `json:"polarity"`
	Pluralism  *struct {
		Primary string `json:"primary"`
	} `json:"pluralism"`
	RulesVersion string `json:"rules_version"`
	Gone         bool   `json:"gone"`
}

// hubJSON decodes a record's hub unless it is the hub decoded last, byte
// for byte: the records of a hub come together and carry the same hub,
// whose published counts (maps) cost more to decode than the rest of
// what a Line keeps.
type hubJSON struct {
	json []byte     // the last hub decoded, as it was in its record
	hub  record.Hub // and decoded; never changed once given to a Line
	seen bool       // the record being decoded has a hub
}

func (h *hubJSON) UnmarshalJSON(b []byte) error {
	h.seen = true
	if bytes.Equal(b, h.json) {
		return nil
	}
	var hub record.Hub
	if err := record.UnmarshalFields(b, &hub); err != nil {
		return err
	}
	h.hub, h.json = hub, append(h.json[:0], b...)
	return nil
}

// LineParser parses records' JSON into Lines. Its zero value is ready;
// one parser is not for use by several goroutines at once.
type LineParser struct{ hub hubJSON }

// Parse is the Line of b, a record's JSON exactly as record.Marshal gave
// it (a tagged message's data), whose Fingerprint fp was worked out from
// those bytes when they were encoded. The JSON is kept as it is (b, not a
// copy) and only the fields a sink keeps are decoded; JSON that does not
// parse, or that is not one line, is an error.
func (p *LineParser) Parse(b []byte, fp string) (Line, error) {
	if slices.Contains(b, '\n') { // Marshal escapes a newline in a string, and puts none between values
		return Line{}, errors.New("record JSON of more than one line")
	}
	p.hub.seen = false
	f := lineFields{Hub: &p.hub}
	if err := record.UnmarshalFields(b, &f); err != nil {
		return Line{}, err
	}
	var hub record.Hub
	if f.Hub != nil && p.hub.seen { // not a record without a hub, or with "hub":null
		hub = p.hub.hub
	}
	t := Tags{Role: f.Role, RoleSource: f.RoleSource, Polarity: f.Polarity, RulesVersion: f.RulesVersion, Gone: f.Gone, Year: yearOf(f.Paper.Published)}
	if f.Pluralism != nil {
		t.Pluralism = f.Pluralism.Primary
	}
	return Line{ID: f.ID, Hub: hub, Tags: t, Fingerprint: fp, JSON: b}, nil
}

// LineOf encodes a record into its Line.
func LineOf(r *record.Record) (Line, error) {
	_, l, err := encode(nil, r)
	return l, err
}

// encode appends r's line (its JSON and a newline) to dst and returns the
// extended buffer and the Line, whose JSON is in it.
func encode(dst []byte, r *record.Record) ([]byte, Line, error) {
	out, fp, err := record.AppendLine(dst, r) // the bytes of encoding/json, faster, and the fingerprint
	if err != nil {
		return dst, Line{}, fmt.Errorf("encoding record %s: %w", r.ID, err)
	}
	// The JSON ends its capacity where it ends: the next line follows it
	// in the buffer.
	json := out[len(dst) : len(out)-1 : len(out)-1]
	return out, Line{ID: r.ID, Hub: r.Hub, Tags: TagsOf(r), Fingerprint: fp, JSON: json}, nil
}

// encoder encodes records into buffers it keeps for the next records: the
// lines of a batch are copied out (into a segment's buffer, onto standard
// output) before the next batch is encoded, and a batch of lines is a
// good part of what a sink allocates otherwise.
type encoder struct{ bufs [][]byte }

// maxKeptBuffer: a buffer grown beyond this by an unusually big batch is
// not kept.
const maxKeptBuffer = 4 << 20

// encodeAll encodes records on every core (JSON and the fingerprint cost
// about as much as tagging), keeping their order. The lines are valid
// until the next call.
func (c *encoder) encodeAll(records []*record.Record) ([]Line, error) {
	out := make([]Line, len(records))
	errs := make([]error, len(records))
	workers := max(min(runtime.GOMAXPROCS(0), (len(records)+63)/64), 1)
	chunk := (len(records) + workers - 1) / workers
	for len(c.bufs) < workers {
		c.bufs = append(c.bufs, nil)
	}
	var wg sync.WaitGroup
	for w, lo := 0, 0; lo < len(records); w, lo = w+1, lo+chunk {
		hi := min(lo+chunk, len(records))
		wg.Go(func() {
			buf := c.bufs[w][:0]
			for i := lo; i < hi; i++ {
				buf, out[i], errs[i] = encode(buf, records[i])
			}
			if cap(buf) > maxKeptBuffer {
				buf = nil
			}
			c.bufs[w] = buf
		})
	}
	wg.Wait()
	return out, errors.Join(errs...)
}
