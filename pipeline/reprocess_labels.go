package pipeline

import (
	"bufio"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/citecrawl/citecrawl/internal/kmerge"
	"github.com/citecrawl/citecrawl/record"
	"github.com/citecrawl/citecrawl/sink"
)

// Reprocess tells what changed by comparing, record by record, the labels
// of the latest version of each record in the old output with those in
// the new generation. Held in maps, both sides grow with the record count
// (about 200 bytes a record), so they go to disk instead, as a labelLog
// each: (id, labels) pairs appended as the records stream by, sorted by id
// and written out in parts of at most partEntries pairs, then merged. The
// comparison is then one pass over the two merged logs in id order, which
// holds one pair per part in memory.
//
// Why not a key-value store such as bbolt: reprocess only ever needs one
// ordered pass, and random inserts of a million keys into a B+tree rewrite
// pages at every transaction, while sorted parts are written once,
// sequentially.

// labels are the labels reprocess compares: role, polarity, pluralism.
type labels [3]string

func labelsOf(r *record.Record) labels { return labelsOfTags(sink.TagsOf(r)) }

func labelsOfTags(t sink.Tags) labels { return labels{t.Role, t.Polarity, t.Pluralism} }

// labelEntry is one record's labels.
type labelEntry struct {
	id string
	l  labels
}

// sortKey is where flush sorts a labelEntry of the buffer: sorting these
// 16 bytes instead of the 64 of an entry, mostly by a number instead of
// by the id, took the flush's sort from a third of a label log's cost.
type sortKey struct {
	// prefix is the 8 bytes of the id after the prefix all the buffer's
	// ids share (record ids share "cc1-"), big-endian, zero-padded: ids
	// whose prefixes differ are in that order; equal prefixes are decided
	// by the ids.
	prefix uint64
	i      int32 // the entry's place in the buffer: the last of an id wins
}

const (
	// partEntries bounds the pairs a labelLog holds in memory (about 8 MB).
	partEntries = 1 << 16
	// maxParts: beyond this many parts, a labelLog merges them into one
	// at its next commit, so that merging opens a bounded number of files.
	maxParts = 64
	// partSuffix ends the file name of a part.
	partSuffix = ".labels"
)

// labelLog collects (id, labels) pairs on disk; of the pairs of one id,
// the last added wins. Its parts are files dir/NAME-N.labels.
type labelLog struct {
	dir, name string
	buf       []labelEntry // added since the last flush, in order
	order     []sortKey    // flush's, kept for the next
	parts     []string     // file names in dir, oldest first
	next      int          // the number of the next part
	stale     []string     // parts merged into another, removed after the next checkpoint
	maxParts  int
}

// labelLogState is what a checkpoint keeps of a labelLog: the parts sealed
// with the records written so far.
type labelLogState struct {
	Parts []string `json:"parts,omitempty"`
	Next  int      `json:"next"`
}

func newLabelLog(dir, name string, st labelLogState) *labelLog {
	return &labelLog{dir: dir, name: name, parts: st.Parts, next: st.Next, maxParts: maxParts}
}

func (g *labelLog) state() labelLogState {
	return labelLogState{Parts: slices.Clone(g.parts), Next: g.next}
}

// pruneParts removes the parts in dir that no checkpoint lists (written
// after the last one, by an interrupted run).
func pruneParts(dir string, keep ...labelLogState) error {
	files, err := filepath.Glob(filepath.Join(dir, "*"+partSuffix))
	if err != nil {
		return err
	}
	listed := map[string]bool{}
	for _, st := range keep {
		for _, p := range st.Parts {
			listed[p] = true
		}
	}
	for _, f := range files {
		if !listed[filepath.Base(f)] {
			if err := os.Remove(f); err != nil {
				return err
			}
		}
	}
	return nil
}

// add appends a pair; a full buffer is written out as a part.
func (g *labelLog) add(id string, l labels) error {
	g.buf = append(g.buf, labelEntry{id, l})
	if len(g.buf) >= partEntries {
		return g.flush()
	}
	return nil
}

