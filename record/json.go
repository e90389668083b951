package record

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"math/bits"

	gojson "github.com/goccy/go-json"
)

// Marshal is a record's JSON, for every place that sends or hashes
// records (the stages, the fingerprint): the same bytes as encoding/json
// gives (TestMarshalIsEncodingJSON holds them to it), written by hand
// (encode.go) at a fraction of its cost, which counts because a record is
// encoded several times on its way through the stages.
func Marshal(r *Record) ([]byte, error) {
	e := encoder{}
	appendRecord(&e, r)
	if e.err != nil {
		return nil, e.err
	}
	return e.b, nil
}

// Unmarshal decodes a record's JSON into r, as encoding/json would: into
// a zero record, by hand (decoder), its strings slices of one copy of b
// but for what a sink keeps beyond the record (its id, hub and tags: see
// decoder.own); and what that does not read, or into a record that is not
// zero (which goccy/go-json merges into), with goccy/go-json, which is
// faster than encoding/json.
func Unmarshal(b []byte, r *Record) error {
	if isZero(r) {
		d := decoder{b: b, s: string(b), ok: true}
		if d.record(r); d.ok {
			return nil
		}
		*r = Record{} // as it was
	}
	return gojson.Unmarshal(b, r)
}

// MarshalLine is Marshal's bytes followed by a newline, a line of a JSON
// Lines file, and the record's Fingerprint, from one encoding: the bytes
// Fingerprint hashes are the line's with the fields it leaves out blanked,
// so they are hashed from the line, piece by piece, rather than encoded
// again (TestMarshalLineFingerprint holds the two to each other).
func MarshalLine(r *Record) (line []byte, fp string, err error) { return AppendLine(nil, r) }

// AppendLine is MarshalLine appending the line to dst and returning the
// extended slice, as append does: a writer that copies its lines out soon
// after encoding them can encode many into one reused buffer.
func AppendLine(dst []byte, r *Record) (out []byte, fp string, err error) {
	e := encoder{b: dst}
	appendRecord(&e, r)
	if e.err != nil {
		return dst, "", e.err
	}
	fp = e.fingerprint(len(dst))
	return append(e.b, '\n'), fp, nil
}

// The places in a record's JSON of the fields Fingerprint blanks. Each is
// found by text that can occur nowhere else: a string's own quotes are
// escaped, the maps (facets, scores) hold numbers and objects, not
// strings, and no other field has these names.
var (
	jsonHubURL     = []byte(`,"hub":{"url":"`)        // always there, the hub's first field
	jsonPaper      = []byte(`,"paper":{"title":"`)    // the paper begins
	jsonPaperEnd   = []byte(`},"contexts":`)          // and ends
	jsonPaperURL   = []byte(`,"url":"`)               // within the paper, when it has one
	jsonFullText   = []byte(`,"full_text":{`)         // when there is one
	jsonFTURL      = []byte(`"url":"`)                // its first field, when it has one
	jsonFTReason   = []byte(`,"reason":"`)            // within it, when it has one
	jsonFetchedAt  = []byte(`,"fetched_at":"`)        // near the end, always there
	jsonSourceURLs = []byte(`,"source_urls":`)        // right after it
	jsonZeroTime   = []byte(`"0001-01-01T00:00:00Z"`) // time.Time{}
)

