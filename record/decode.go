package record

import (
	"bytes"
	"encoding/binary"
	"math/bits"
	"strconv"
	"time"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"
)

// decoder reads a record's JSON into a zero Record in one pass, field by
// field, by hand: the whole record (Unmarshal), or, untagged, without
// what UnmarshalUntagged leaves out, passing over those fields with
// valueEnd, as the walk does. It reads what Marshal writes, with space
// between tokens, fields in any order and scalars repeated (the last
// wins, as in goccy/go-json). At anything else (a field it does not know,
// untagged a gone record, null where Marshal writes none, an object or
// list read twice, a \u escape of a surrogate, invalid UTF-8, a number of
// the wrong kind, JSON that is not) it gives up (ok false), and its
// caller takes goccy/go-json's way (UnmarshalUntagged the walk first), so
// that such input decodes, or fails, as it did. TestDecoderIsGoccy and
// TestUntaggedDecoderIsTheWalk hold the ways together.
//
// The walk copied the kept half of a record and goccy/go-json decoded
// the copy: two passes over it, the first byte by byte (5.97 of the 23.5
// CPU s of reprocess from a folder of a million records).
type decoder struct {
	b        []byte
	i        int
	ok       bool
	untagged bool // leave out the evidence and the pluralism's scores; give up on a gone record
	// s is b as a string, or "": the strings read are slices of it (plain).
	s string
}

// record reads a whole record: one object and nothing after it.
func (d *decoder) record(r *Record) {
	var hub, paper bool // read once: a second would be merged into the first
	for more := d.open('{'); d.ok && more; more = d.next('}') {
		switch string(d.key()) {
		case "schema":
			r.Schema = d.str()
		case "id":
			r.ID = d.own()
		case "hub":
			d.fresh(hub)
			hub = true
			// Its strings each in an allocation of their own (see own).
			s := d.s
			d.s = ""
			d.hub(&r.Hub)
			d.s = s
		case "paper":
			d.fresh(paper)
			paper = true
			d.paper(&r.Paper)
		case "contexts":
			if d.fresh(r.Contexts != nil); !d.null() {
				var stack [4]Context
				cs := stack[:0]
				for more := d.open('['); d.ok && more; more = d.next(']') {
					cs = append(cs, Context{})
					d.context(&cs[len(cs)-1])
				}
				r.Contexts = exact(cs)
			}
		case "role":
			r.Role = d.own()
		case "role_confidence":
			r.RoleConfidence = d.float()
		case "role_source":
			r.RoleSource = d.own()
		case "role_evidence":
			d.evidence(&r.RoleEvidence)
		case "polarity":
			r.Polarity = d.own()
		case "polarity_confidence":
			r.PolarityConfidence = d.float()
		case "pluralism":
			if d.fresh(r.Pluralism != nil); !d.null() {
				r.Pluralism = new(Pluralism)
				d.pluralism(r.Pluralism)
			}
		case "full_text":
			if d.fresh(r.FullText != nil); !d.null() {
				r.FullText = new(FullText)
				d.fullText(r.FullText)
			}
		case "rules_version":
			r.RulesVersion = d.own()
		case "fetched_at":
			// As goccy/go-json reads it: the time's own UnmarshalJSON,
			// given the string with its quotes.
			end := stringEnd(d.b, d.i)
			if end >= 0 && bytes.Equal(d.b[d.i:end], jsonZeroTime) {
				// What UnmarshalJSON makes of it (a raw record's), without
				// parsing it.
				r.FetchedAt, d.i = time.Time{}, end
				break
			}
			if end < 0 || r.FetchedAt.UnmarshalJSON(d.b[d.i:end]) != nil {
				d.ok = false
				break
			}
			d.i = end
		case "source_urls":
			d.strings(&r.SourceURLs)
		case "missing":
			d.strings(&r.Missing)
		case "truncated":
			if d.fresh(r.Truncated != nil); !d.null() {
				t := new(Truncated)
				r.Truncated = t
				for more := d.open('{'); d.ok && more; more = d.next('}') {
					switch string(d.key()) {
					case "contexts":
						t.Contexts = d.int()
					case "sentences":
						t.Sentences = d.int()
					default:
						d.ok = false
					}
				}
			}
		case "gone":
			// Untagged, a gone record is decoded whole (tagging leaves it
			// as it is): by the walk and goccy/go-json.
			d.ok = d.ok && !d.untagged
			r.Gone = d.bool()
		default:
			d.ok = false
		}
	}
	d.space()
	d.ok = d.ok && d.i == len(d.b)
}