// flush writes the pairs added since the last flush out as a part (sorted
// by id, the last pair of each id kept), durably.
func (g *labelLog) flush() error {
	if len(g.buf) == 0 {
		return nil
	}
	g.sortBuffer()
	i := 0
	err := g.writePart(func() (labelEntry, bool, error) {
		for i < len(g.order) {
			k := g.order[i]
			i++
			// The last of its id (the prefix tells most ids apart).
			if i == len(g.order) || g.order[i].prefix != k.prefix || g.buf[g.order[i].i].id != g.buf[k.i].id {
				return g.buf[k.i], true, nil
			}
		}
		return labelEntry{}, false, nil
	})
	clear(g.buf) // let the ids go
	g.buf = g.buf[:0]
	return err
}

// sortBuffer fills g.order with the buffer's entries sorted by id, those
// of the same id in the order they were added.
func (g *labelLog) sortBuffer() {
	shared := len(g.buf[0].id)
	for _, e := range g.buf[1:] {
		shared = min(shared, commonPrefix(g.buf[0].id, e.id))
	}
	g.order = g.order[:0]
	for i, e := range g.buf {
		var b [8]byte
		copy(b[:], e.id[shared:])
		g.order = append(g.order, sortKey{binary.BigEndian.Uint64(b[:]), int32(i)})
	}
	slices.SortFunc(g.order, func(a, b sortKey) int {
		switch {
		case a.prefix != b.prefix:
			return cmp.Compare(a.prefix, b.prefix)
		case a.i == b.i:
			return 0
		}
		if c := strings.Compare(g.buf[a.i].id, g.buf[b.i].id); c != 0 {
			return c
		}
		return cmp.Compare(a.i, b.i)
	})
}

// commonPrefix is the length of the prefix a and b share.
func commonPrefix(a, b string) int {
	n := min(len(a), len(b))
	for i := range n {
		if a[i] != b[i] {
			return i
		}
	}
	return n
}

// compact merges the parts into one when there are more than maxParts.
// The merged parts are removed through takeStale, once a checkpoint lists
// the new one instead.
func (g *labelLog) compact() error {
	if len(g.parts) <= g.maxParts {
		return nil
	}
	m, err := g.merge()
	if err != nil {
		return err
	}
	defer m.close()
	merged := g.parts
	g.parts = nil
	if err := g.writePart(m.next); err != nil {
		g.parts = merged
		return err
	}
	g.stale = append(g.stale, merged...)
	return nil
}

// takeStale hands over the parts merged away so far: remove removes them,
// to be called once a checkpoint no longer lists them.
func (g *labelLog) takeStale() (remove func()) {
	stale := g.stale
	g.stale = nil
	return func() {
		for _, p := range stale {
			_ = os.Remove(filepath.Join(g.dir, p))
		}
	}
}

// writePart writes the pairs next gives (in id order) as a new part.
func (g *labelLog) writePart(next func() (labelEntry, bool, error)) error {
	name := fmt.Sprintf("%s-%06d%s", g.name, g.next, partSuffix)
	path := filepath.Join(g.dir, name)
	g.next++
	err := sink.WriteNewFile(path, func(w *bufio.Writer) error {
		var scratch [binary.MaxVarintLen64]byte
		put := func(s string) {
			_, _ = w.Write(binary.AppendUvarint(scratch[:0], uint64(len(s))))
			_, _ = w.WriteString(s)
		}
		for {
			e, ok, err := next()
			if err != nil || !ok {
				return err
			}
			put(e.id)
			for _, s := range e.l {
				put(s)
			}
		}
	})
	if err != nil {
		return fmt.Errorf("reprocess labels: writing %s: %w", path, err)
	}
	g.parts = append(g.parts, name)
	return nil
}

