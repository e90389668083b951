package sink

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"unicode/utf8"

	"github.com/citecrawl/citecrawl/record"
)

// Line is a record version as a sink writes it: the record's JSON, as
// record.Marshal gives it, and its Fingerprint, with what a sink keeps of
// the record besides (its id, hub and tags). Write encodes records into
// lines; WriteLines takes lines already encoded (ParseLine), so a record
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

// ParseLine is the Line of b, a record's JSON as record.Marshal gives it
// (a tagged message's data), whose publisher worked out the Fingerprint fp
// from those bytes. The JSON is kept as it is (b, not a copy), so it is
// checked first, or a bad message would be written where every reader of
// the hub trips on it, or under another version's key: it must be one
// line of valid UTF-8 (what a strict reader of the folder can read),
// decode as a record of this schema with an id, and fp must be the
// fingerprint of these very bytes (not a stale header's). Otherwise it is
// an error, and the caller decodes and encodes the record instead.
func ParseLine(b []byte, fp string) (Line, error) {
	if slices.Contains(b, '\n') { // Marshal escapes a newline in a string, and puts none between values
		return Line{}, errors.New("record JSON of more than one line")
	}
	if !utf8.Valid(b) {
		return Line{}, errors.New("record JSON that is not valid UTF-8")
	}
	var r record.Record
	if err := record.Unmarshal(b, &r); err != nil {
		return Line{}, err
	}
	switch {
	case r.Schema != record.Schema:
		return Line{}, fmt.Errorf("record %q of schema %q, not %q", r.ID, r.Schema, record.Schema)
	case r.ID == "":
		return Line{}, errors.New("record without an id")
	}
	if got, ok := record.FingerprintOfLine(b); !ok || got != fp {
		return Line{}, fmt.Errorf("record %s: fingerprint %q given, its JSON's is %q", r.ID, fp, got)
	}
	return Line{ID: r.ID, Hub: r.Hub, Tags: TagsOf(&r), Fingerprint: fp, JSON: b}, nil
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
// good part of what a sink allocates otherwise. The Lines themselves
// (about 250 bytes a record) are kept for the next batch too.
type encoder struct {
	bufs  [][]byte
	lines []Line
	errs  []error
}

// maxKeptBuffer: a buffer grown beyond this by an unusually big batch is
// not kept.
const maxKeptBuffer = 4 << 20

// write is a sink's Write: the records encoded, then given to its
// WriteLines.
func (c *encoder) write(ctx context.Context, records []*record.Record, writeLines func(context.Context, []Line) (int, error)) (int, error) {
	lines, err := c.encodeAll(records)
	if err != nil {
		return 0, err
	}
	return writeLines(ctx, lines)
}

// encodeAll encodes records on every core (JSON and the fingerprint cost
// about as much as tagging), keeping their order. The lines are valid
// until the next call.
func (c *encoder) encodeAll(records []*record.Record) ([]Line, error) {
	c.lines = slices.Grow(c.lines[:0], len(records))[:len(records)]
	c.errs = slices.Grow(c.errs[:0], len(records))[:len(records)]
	out, errs := c.lines, c.errs
	clear(errs)
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
	err := errors.Join(errs...)
	if cap(c.lines) > maxKeptLines { // an unusually big batch
		c.lines, c.errs = nil, nil
	}
	return out, err
}

// maxKeptLines: Lines for more records than this are not kept.
const maxKeptLines = 1 << 14