func (d *decoder) hub(h *Hub) {
	for more := d.open('{'); d.ok && more; more = d.next('}') {
		switch string(d.key()) {
		case "url":
			h.URL = d.str()
		case "id":
			h.ID = d.str()
		case "title":
			h.Title = d.str()
		case "cited_work_ids":
			d.strings(&h.CitedWorkIDs)
		case "published":
			if d.fresh(h.Published != nil); !d.null() {
				h.Published = new(HubCounts)
				d.hubCounts(h.Published)
			}
		default:
			d.ok = false
		}
	}
}

func (d *decoder) hubCounts(p *HubCounts) {
	for more := d.open('{'); d.ok && more; more = d.next('}') {
		switch string(d.key()) {
		case "citing_papers":
			p.CitingPapers = d.int()
		case "background_percent":
			d.fresh(p.BackgroundPercent != nil)
			p.BackgroundPercent = d.intPtr()
		case "polarity_indexing":
			p.PolarityIndexing = d.bool()
		case "facets":
			if d.fresh(p.Facets != nil); d.null() {
				break
			}
			p.Facets = map[string]map[string]int{}
			for more := d.open('{'); d.ok && more; more = d.next('}') {
				k := mapKey(d, p.Facets)
				if d.null() {
					p.Facets[k] = nil
					continue
				}
				inner := map[string]int{}
				p.Facets[k] = inner
				for more := d.open('{'); d.ok && more; more = d.next('}') {
					inner[mapKey(d, inner)] = d.int()
				}
			}
		case "canonical":
			p.Canonical = d.bool()
		default:
			d.ok = false
		}
	}
}

func (d *decoder) paper(p *Paper) {
	for more := d.open('{'); d.ok && more; more = d.next('}') {
		switch string(d.key()) {
		case "title":
			p.Title = d.str()
		case "summary":
			p.Summary = d.str()
		case "abstract":
			p.Abstract = d.str()
		case "authors":
			d.strings(&p.Authors)
		case "arxiv":
			p.Arxiv = d.str()
		case "pith":
			p.Pith = d.str()
		case "url":
			p.URL = d.str()
		case "categories":
			d.strings(&p.Categories)
		case "published":
			p.Published = d.own()
		case "verdict":
			p.Verdict = d.str()
		case "novelty":
			if d.fresh(p.Novelty != nil); !d.null() {
				f := d.float()
				p.Novelty = &f
			}
		case "refs":
			d.fresh(p.Refs != nil)
			p.Refs = d.intPtr()
		default:
			d.ok = false
		}
	}
}

func (d *decoder) context(c *Context) {
	for more := d.open('{'); d.ok && more; more = d.next('}') {
		switch string(d.key()) {
		case "text":
			c.Text = d.str()
		case "section":
			c.Section = d.str()
		case "paragraph":
			c.Paragraph = d.str()
		case "cite_span":
			if d.fresh(c.CiteSpan != nil); d.null() {
				break
			}
			var stack [4]int
			span := stack[:0]
			for more := d.open('['); d.ok && more; more = d.next(']') {
				span = append(span, d.int())
			}
			c.CiteSpan = exact(span)
		case "marker":
			c.Marker = d.str()
		case "role":
			c.Role = d.str()
		case "polarity":
			c.Polarity = d.str()
		case "role_confidence":
			c.RoleConfidence = d.float()
		case "polarity_confidence":
			c.PolarityConfidence = d.float()
		case "evidence":
			d.evidence(&c.Evidence)
		default:
			d.ok = false
		}
	}
}

