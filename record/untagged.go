package record

import (
	"bytes"

	gojson "github.com/goccy/go-json"
)

// UnmarshalUntagged decodes a record's JSON into r as Unmarshal does, but
// leaves out what tagging replaces and nothing else reads: the evidence of
// the record, of its contexts and of its pluralism, and the pluralism's
// scores. Those are about half of a tagged record's JSON and most of the
// cost of decoding it. The labels and confidences stay: reprocess
// compares the old labels with the new ones. A gone record, which tagging
// leaves as it is, is decoded whole, and so is JSON the walk does not
// follow, whose error is then Unmarshal's. buf is scratch space, returned
// for the next call.
//
// A zero record is decoded in one pass by hand (decoder: 21,600
// instructions for a record as reprocess writes it, BenchmarkUnmarshalUntagged,
// against 36,400 by the walk and goccy/go-json); what that does not read,
// and a record that is not zero, the walk copies without the fields left
// out for goccy/go-json to decode.
func UnmarshalUntagged(b []byte, r *Record, buf []byte) ([]byte, error) {
	if isZero(r) {
		// Without s: the input copied whole would be the tags' detail too,
		// which is left out (BenchmarkUnmarshalUntagged: 3 % more
		// instructions with it).
		d := decoder{b: b, ok: true, untagged: true}
		if d.record(r); d.ok {
			return buf, nil
		}
		*r = Record{} // as it was
	}
	return unmarshalUntaggedWalk(b, r, buf)
}

// unmarshalUntaggedWalk is UnmarshalUntagged by the walk and goccy/go-json.
func unmarshalUntaggedWalk(b []byte, r *Record, buf []byte) ([]byte, error) {
	w := untaggedWalk{b: b, out: buf[:0], ok: true}
	if w.object(levelRecord); w.ok {
		w.space()
		w.ok = w.i == len(b) // nothing after the record
	}
	// goccy/go-json's, not Unmarshal's: the decoder gave up on b already.
	if !w.ok {
		return w.out, gojson.Unmarshal(b, r)
	}
	return w.out, gojson.Unmarshal(w.out, r)
}

// The objects of a record whose fields an untaggedWalk leaves some out of.
const (
	levelRecord    = iota // the record: role_evidence; gone stops the walk
	levelContext          // each context: evidence
	levelPluralism        // the pluralism: evidence, scores
)

// untaggedWalk copies a record's JSON object to out without the fields
// UnmarshalUntagged leaves out. It checks only what it needs to walk the
// objects (strings, nesting, separators); ok is false when that fails or
// the record is gone.
type untaggedWalk struct {
	b   []byte
	i   int
	out []byte
	ok  bool
}

// object copies the object at w.i, at level, without its left-out fields.
func (w *untaggedWalk) object(level int) {
	if !w.expect('{') {
		return
	}
	w.out = append(w.out, '{')
	if w.space(); w.i < len(w.b) && w.b[w.i] == '}' {
		w.i++
		w.out = append(w.out, '}')
		return
	}
	first := true
	for w.ok {
		w.space()
		keyStart := w.i
		if w.i >= len(w.b) || w.b[w.i] != '"' {
			w.ok = false
			return
		}
		end := stringEnd(w.b, w.i)
		if end < 0 {
			w.ok = false
			return
		}
		w.i = end
		key := w.b[keyStart:end] // with its quotes
		if !w.expect(':') {
			return
		}
		w.space()
		switch {
		case left(level, key):
			end := valueEnd(w.b, w.i)
			if end < 0 {
				w.ok = false
				return
			}
			w.i = end
		case level == levelRecord && string(key) == `"gone"` && bytes.HasPrefix(w.b[w.i:], []byte("true")):
			w.ok = false // decoded whole
			return
		default:
			if !first {
				w.out = append(w.out, ',')
			}
			first = false
			w.out = append(append(w.out, key...), ':')
			if w.value(level, key); !w.ok {
				return
			}
		}
		w.space()
		if w.i >= len(w.b) {
			w.ok = false
			return
		}
		switch w.b[w.i] {
		case ',':
			w.i++
		case '}':
			w.i++
			w.out = append(w.out, '}')
			return
		default:
			w.ok = false
			return
		}
	}
}

// value copies the value of the field key of an object at level: the
// contexts and the pluralism of a record walked into, any other as it is.
func (w *untaggedWalk) value(level int, key []byte) {
	if level == levelRecord && w.i < len(w.b) {
		switch {
		case string(key) == `"contexts"` && w.b[w.i] == '[':
			w.contexts()
			return
		case string(key) == `"pluralism"` && w.b[w.i] == '{':
			w.object(levelPluralism)
			return
		}
	}
	end := valueEnd(w.b, w.i)
	if end < 0 {
		w.ok = false
		return
	}
	w.out = append(w.out, w.b[w.i:end]...)
	w.i = end
}

// contexts copies the array of contexts at w.i, each without its evidence.
func (w *untaggedWalk) contexts() {
	w.i++
	w.out = append(w.out, '[')
	for w.ok {
		w.space()
		if w.i >= len(w.b) {
			w.ok = false
			return
		}
		switch w.b[w.i] {
		case ']':
			w.i++
			w.out = append(w.out, ']')
			return
		case ',':
			w.i++
			w.out = append(w.out, ',')
		case '{':
			w.object(levelContext)
		default:
			w.ok = false
		}
	}
}

// left says whether the field key of an object at level is left out.
func left(level int, key []byte) bool {
	switch level {
	case levelRecord:
		return string(key) == `"role_evidence"`
	case levelContext:
		return string(key) == `"evidence"`
	default:
		return string(key) == `"evidence"` || string(key) == `"scores"`
	}
}

// expect moves past c, after any space; ok is false when it is not there.
func (w *untaggedWalk) expect(c byte) bool {
	w.space()
	if w.i >= len(w.b) || w.b[w.i] != c {
		w.ok = false
		return false
	}
	w.i++
	return true
}

func (w *untaggedWalk) space() { w.i = spaceEnd(w.b, w.i) }

// spaceEnd is the index of the first byte from b[i] on that is not JSON's
// white space.
func spaceEnd(b []byte, i int) int {
	// Marshal writes no space: one test, mostly.
	for i < len(b) && b[i] <= ' ' && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// valueEnd is the index just after the JSON value that starts at b[i],
// or -1 when it does not end.
func valueEnd(b []byte, i int) int {
	if i >= len(b) {
		return -1
	}
	switch b[i] {
	case '"':
		return stringEnd(b, i)
	case '{', '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"': // to the string's closing quote, passing over escapes
				for i = quoteOrBackslash(b, i+1); i < len(b) && b[i] == '\\'; i = quoteOrBackslash(b, i+2) {
				}
				if i >= len(b) {
					return -1
				}
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
	for i < len(b) { // a number, true, false or null
		switch b[i] {
		case ',', '}', ']', ' ', '\t', '\r', '\n':
			return i
		}
		i++
	}
	return i
}
