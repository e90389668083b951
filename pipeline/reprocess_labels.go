package pipeline

import (
	"bufio"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/fnv"
	"io"
	"os"
	"path/filepath"
	"slices"

	"github.com/citecrawl/citecrawl/internal/kmerge"
	"github.com/citecrawl/citecrawl/record"
	"github.com/citecrawl/citecrawl/sink"
)

// Reprocess tells what changed by comparing, record by record, the labels
// of the latest version of each record in the old output with those in
// the new generation. Held in maps, both sides grow with the record count
// (about 200 bytes a record), so they go to disk instead, as a labelLog
// each: (id, labels) pairs appended as the records stream by, sorted by
// the id's hash and written out in parts of at most partEntries pairs,
// then merged. The comparison is then one pass over the two merged logs in
// that order, which holds one pair per part in memory.
//
// A pair is 16 bytes of the id's hash and three numbers standing for the
// labels: sorted, written and read without a string or a pointer to follow.
// With the ids and the label names themselves, a record's two logs from a
// folder cost 2.2 CPU µs, a fifteenth of reprocess's CPU then; this way
// 1.2 (BenchmarkLabelLog).
//
// Why not a key-value store such as bbolt: reprocess only ever needs one
// ordered pass, and random inserts of a million keys into a B+tree rewrite
// pages at every transaction, while sorted parts are written once,
// sequentially.

// labels are the labels reprocess compares: role, polarity, pluralism.
type labels [3]string

func labelsOf(r *record.Record) labels { return labelsOfTags(sink.TagsOf(r)) }

func labelsOfTags(t sink.Tags) labels { return labels{t.Role, t.Polarity, t.Pluralism} }

// idKey stands for a record id in the logs: its 128-bit FNV-1a hash. Two
// ids of a million share one with a chance of about 1 in 10^27; they
// would be counted as one record in the change summary, and nothing else.
type idKey struct{ hi, lo uint64 }

func (a idKey) compare(b idKey) int {
	if c := cmp.Compare(a.hi, b.hi); c != 0 {
		return c
	}
	return cmp.Compare(a.lo, b.lo)
}

// labelEntry is one record's labels, as the merge of a log gives them.
type labelEntry struct {
	key idKey
	l   labels
}

// added is a pair as added, waiting in a log's buffer: its labels by their
// number in the log's names.
type added struct {
	key   idKey
	n     uint32 // its place in the buffer: the last of an id wins
	codes [3]uint32
}

const (
	// partEntries bounds the pairs a labelLog holds in memory (2 MB).
	partEntries = 1 << 16
	// maxParts: beyond this many parts, a labelLog merges them into one
	// at its next commit, so that merging opens a bounded number of files.
	maxParts = 64
	// partSuffix ends the file name of a part.
	partSuffix = ".labels"
)

// labelLog collects (id, labels) pairs on disk; of the pairs of one id,
// the last added wins. Its parts are files dir/NAME-N.labels, each: the
// label names it uses (a count, then each length-prefixed), then its pairs
// in key order (16 bytes of key, big-endian, and the labels' numbers in
// those names as uvarints).
type labelLog struct {
	dir, name string
	buf       []added  // added since the last flush
	parts     []string // file names in dir, oldest first
	next      int      // the number of the next part
	stale     []string // parts merged into another, removed after the next checkpoint
	maxParts  int
	names     []string          // the label names of this process's parts, by number
	codes     map[string]uint32 // and their numbers
	hash      hash.Hash
	scratch   []byte // the id being hashed, and its hash
}

// labelLogState is what a checkpoint keeps of a labelLog: the parts sealed
// with the records written so far.
type labelLogState struct {
	Parts []string `json:"parts,omitempty"`
	Next  int      `json:"next"`
}