func (d *decoder) pluralism(p *Pluralism) {
	for more := d.open('{'); d.ok && more; more = d.next('}') {
		switch string(d.key()) {
		case "primary":
			p.Primary = d.own()
		case "confidence":
			p.Confidence = d.float()
		case "labels":
			d.strings(&p.Labels)
		case "scores":
			d.scores(&p.Scores)
		case "evidence":
			d.evidence(&p.Evidence)
		default:
			d.ok = false
		}
	}
}

func (d *decoder) fullText(f *FullText) {
	for more := d.open('{'); d.ok && more; more = d.next('}') {
		switch string(d.key()) {
		case "url":
			f.URL = d.str()
		case "status":
			f.Status = d.str()
		case "reason":
			f.Reason = d.str()
		case "entry":
			f.Entry = d.str()
		case "label":
			f.Label = d.str()
		case "method":
			f.Method = d.str()
		case "score":
			f.Score = d.float()
		case "references":
			f.References = d.int()
		case "linked_citations":
			f.LinkedCitations = d.int()
		default:
			d.ok = false
		}
	}
}

// evidence reads a list of evidence into *ev (nil for null), or, untagged,
// passes over it.
func (d *decoder) evidence(ev *[]Evidence) {
	if d.untagged {
		d.skip()
		return
	}
	if d.fresh(*ev != nil); d.null() {
		return
	}
	var stack [8]Evidence
	list := stack[:0]
	for more := d.open('['); d.ok && more; more = d.next(']') {
		list = append(list, Evidence{})
		e := &list[len(list)-1]
		for more := d.open('{'); d.ok && more; more = d.next('}') {
			switch string(d.key()) {
			case "label":
				e.Label = d.str()
			case "rule":
				e.Rule = d.str()
			case "cue":
				e.Cue = d.str()
			case "weight":
				e.Weight = d.float()
			default:
				d.ok = false
			}
		}
	}
	*ev = exact(list)
}

// scores reads the pluralism's scores into *m (nil for null), or,
// untagged, passes over them.
func (d *decoder) scores(m *map[string]float64) {
	if d.untagged {
		d.skip()
		return
	}
	if d.fresh(*m != nil); d.null() {
		return
	}
	scores := make(map[string]float64, len(scoreKeys))
	*m = scores
	for more := d.open('{'); d.ok && more; more = d.next('}') {
		k := mapKey(d, scores)
		scores[k] = d.float()
	}
}

// skip passes over a value left out, as the walk does: to valueEnd.
func (d *decoder) skip() {
	end := valueEnd(d.b, d.i)
	if end < 0 {
		d.ok = false
		return
	}
	d.i = end
}

// strings reads a list of strings into *ss (nil for null).
func (d *decoder) strings(ss *[]string) {
	if d.fresh(*ss != nil); d.null() {
		return
	}
	var stack [8]string
	list := stack[:0]
	for more := d.open('['); d.ok && more; more = d.next(']') {
		list = append(list, d.str())
	}
	*ss = exact(list)
}

// exact is a copy of a list read onto the stack, in one allocation of its
// length (empty, not nil, for []).
func exact[T any](list []T) []T {
	return append(make([]T, 0, len(list)), list...)
}

// fresh gives up when an object, list, map or pointer is read a second
// time: goccy/go-json would decode into the first, which this does not.
func (d *decoder) fresh(seen bool) {
	d.ok = d.ok && !seen
}

// at says whether the next byte, after any space, is c. (Marshal writes
// no space: the first test, inlined, mostly decides.)
func (d *decoder) at(c byte) bool {
	if d.i < len(d.b) && d.b[d.i] == c {
		return true
	}
	return d.atAfterSpace(c)
}

// atAfterSpace is at's way past space: not inlined into at, so that at is.
//
//go:noinline
func (d *decoder) atAfterSpace(c byte) bool {
	d.space()
	return d.i < len(d.b) && d.b[d.i] == c
}

