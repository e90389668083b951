package classify

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"

	"github.com/citecrawl/citecrawl/record"
)

// Stream reads JSON lines from r and writes each, tagged, to w, in order
// and one line at a time (memory does not grow with the input). It takes
// project records (they have "schema"), and minimal objects:
//
//	{"id", "context", "section"?, "cite_span"?}  -> role, polarity (each with its confidence), evidence
//	{"id", "title", "summary"?, "abstract"?}      -> pluralism
//
// or both kinds of fields at once. Unknown fields pass through unchanged.
// A malformed line is reported to bad and skipped; Stream returns how many
// there were.
func Stream(c *Classifier, r io.Reader, w io.Writer, bad func(line int, err error)) (int, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 64<<20)
	bw := bufio.NewWriterSize(w, 256<<10)
	nbad, line := 0, 0
	for sc.Scan() {
		line++
		out, err := c.tagLine(sc.Bytes())
		if err != nil {
			nbad++
			bad(line, err)
			continue
		}
		bw.Write(out)
		if err := bw.WriteByte('\n'); err != nil {
			return nbad, fmt.Errorf("writing output: %w", err)
		}
	}
	if err := sc.Err(); err != nil {
		return nbad, fmt.Errorf("reading input at line %d: %w", line+1, err)
	}
	return nbad, bw.Flush()
}

// minimal is the fields classify reads from a minimal object.
type minimal struct {
	Schema   string  `json:"schema"`
	Context  *string `json:"context"`
	Section  string  `json:"section"`
	CiteSpan []int   `json:"cite_span"`
	Title    *string `json:"title"`
	Summary  string  `json:"summary"`
	Abstract string  `json:"abstract"`
}

func (c *Classifier) tagLine(b []byte) ([]byte, error) {
	var m minimal
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("not a JSON object: %w", err)
	}
	if m.Schema == record.Schema {
		var r record.Record
		if err := json.Unmarshal(b, &r); err != nil {
			return nil, fmt.Errorf("not a %s record: %w", record.Schema, err)
		}
		c.Tag(&r)
		return json.Marshal(&r)
	}
	if m.Context == nil && m.Title == nil {
		return nil, fmt.Errorf("has neither \"context\" nor \"title\" (nor is it a %s record)", record.Schema)
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(b, &obj); err != nil {
		return nil, fmt.Errorf("not a JSON object: %w", err)
	}
	set := func(k string, v any) {
		raw, _ := json.Marshal(v)
		obj[k] = raw
	}
	if m.Context != nil {
		if len(m.CiteSpan) != 0 && (len(m.CiteSpan) != 2 || m.CiteSpan[0] > m.CiteSpan[1] || m.CiteSpan[0] < 0) {
			return nil, fmt.Errorf("cite_span %v: want [start, end) in runes", m.CiteSpan)
		}
		t := c.Context(*m.Context, m.Section, m.CiteSpan)
		set("role", t.Role)
		set("role_confidence", t.RoleConfidence)
		set("polarity", t.Polarity)
		set("polarity_confidence", t.PolarityConfidence)
		set("evidence", t.Evidence)
	}
	if m.Title != nil {
		set("pluralism", c.Pluralism(*m.Title, m.Summary, m.Abstract))
	}
	set("rules_version", c.Version())
	return json.Marshal(obj)
}
