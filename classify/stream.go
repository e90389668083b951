package classify

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/citecrawl/citecrawl/record"
)

// StreamOptions bound what Stream holds for one line.
type StreamOptions struct {
	// MaxLineBytes is the longest line read (a longer one is reported to
	// bad and skipped, and the lines after it are still tagged).
	MaxLineBytes int
	// MaxEvidence is the most evidence entries kept per label of a tag
	// (the first ones, in the classifier's order), so a huge text cannot
	// make a huge output line.
	MaxEvidence int
}

// DefaultStreamOptions are the classify command's defaults.
var DefaultStreamOptions = StreamOptions{MaxLineBytes: 64 << 20, MaxEvidence: 20}

// Stream is StreamWith the default options.
func Stream(c *Classifier, r io.Reader, w io.Writer, bad func(line int, err error)) (int, error) {
	return StreamWith(c, r, w, DefaultStreamOptions, bad)
}

// StreamWith reads JSON lines from r and writes each, tagged, to w, in
// order and one line at a time (memory does not grow with the input past
// one line of at most o.MaxLineBytes). It takes project records (they have
// "schema"), and minimal objects:
//
//	{"id", "context", "section"?, "cite_span"?}  -> role, polarity (each with its confidence), evidence
//	{"id", "title", "summary"?, "abstract"?}      -> pluralism
//
// or both kinds of fields at once. Unknown fields pass through unchanged.
// Blank lines are skipped. A malformed or too long line is reported to bad
// and skipped; StreamWith returns how many there were.
func StreamWith(c *Classifier, r io.Reader, w io.Writer, o StreamOptions, bad func(line int, err error)) (int, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	bw := bufio.NewWriterSize(w, 256<<10)
	nbad, line := 0, 0
	for {
		b, size, err := readLine(br, o.MaxLineBytes)
		if err != nil && !errors.Is(err, io.EOF) {
			return nbad, fmt.Errorf("reading input at line %d: %w", line+1, err)
		}
		if size == 0 && errors.Is(err, io.EOF) {
			break
		}
		line++
		switch {
		case size > o.MaxLineBytes:
			nbad++
			bad(line, fmt.Errorf("line of %d bytes or more is over the limit of %d bytes (--max-line-bytes)", size, o.MaxLineBytes))
		case len(bytes.TrimSpace(b)) == 0:
		default:
			out, terr := c.tagLine(b, o.MaxEvidence)
			if terr != nil {
				nbad++
				bad(line, terr)
				break
			}
			bw.Write(out)
			if werr := bw.WriteByte('\n'); werr != nil {
				return nbad, fmt.Errorf("writing output: %w", werr)
			}
		}
		if errors.Is(err, io.EOF) {
			break
		}
	}
	return nbad, bw.Flush()
}

// readLine reads one line (without its newline). It keeps at most max
// bytes of it; size is how many bytes the line has (counted up to max+1,
// the rest of a longer line is read and dropped).
func readLine(br *bufio.Reader, max int) (line []byte, size int, err error) {
	for {
		chunk, err := br.ReadSlice('\n')
		if size <= max {
			line = append(line, chunk[:min(len(chunk), max+1-size)]...)
		}
		size += len(chunk)
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err == nil { // the newline is not part of the line
			size--
			line = bytes.TrimSuffix(line, []byte("\n"))
		}
		return bytes.TrimSuffix(line, []byte("\r")), size, err
	}
}

// capEvidence keeps the first n entries of each label (all when n < 1).
func capEvidence(ev []record.Evidence, n int) []record.Evidence {
	if n < 1 || len(ev) <= n {
		return ev
	}
	count := map[string]int{}
	out := ev[:0:0]
	for _, e := range ev {
		if count[e.Label]++; count[e.Label] <= n {
			out = append(out, e)
		}
	}
	return out
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

func (c *Classifier) tagLine(b []byte, maxEvidence int) ([]byte, error) {
	var m minimal
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("not a JSON object: %w", err)
	}
	if m.Schema == record.Schema {
		var r record.Record
		if err := record.Unmarshal(b, &r); err != nil {
			return nil, fmt.Errorf("not a %s record: %w", record.Schema, err)
		}
		c.Tag(&r)
		r.RoleEvidence = capEvidence(r.RoleEvidence, maxEvidence)
		for i := range r.Contexts {
			r.Contexts[i].Evidence = capEvidence(r.Contexts[i].Evidence, maxEvidence)
		}
		if r.Pluralism != nil {
			r.Pluralism.Evidence = capEvidence(r.Pluralism.Evidence, maxEvidence)
		}
		return record.Marshal(&r)
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
		set("evidence", capEvidence(t.Evidence, maxEvidence))
	}
	if m.Title != nil {
		p := c.Pluralism(*m.Title, m.Summary, m.Abstract)
		p.Evidence = capEvidence(p.Evidence, maxEvidence)
		set("pluralism", p)
	}
	set("rules_version", c.Version())
	return json.Marshal(obj)
}