// open moves past the opening c of an object or array ('{' or '[') and
// the space after it, and says whether it has a member.
func (d *decoder) open(c byte) bool {
	if !d.at(c) {
		d.ok = false
		return false
	}
	d.i++
	if d.at(c + 2) { // '}' or ']'
		d.i++
		return false
	}
	return true
}

// next moves past the comma after a member and the space after it,
// saying there is another, or past the closer, saying there is not.
func (d *decoder) next(closer byte) bool {
	if d.ok && d.i < len(d.b) { // Marshal writes no space: mostly decided here
		switch d.b[d.i] {
		case ',':
			d.i++
			d.space()
			return true
		case closer:
			d.i++
			return false
		}
	}
	switch {
	case !d.ok:
	case d.at(','):
		d.i++
		d.space()
		return true
	case d.at(closer):
		d.i++
		return false
	}
	d.ok = false
	return false
}

// key reads a member's name, as it is written, and the colon after it,
// up to its value. A name with a backslash is no field's.
func (d *decoder) key() []byte {
	b, start := d.b, d.i+1
	if d.i >= len(b) || b[d.i] != '"' { // space was passed over by open or next
		d.ok = false
		return nil
	}
	// Eight bytes at a time, the first here: most names end within them.
	end := len(b)
	if start+8 <= len(b) {
		if m := quotesIn(binary.LittleEndian.Uint64(b[start:])); m != 0 {
			end = start + bits.TrailingZeros64(m)/8
		} else {
			end = quoteOrBackslash(b, start+8)
		}
	} else {
		end = quoteOrBackslash(b, start)
	}
	if end >= len(b) || b[end] != '"' { // cut short, or no field's
		d.ok = false
		return nil
	}
	if d.i = end + 1; !d.at(':') {
		d.ok = false
		return nil
	}
	d.i++
	d.space()
	return b[start:end]
}

// mapKey reads a map's key and the colon after it; a key read before is
// given up on (which of the two a map keeps is the decoder's choice).
func mapKey[V any](d *decoder, m map[string]V) string {
	k := d.str()
	if _, seen := m[k]; seen {
		d.ok = false
	}
	if !d.at(':') {
		d.ok = false
		return k
	}
	d.i++
	d.space()
	return k
}

// space moves past white space.
func (d *decoder) space() { d.i = spaceEnd(d.b, d.i) }

// null moves past a null and says whether there was one.
func (d *decoder) null() bool {
	if bytes.HasPrefix(d.b[d.i:], []byte("null")) {
		d.i += len("null")
		return true
	}
	return false
}

func (d *decoder) bool() bool {
	switch {
	case bytes.HasPrefix(d.b[d.i:], []byte("true")):
		d.i += len("true")
		return true
	case bytes.HasPrefix(d.b[d.i:], []byte("false")):
		d.i += len("false")
	default:
		d.ok = false
	}
	return false
}

// str reads a string: as it is written, unless it has an escape or a
// control character. Valid UTF-8 beyond ASCII is passed over a character
// at a time; invalid UTF-8 is given up on (goccy/go-json's to replace).
func (d *decoder) str() string {
	b := d.b
	if d.i >= len(b) || b[d.i] != '"' {
		d.ok = false
		return ""
	}
	start := d.i + 1
	end := plainEnd(b, start)
	for end < len(b) && b[end] >= utf8.RuneSelf {
		if !utf8.FullRune(b[end:]) {
			break // cut short: unescape gives up
		}
		r, size := utf8.DecodeRune(b[end:])
		if r == utf8.RuneError && size == 1 {
			d.ok = false
			return ""
		}
		end = plainEnd(b, end+size)
	}
	if end < len(b) && b[end] == '"' {
		d.i = end + 1
		return d.plain(start, end)
	}
	d.i = start
	return d.unescape(start) // an escape or a control character
}