// FingerprintOfLine is Fingerprint of the record whose Marshal bytes are
// b (a line of a JSON Lines file, without its newline): the hash of b with the hub's URL emptied, the paper's URL and the
// full text's URL and reason left out, the fetch time zero and the source
// URLs null. ok is false when b is not laid out as a record's JSON is.
func FingerprintOfLine(b []byte) (fp string, ok bool) {
	h := sha256.New()
	at := 0 // b[:at] is hashed, or left out
	hash := func(to int, instead []byte) {
		h.Write(b[at:to])
		h.Write(instead)
	}
	// The hub's URL: emptied.
	i := bytes.Index(b, jsonHubURL)
	if i < 0 {
		return "", false
	}
	start := i + len(jsonHubURL) - 1
	end := stringEnd(b, start)
	if end < 0 {
		return "", false
	}
	hash(start, []byte(`""`))
	at = end
	// The paper's URL: left out, with the comma before it.
	p := indexFrom(b, at, jsonPaper)
	pEnd := indexFrom(b, p, jsonPaperEnd)
	if p < 0 || pEnd < 0 {
		return "", false
	}
	if u := indexFrom(b[:pEnd], p, jsonPaperURL); u >= 0 {
		end := stringEnd(b, u+len(jsonPaperURL)-1)
		if end < 0 {
			return "", false
		}
		hash(u, nil)
		at = end
	}
	// The full text's URL, its first field, with the comma after it, and
	// its reason, with the comma before it: left out.
	t := bytes.LastIndex(b, jsonFetchedAt)
	// Searched from the paper's end: a hub facet may be named full_text.
	if f := indexFrom(b[:max(t, 0)], max(at, pEnd), jsonFullText); f >= 0 {
		f += len(jsonFullText)
		if bytes.HasPrefix(b[f:], jsonFTURL) {
			end := stringEnd(b, f+len(jsonFTURL)-1)
			if end < 0 || end >= len(b) || b[end] != ',' {
				return "", false
			}
			hash(f, nil)
			at = end + 1
		}
		fEnd := flatEnd(b, f, '}')
		if fEnd < 0 {
			return "", false
		}
		if r := indexFrom(b[:fEnd], max(at, f), jsonFTReason); r >= 0 {
			end := stringEnd(b, r+len(jsonFTReason)-1)
			if end < 0 {
				return "", false
			}
			hash(r, nil)
			at = end
		}
	}
	// The fetch time: zero; the source URLs, right after it: null.
	if t < at {
		return "", false
	}
	start = t + len(jsonFetchedAt) - 1
	end = stringEnd(b, start)
	if end < 0 || !bytes.HasPrefix(b[end:], jsonSourceURLs) {
		return "", false
	}
	hash(start, jsonZeroTime)
	at = end
	start = end + len(jsonSourceURLs)
	switch {
	case bytes.HasPrefix(b[start:], []byte("null")):
		end = start + len("null")
	case bytes.HasPrefix(b[start:], []byte("[")):
		if end = flatEnd(b, start+1, ']'); end >= 0 {
			end++ // just after it
		}
	default:
		return "", false
	}
	if end < 0 {
		return "", false
	}
	hash(start, []byte("null"))
	at = end
	h.Write(b[at:])
	var sum [sha256.Size]byte
	return hex.EncodeToString(h.Sum(sum[:0])[:12]), true
}

// indexFrom is the index in b of the first sep at or after from, or -1.
func indexFrom(b []byte, from int, sep []byte) int {
	if from < 0 || from > len(b) {
		return -1
	}
	if i := bytes.Index(b[from:], sep); i >= 0 {
		return from + i
	}
	return -1
}

// stringEnd is the index just after the JSON string whose opening quote
// is at b[q], or -1.
func stringEnd(b []byte, q int) int {
	if q >= len(b) || b[q] != '"' {
		return -1
	}
	for i := quoteOrBackslash(b, q+1); i < len(b); i = quoteOrBackslash(b, i+2) {
		if b[i] == '"' {
			return i + 1
		}
	}
	return -1
}

// Eight bytes at a time: ones has 1 in each byte, highs each byte's high bit.
const ones, highs = 0x0101010101010101, 0x8080808080808080

// quotesIn marks the quotes and backslashes among the eight bytes of x
// (little-endian) with their high bits: the lowest bit set is that of the
// first (that of a zero byte of x^quotes or x^backslashes); a byte above
// one can be set by its borrow, none below.
func quotesIn(x uint64) uint64 {
	const quotes, backslashes = ones * '"', ones * '\\'
	q, e := x^quotes, x^backslashes
	return ((q-ones)&^q | (e-ones)&^e) & highs
}

// quoteOrBackslash is the index of the first quote or backslash in b from
// i on, or len(b) when there is none. Most of a record's strings are plain
// text: it passes over eight bytes at a time.
func quoteOrBackslash(b []byte, i int) int {
	for s := b[min(i, len(b)):]; len(s) >= 8; s = s[8:] {
		if m := quotesIn(binary.LittleEndian.Uint64(s)); m != 0 {
			return i + bits.TrailingZeros64(m)/8
		}
		i += 8
	}
	for ; i < len(b) && b[i] != '"' && b[i] != '\\'; i++ {
	}
	return i
}

// flatEnd is the index of the closer ('}' or ']') of an object or array
// of strings and numbers whose members begin at b[from], or -1 (also when
// it holds an object or an array).
func flatEnd(b []byte, from int, closer byte) int {
	for i := from; i < len(b); i++ {
		switch b[i] {
		case '"':
			end := stringEnd(b, i)
			if end < 0 {
				return -1
			}
			i = end - 1
		case closer:
			return i
		case '{', '[', '}', ']':
			return -1
		}
	}
	return -1
}