func newLabelLog(dir, name string, st labelLogState) *labelLog {
	return &labelLog{dir: dir, name: name, parts: st.Parts, next: st.Next, maxParts: maxParts,
		codes: map[string]uint32{}, hash: fnv.New128a()}
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

// key is id's idKey.
func (g *labelLog) key(id string) idKey {
	g.hash.Reset()
	g.scratch = append(g.scratch[:0], id...)
	g.hash.Write(g.scratch)
	sum := g.hash.Sum(g.scratch[:0])
	return idKey{binary.BigEndian.Uint64(sum), binary.BigEndian.Uint64(sum[8:])}
}

// code is the number of a label name, given one the first time.
func (g *labelLog) code(name string) uint32 {
	c, ok := g.codes[name]
	if !ok {
		c = uint32(len(g.names))
		g.codes[name] = c
		g.names = append(g.names, name)
	}
	return c
}

// add appends a pair; a full buffer is written out as a part.
func (g *labelLog) add(id string, l labels) error {
	g.buf = append(g.buf, added{g.key(id), uint32(len(g.buf)), [3]uint32{g.code(l[0]), g.code(l[1]), g.code(l[2])}})
	if len(g.buf) >= partEntries {
		return g.flush()
	}
	return nil
}

// flush writes the pairs added since the last flush out as a part (sorted
// by key, the last pair of each id kept), durably.
func (g *labelLog) flush() error {
	if len(g.buf) == 0 {
		return nil
	}
	slices.SortFunc(g.buf, func(a, b added) int {
		if c := a.key.compare(b.key); c != 0 {
			return c
		}
		return cmp.Compare(a.n, b.n)
	})
	i := 0
	err := g.writePart(func() (idKey, [3]uint32, bool, error) {
		for i < len(g.buf) {
			e := g.buf[i]
			i++
			if i == len(g.buf) || g.buf[i].key != e.key { // the last of its id
				return e.key, e.codes, true, nil
			}
		}
		return idKey{}, [3]uint32{}, false, nil
	})
	g.buf = g.buf[:0]
	return err
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
	// Every name the merged parts use is among g.names before the part
	// that lists g.names is written.
	for _, p := range m.parts {
		for _, name := range p.names {
			g.code(name)
		}
	}
	merged := g.parts
	g.parts = nil
	err = g.writePart(func() (idKey, [3]uint32, bool, error) {
		e, ok, err := m.next()
		return e.key, [3]uint32{g.code(e.l[0]), g.code(e.l[1]), g.code(e.l[2])}, ok, err
	})
	if err != nil {
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

// writePart writes the pairs next gives (in key order, their labels
// numbered in g.names) as a new part.
func (g *labelLog) writePart(next func() (idKey, [3]uint32, bool, error)) error {
	name := fmt.Sprintf("%s-%06d%s", g.name, g.next, partSuffix)
	path := filepath.Join(g.dir, name)
	g.next++
	err := sink.WriteNewFile(path, func(w *bufio.Writer) error {
		var b []byte
		b = binary.AppendUvarint(b, uint64(len(g.names)))
		for _, s := range g.names {
			b = binary.AppendUvarint(b, uint64(len(s)))
			b = append(b, s...)
		}
		for {
			if _, err := w.Write(b); err != nil {
				return err
			}
			key, codes, ok, err := next()
			if err != nil || !ok {
				return err
			}
			b = binary.BigEndian.AppendUint64(b[:0], key.hi)
			b = binary.BigEndian.AppendUint64(b, key.lo)
			for _, c := range codes {
				b = binary.AppendUvarint(b, uint64(c))
			}
		}
	})
	if err != nil {
		return fmt.Errorf("reprocess labels: writing %s: %w", path, err)
	}
	g.parts = append(g.parts, name)
	return nil
}

// merge reads the flushed parts together: every id once, in key order,
// with its labels from the latest part that has it.
func (g *labelLog) merge() (*labelMerge, error) {
	var ps []*partReader
	for rank, p := range g.parts {
		pr, err := openPart(filepath.Join(g.dir, p), rank)
		if err != nil {
			for _, p := range ps {
				p.Close()
			}
			return nil, fmt.Errorf("reprocess labels: %w", err)
		}
		ps = append(ps, pr)
	}
	// By key, then by part: the same id in later parts comes next, and wins.
	m, err := kmerge.New(ps, func(a, b *partReader) bool {
		if c := a.cur.key.compare(b.cur.key); c != 0 {
			return c < 0
		}
		return a.rank < b.rank
	})
	if err != nil {
		return nil, err
	}
	return &labelMerge{km: m, parts: ps}, nil
}

// labelMerge is a k-way merge of a labelLog's parts.
type labelMerge struct {
	km    *kmerge.Merge[*partReader]
	parts []*partReader
}

// next returns the next id and its latest labels; false at the end.
func (m *labelMerge) next() (labelEntry, bool, error) {
	p, ok := m.km.Top()
	if !ok {
		return labelEntry{}, false, nil
	}
	e := p.cur
	for ok && p.cur.key == e.key {
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
	names []string
	cur   labelEntry
	kb    [16]byte // a key as read (on the heap with p: a local would be moved there for io.ReadFull at every call)
}

// openPart opens a part and reads its label names.
func openPart(path string, rank int) (*partReader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	p := &partReader{f: f, r: bufio.NewReaderSize(f, 32<<10), rank: rank}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	n, err := binary.ReadUvarint(p.r)
	for i := uint64(0); err == nil && i < n; i++ {
		var size uint64
		// A name is as long as the old output's record gave it; a length
		// past the file's is damage, not a name to allocate for.
		if size, err = binary.ReadUvarint(p.r); err == nil && size > uint64(fi.Size()) {
			err = fmt.Errorf("a label name of %d bytes in a part of %d", size, fi.Size())
		}
		if err == nil {
			b := make([]byte, size)
			_, err = io.ReadFull(p.r, b)
			p.names = append(p.names, string(b))
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("reading %s: %w", path, noEOF(err))
	}
	return p, nil
}

// Next reads the next pair into cur; false at the end of the part.
func (p *partReader) Next() (bool, error) {
	kb := p.kb[:]
	n, err := io.ReadFull(p.r, kb)
	if n == 0 && errors.Is(err, io.EOF) {
		return false, nil // the end is only ever before a pair
	}
	p.cur.key = idKey{binary.BigEndian.Uint64(kb), binary.BigEndian.Uint64(kb[8:])}
	for i := range p.cur.l {
		var c uint64
		if err == nil {
			c, err = binary.ReadUvarint(p.r)
		}
		if err == nil && c >= uint64(len(p.names)) {
			err = fmt.Errorf("label number %d of %d names", c, len(p.names))
		}
		if err == nil {
			p.cur.l[i] = p.names[c]
		}
	}
	if err != nil {
		return false, fmt.Errorf("reprocess labels: reading %s: %w", p.f.Name(), noEOF(err))
	}
	return true, nil
}

// noEOF is err, with an end of file (which only the end of a part's pairs
// may be) made io.ErrUnexpectedEOF.
func noEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
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
		for err == nil && oOK && o.key.compare(n.key) < 0 {
			oldRecords++
			o, oOK, err = mo.next()
		}
		if err != nil || !oOK || o.key != n.key {
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