// plain is the string b[start:end], which holds no escape: a label's
// constant, or a slice of s, the input as a string, when the decoder has
// it (one allocation for every string of a record, rather than one each),
// or else a copy of its own.
func (d *decoder) plain(start, end int) string {
	b := d.b[start:end]
	if s, ok := known(b); ok {
		return s
	}
	if d.s != "" {
		return d.s[start:end]
	}
	return string(b)
}

// own reads a string into an allocation of its own, not a slice of s:
// for what the sink keeps of a record beyond it (its id until a segment
// is sealed, its hub for each segment, its tags, among them the year of
// its paper, for each tag set), which must not keep the whole input with
// it. The labels are constants anyway (known).
func (d *decoder) own() string {
	s := d.s
	d.s = ""
	v := d.str()
	d.s = s
	return v
}

// plainEnd is the index of the first byte from i on that a string does
// not hold as it is when it is ASCII (a quote, a backslash, a control
// character, a byte beyond ASCII), or len(b), passing over eight bytes at
// a time as quoteOrBackslash does.
func plainEnd(b []byte, i int) int {
	for s := b[min(i, len(b)):]; len(s) >= 8; s = s[8:] {
		x := binary.LittleEndian.Uint64(s)
		// A byte below 0x20 borrows, and has its high bit set by it; one
		// beyond ASCII has it set already. As in quotesIn, the lowest bit
		// set is the first such byte's.
		if m := quotesIn(x) | (x|(x-ones*0x20))&highs; m != 0 {
			return i + bits.TrailingZeros64(m)/8
		}
		i += 8
	}
	for ; i < len(b); i++ {
		if c := b[i]; c == '"' || c == '\\' || c < 0x20 || c >= utf8.RuneSelf {
			break
		}
	}
	return i
}

// known is the constant that b spells, when it is one of the values a
// record's labels and schema take, most of its short strings: they are
// not copied, and compare at once with the constants.
func known(b []byte) (string, bool) {
	switch string(b) { // compared, not converted
	case "":
		return "", true
	case Schema:
		return Schema, true
	case RoleBackground:
		return RoleBackground, true
	case RoleUses:
		return RoleUses, true
	case RoleCompares:
		return RoleCompares, true
	case RoleMotivation:
		return RoleMotivation, true
	case RoleExtends:
		return RoleExtends, true
	case RoleFuture:
		return RoleFuture, true
	case PolaritySupporting:
		return PolaritySupporting, true
	case PolarityContrasting:
		return PolarityContrasting, true
	case PolarityNeutral:
		return PolarityNeutral, true
	case PluralismOverton:
		return PluralismOverton, true
	case PluralismSteerable:
		return PluralismSteerable, true
	case PluralismDistributional:
		return PluralismDistributional, true
	case PluralismMultiObjective:
		return PluralismMultiObjective, true
	case PluralismTradeoffSteerable:
		return PluralismTradeoffSteerable, true
	case PluralismJury:
		return PluralismJury, true
	case PluralismNone:
		return PluralismNone, true
	case RoleSourceContext:
		return RoleSourceContext, true
	case RoleSourceSummary:
		return RoleSourceSummary, true
	}
	return "", false
}

// unescape reads the rest of the string begun at b[start], which has an
// escape, a byte beyond ASCII or a control character at or after d.i. It
// gives up on a control character, invalid UTF-8 and a \u escape of a
// surrogate: goccy/go-json's to refuse or replace.
func (d *decoder) unescape(start int) string {
	var stack [256]byte
	out := stack[:0]
	for d.i < len(d.b) {
		c := d.b[d.i]
		switch {
		case c == '"':
			d.i++
			if !utf8.Valid(out) {
				d.ok = false
				return ""
			}
			return string(out)
		case c < 0x20:
			d.ok = false
			return ""
		case c != '\\':
			out = append(out, c)
			d.i++
			continue
		}
		if d.i+1 >= len(d.b) {
			break
		}
		switch e := d.b[d.i+1]; e {
		case '"', '\\', '/':
			out = append(out, e)
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			if d.i+6 > len(d.b) {
				d.ok = false
				return ""
			}
			r := rune(0)
			for _, c := range d.b[d.i+2 : d.i+6] {
				var h rune
				switch {
				case c >= '0' && c <= '9':
					h = rune(c - '0')
				case c >= 'a' && c <= 'f':
					h = rune(c - 'a' + 10)
				case c >= 'A' && c <= 'F':
					h = rune(c - 'A' + 10)
				default:
					d.ok = false
					return ""
				}
				r = r<<4 | h
			}
			if utf16.IsSurrogate(r) {
				d.ok = false
				return ""
			}
			out = utf8.AppendRune(out, r)
			d.i += 4
		default:
			d.ok = false
			return ""
		}
		d.i += 2
	}
	d.ok = false
	return ""
}