// merge reads the flushed parts together: every id once, in id order,
// with its labels from the latest part that has it.
func (g *labelLog) merge() (*labelMerge, error) {
	var ps []*partReader
	for rank, p := range g.parts {
		f, err := os.Open(filepath.Join(g.dir, p))
		if err != nil {
			for _, p := range ps {
				p.Close()
			}
			return nil, fmt.Errorf("reprocess labels: %w", err)
		}
		ps = append(ps, &partReader{f: f, r: bufio.NewReaderSize(f, 32<<10), rank: rank, names: map[string]string{}})
	}
	// By id, then by part: the same id in later parts comes next, and wins.
	m, err := kmerge.New(ps, func(a, b *partReader) bool {
		if c := strings.Compare(a.cur.id, b.cur.id); c != 0 {
			return c < 0
		}
		return a.rank < b.rank
	})
	if err != nil {
		return nil, err
	}
	return &labelMerge{m}, nil
}

// labelMerge is a k-way merge of a labelLog's parts.
type labelMerge struct{ km *kmerge.Merge[*partReader] }

// next returns the next id and its latest labels; false at the end.
func (m *labelMerge) next() (labelEntry, bool, error) {
	p, ok := m.km.Top()
	if !ok {
		return labelEntry{}, false, nil
	}
	e := p.cur
	for ok && p.cur.id == e.id {
		e.l = p.cur.l
		if err := m.km.Advance(); err != nil {
			return labelEntry{}, false, err
		}
		p, ok = m.km.Top()
	}
	return e, true, nil
}

func (m *labelMerge) close() { m.km.Close() }

// partReader reads one part, pair by pair.
type partReader struct {
	f     *os.File
	r     *bufio.Reader
	rank  int // the part's place in the log: later wins
	cur   labelEntry
	buf   []byte
	names map[string]string // label names read, shared instead of copied
}

// Next reads the next pair into cur; false at the end of the part.
func (p *partReader) Next() (bool, error) {
	id, err := p.str(true)
	if errors.Is(err, io.EOF) {
		return false, nil
	}
	for i := range p.cur.l {
		if err == nil {
			p.cur.l[i], err = p.str(false)
		}
	}
	if err != nil {
		return false, fmt.Errorf("reprocess labels: reading %s: %w", p.f.Name(), err)
	}
	p.cur.id = id
	return true, nil
}

// str reads one length-prefixed string. Only a part's end before an id
// is io.EOF; anywhere else it is io.ErrUnexpectedEOF.
func (p *partReader) str(first bool) (string, error) {
	n, err := binary.ReadUvarint(p.r)
	if err != nil {
		if !first && errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return "", err
	}
	p.buf = slices.Grow(p.buf[:0], int(n))[:n]
	if _, err := io.ReadFull(p.r, p.buf); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return "", err
	}
	if first {
		return string(p.buf), nil
	}
	s, ok := p.names[string(p.buf)]
	if !ok {
		s = string(p.buf)
		p.names[s] = s
	}
	return s, nil
}

// Close closes the part's file.
func (p *partReader) Close() error { return p.f.Close() }

// labelChanges counts, over the records of the new log, the label changes
// from the old log ("old -> new" per tag), the records with at least one,
// and the distinct records of each log.
func labelChanges(old, cur *labelLog) (changes map[string]map[string]int, changed, records, oldRecords int64, err error) {
	mo, err := old.merge()
	if err != nil {
		return nil, 0, 0, 0, err
	}
	defer mo.close()
	mn, err := cur.merge()
	if err != nil {
		return nil, 0, 0, 0, err
	}
	defer mn.close()
	tags := [3]string{"role", "polarity", "pluralism"}
	changes = map[string]map[string]int{"role": {}, "polarity": {}, "pluralism": {}}
	o, oOK, err := mo.next()
	for err == nil {
		var n labelEntry
		var nOK bool
		if n, nOK, err = mn.next(); err != nil || !nOK {
			break
		}
		records++
		for err == nil && oOK && o.id < n.id {
			oldRecords++
			o, oOK, err = mo.next()
		}
		if err != nil || !oOK || o.id != n.id {
			continue
		}
		if o.l != n.l {
			changed++
			for i, tag := range tags {
				if o.l[i] != n.l[i] {
					changes[tag][label(o.l[i])+" -> "+label(n.l[i])]++
				}
			}
		}
		oldRecords++
		o, oOK, err = mo.next()
	}
	for err == nil && oOK {
		oldRecords++
		o, oOK, err = mo.next()
	}
	return changes, changed, records, oldRecords, err
}