// number reads a number as JSON writes one, and says whether it is an
// integer (no fraction or exponent).
func (d *decoder) number() (num []byte, integer bool) {
	start, b := d.i, d.b
	digits := func() bool { // one or more
		from := d.i
		for d.i < len(b) && b[d.i] >= '0' && b[d.i] <= '9' {
			d.i++
		}
		return d.i > from
	}
	if d.i < len(b) && b[d.i] == '-' {
		d.i++
	}
	if d.i < len(b) && b[d.i] == '0' {
		d.i++
	} else if !digits() {
		d.ok = false
		return nil, false
	}
	integer = true
	if d.i < len(b) && b[d.i] == '.' {
		d.i++
		integer = false
		if !digits() {
			d.ok = false
			return nil, false
		}
	}
	if d.i < len(b) && (b[d.i] == 'e' || b[d.i] == 'E') {
		d.i++
		integer = false
		if d.i < len(b) && (b[d.i] == '+' || b[d.i] == '-') {
			d.i++
		}
		if !digits() {
			d.ok = false
			return nil, false
		}
	}
	return b[start:d.i], integer
}

func (d *decoder) float() float64 {
	num, _ := d.number()
	if !d.ok {
		return 0
	}
	if f, ok := decimal(num); ok {
		return f
	}
	f, err := strconv.ParseFloat(string(num), 64)
	if err != nil {
		d.ok = false
	}
	return f
}

// decimal is the value of a number of at most 15 digits without an
// exponent (a record's confidences): its digits over a power of ten, both
// exact in a float64, so that one division rounds correctly, as
// strconv.ParseFloat's fast path does for such numbers
// (TestDecimalIsStrconv).
func decimal(num []byte) (float64, bool) {
	var m uint64
	digits, decimals, neg, point := 0, 0, false, false
	for _, c := range num {
		switch {
		case c >= '0' && c <= '9':
			m = m*10 + uint64(c-'0')
			digits++
			if point {
				decimals++
			}
		case c == '-':
			neg = true
		case c == '.':
			point = true
		default: // an exponent
			return 0, false
		}
	}
	if digits > 15 {
		return 0, false
	}
	f := float64(m) / pow10[decimals]
	if neg {
		f = -f
	}
	return f, true
}

// pow10 are the powers of ten decimal divides by, each exact.
var pow10 = [...]float64{1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15}

func (d *decoder) int() int {
	num, integer := d.number()
	if !d.ok || !integer {
		d.ok = false
		return 0
	}
	n, err := strconv.Atoi(string(num))
	if err != nil {
		d.ok = false
	}
	return n
}

// intPtr reads an int, or null.
func (d *decoder) intPtr() *int {
	if d.null() {
		return nil
	}
	n := d.int()
	return &n
}

// isZero says whether r is a zero Record: whether all its bytes are zero
// (what reflect's IsZero says field by field, at a fraction of its cost).
// The decoder decodes only into a zero record: into another, goccy/go-json
// merges.
func isZero(r *Record) bool {
	const size = unsafe.Sizeof(Record{})
	return *(*[size]byte)(unsafe.Pointer(r)) == [size]byte{}
}
