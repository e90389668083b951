package sink

import (
	"bufio"
	"cmp"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	bolt "go.etcd.io/bbolt"

	"github.com/citecrawl/citecrawl/internal/kmerge"
	"github.com/citecrawl/citecrawl/record"
)

// Deferred indexing. A writer that has its output to itself, looks
// versions up only at the seal and writes summaries only on Close
// (reprocess building a new generation) does not add each segment's
// versions to the index as it publishes it: record ids are random, so
// nearly every version added rewrites one leaf page of the B+tree, about
// a fifth of reprocess's CPU. It writes them instead as one sorted run
// per segment (id, fingerprint, tags, segment and line) in the hub
// folder's runsDir, merges the runs in levels as they accumulate
// (runFanIn at a time, so memory and open files stay bounded whatever the
// record count) and, at Close, merges what is left and adds the versions
// to the index in id order, each leaf page written about once.
//
// A seal still looks its versions up in the index, which holds what was
// indexed before this writer opened the folder (an interrupted run's
// segments, caught up then). A version sealed twice by this writer is
// found at the merge, where its copies are adjacent; the later copies'
// lines are then dropped from their segments, so the folder ends as if
// each seal had been indexed (the later copy left out at its seal).
//
// Runs are a cache: the segments stay the truth. Runs left by a writer
// that stopped are removed when the folder is opened again, whose index
// then catches up from the segments, read into runs of its own, dropping
// the lines of versions an earlier segment holds (catchUpByRuns); at
// Close too for the hub folders the writer did not write to
// (jsonl.openOtherHubs). An index build at Close
// marks the index (metaBulk) until it has finished; one found marked was
// interrupted, and is built again from the segments. Whatever fails with
// the runs, the index is brought up to date from the segments instead.
const runsDir = ".index-runs"

// runFanIn is how many runs of one level are merged into one of the next.
const runFanIn = 16

// metaBulk, in the meta bucket, marks an index build from runs, or a
// segment added in several transactions (hubIndex.add), under way: the
// index may hold part of the versions of segments it does not cover yet,
// whose repeated lines may not have been dropped yet.
const metaBulk = "bulk"

// runs is the deferred index of one hub folder: what this writer
// published there and has not indexed yet. Only the tag sets and the
// segments are kept in memory, not the versions.
type runs struct {
	dir    string       // HUB/runsDir
	segs   []runSegment // published by this writer, in order
	tags   []Tags       // the tag sets of the runs' entries
	tagNo  map[Tags]uint64
	levels []runLevel
	made   int           // run files made, for their names
	w      *bufio.Writer // every run is written through, kept from one to the next
}

// runLevel is the runs of one level, one after another in one file: a
// level's runFanIn runs cost one file, not runFanIn (creating a file
// costs this machine's ext4 about 0.3 ms of CPU, as much as sorting and
// writing a seal's run of 800 entries).
type runLevel struct {
	path  string    // "" until its first run
	spans []runSpan // its runs, in the order written
	end   int64     // the file's size: where the next run goes
}

// runSpan is where in its level's file a run is.
type runSpan struct{ off, size int64 }

// runSegment is a segment a writer published, not indexed yet.
type runSegment struct {
	name  string
	lines int
	hub   record.Hub // of its latest record, as when it was sealed
}

// runEntry is one version in a run: its record id and fingerprint, its
// tag set (runs.tags) and where it is: the writer's seg-th segment, line.
type runEntry struct {
	id   string
	fp   [fpLen]byte
	seg  uint64
	line uint64
	tag  uint64
}

// before orders run entries: by id, then as they were written.
func (e *runEntry) before(o *runEntry) bool {
	if e.id != o.id {
		return e.id < o.id
	}
	if e.seg != o.seg {
		return e.seg < o.seg
	}
	return e.line < o.line
}

// newRuns starts the deferred index of a hub folder, removing the runs a
// writer that stopped left there. Called with the hub's lock held.
func newRuns(hubDir string) (*runs, error) {
	dir := filepath.Join(hubDir, runsDir)
	if err := os.RemoveAll(dir); err != nil {
		return nil, fmt.Errorf("removing old index runs: %w", err)
	}
	return &runs{dir: dir, tagNo: map[Tags]uint64{}}, nil
}

// last is the name of the last segment published, "" when none was.
func (r *runs) last() string {
	if len(r.segs) == 0 {
		return ""
	}
	return r.segs[len(r.segs)-1].name
}

// add writes the versions of a segment just published (its lines, in
// order) as a run, and merges the runs of a level once it holds runFanIn.
func (r *runs) add(name string, versions []version, hub record.Hub) error {
	seg := uint64(len(r.segs))
	r.segs = append(r.segs, runSegment{name: name, lines: len(versions), hub: hub})
	// The versions' places, sorted by id, then as written, with the
	// first bytes of each id as a number beside it: it decides most
	// comparisons without a call to compare the strings.
	type place struct {
		prefix uint64
		line   int
	}
	order := make([]place, len(versions))
	for i, v := range versions {
		order[i] = place{idPrefix(v.id), i}
	}
	slices.SortFunc(order, func(a, b place) int {
		if a.prefix != b.prefix {
			return cmp.Compare(a.prefix, b.prefix)
		}
		if c := strings.Compare(versions[a.line].id, versions[b.line].id); c != 0 {
			return c
		}
		return a.line - b.line
	})
	if err := os.MkdirAll(r.dir, 0o755); err != nil {
		return err
	}
	// One entry for the run, not one allocated a version (put keeps no
	// pointer to it); and each tag set looked up once by its pointer, which
	// a segment's versions share (segment.tagsOf), not hashed a version.
	// Versions read back from a segment (catchUpByRuns) have a pointer
	// each and are looked up each, by value, as before.
	var e runEntry
	tagOf := map[*Tags]uint64{}
	err := r.writeRun(0, uint64(len(order)), func(put func(*runEntry) error) error {
		for _, p := range order {
			v := &versions[p.line]
			tag, ok := tagOf[v.tags]
			if !ok {
				tag = r.tagOf(*v.tags)
				tagOf[v.tags] = tag
			}
			e = runEntry{id: v.id, fp: v.fp, seg: seg, line: uint64(p.line), tag: tag}
			if err := put(&e); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	return r.merged(0)
}

// idPrefix is the first eight bytes of id as a big-endian number, zeros
// after a shorter id: ids ordered by it are in byte order, but for those
// with the same.
func idPrefix(id string) uint64 {
	var b [8]byte
	copy(b[:], id)
	return binary.BigEndian.Uint64(b[:])
}

func (r *runs) tagOf(t Tags) uint64 {
	if n, ok := r.tagNo[t]; ok {
		return n
	}
	n := uint64(len(r.tags))
	r.tags = append(r.tags, t)
	r.tagNo[t] = n
	return n
}

func (r *runs) newPath() string {
	r.made++
	return filepath.Join(r.dir, fmt.Sprintf("%08d.run", r.made))
}

// merged merges a level into one run of the next once it holds
// runFanIn runs, and removes its file.
func (r *runs) merged(level int) error {
	lv := r.levels[level]
	if len(lv.spans) < runFanIn {
		return nil
	}
	m, err := r.openMerge([]runLevel{lv})
	if err != nil {
		return err
	}
	err = r.writeRun(level+1, m.total, func(put func(*runEntry) error) error {
		for {
			e, err := m.next()
			if e == nil || err != nil {
				return err
			}
			if err := put(e); err != nil {
				return err
			}
		}
	})
	m.close()
	if err != nil {
		return err
	}
	_ = os.Remove(lv.path)
	r.levels[level] = runLevel{}
	return r.merged(level + 1)
}

// A run is its entries in order, each: the id's length (uvarint), the id,
// the fingerprint, segment, line and tag set (uvarints); then the number
// of entries (8 bytes, big-endian). writeRun appends one to a level's
// file, making the file for the level's first. A run is read only by the
// writer that wrote it, and checked as it is read (runReader.next); a
// file that is not the size its runs make is not appended to.
func (r *runs) writeRun(level int, n uint64, fill func(put func(*runEntry) error) error) error {
	for len(r.levels) <= level {
		r.levels = append(r.levels, runLevel{})
	}
	lv := &r.levels[level]
	var f *os.File
	var err error
	if lv.path == "" {
		lv.path = r.newPath()
		f, err = os.OpenFile(lv.path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	} else {
		f, err = os.OpenFile(lv.path, os.O_WRONLY|os.O_APPEND, 0)
		if err == nil {
			var info os.FileInfo
			if info, err = f.Stat(); err == nil && info.Size() != lv.end {
				err = fmt.Errorf("%s: %w: %d bytes, its runs %d", lv.path, errBadRun, info.Size(), lv.end)
			}
			if err != nil {
				f.Close()
			}
		}
	}
	if err != nil {
		return fmt.Errorf("writing index run: %w", err)
	}
	if r.w == nil {
		r.w = bufio.NewWriterSize(f, 64<<10)
	} else {
		r.w.Reset(f)
	}
	w := r.w
	var buf []byte
	size := int64(0)
	written := uint64(0)
	err = fill(func(e *runEntry) error {
		buf = binary.AppendUvarint(buf[:0], uint64(len(e.id)))
		buf = append(buf, e.id...)
		buf = append(buf, e.fp[:]...)
		buf = binary.AppendUvarint(buf, e.seg)
		buf = binary.AppendUvarint(buf, e.line)
		buf = binary.AppendUvarint(buf, e.tag)
		written++
		size += int64(len(buf))
		_, err := w.Write(buf)
		return err
	})
	if err == nil && written != n {
		err = fmt.Errorf("run in %s: %d entries written, %d expected", lv.path, written, n)
	}
	if err == nil {
		_, err = w.Write(binary.BigEndian.AppendUint64(buf[:0], n))
		size += 8
	}
	if err == nil {
		err = w.Flush()
	}
	w.Reset(nil) // not to hold the file
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		// The file is left as it is, not the size its runs make: the runs
		// are given up (jsonl.dropRuns), or the next write finds it so.
		return fmt.Errorf("writing index run: %w", err)
	}
	lv.spans = append(lv.spans, runSpan{off: lv.end, size: size})
	lv.end += size
	return nil
}

// errBadRun marks a run that does not read back as written.
var errBadRun = errors.New("index run damaged")

// runReader reads a run entry by entry, checking each against the
// writer's segments and tag sets, and the count at its end.
type runReader struct {
	name string // its file and where in it, for errors
	r    *bufio.Reader
	n    uint64 // entries in the run, from its end
	read uint64
	cur  runEntry
	buf  []byte // the last entry's id and fingerprint
	r0   *runs
}

// Close implements kmerge.Reader: the file is the merge's to close.
func (rr *runReader) Close() error { return nil }

// openRun reads the run at span of f, a level's file of size bytes.
func (r *runs) openRun(f *os.File, size int64, span runSpan) (*runReader, error) {
	name := fmt.Sprintf("%s@%d", f.Name(), span.off)
	if span.size < 8 || span.off+span.size > size {
		return nil, fmt.Errorf("%s: %w: %d bytes from %d, the file %d", name, errBadRun, span.size, span.off, size)
	}
	var tail [8]byte
	if _, err := f.ReadAt(tail[:], span.off+span.size-8); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	body := io.NewSectionReader(f, span.off, span.size-8)
	return &runReader{name: name, r: bufio.NewReaderSize(body, 32<<10), n: binary.BigEndian.Uint64(tail[:]), r0: r}, nil
}

// Next reads the next entry into rr.cur; false at the end of the run.
func (rr *runReader) Next() (bool, error) {
	if rr.read == rr.n {
		if _, err := rr.r.ReadByte(); err != io.EOF {
			return false, fmt.Errorf("%s: %w: more than its %d entries", rr.name, errBadRun, rr.n)
		}
		return false, nil
	}
	bad := func(what string) (bool, error) {
		return false, fmt.Errorf("%s: %w: entry %d: %s", rr.name, errBadRun, rr.read, what)
	}
	l, err := binary.ReadUvarint(rr.r)
	if err != nil || l == 0 || l > 1<<16 {
		return bad("id length")
	}
	buf := slices.Grow(rr.buf[:0], int(l)+fpLen)[:int(l)+fpLen]
	rr.buf = buf
	if _, err := io.ReadFull(rr.r, buf); err != nil {
		return bad("truncated")
	}
	e := &rr.cur
	prev := e.id
	e.id = string(buf[:l])
	copy(e.fp[:], buf[l:])
	if e.seg, err = binary.ReadUvarint(rr.r); err != nil || e.seg >= uint64(len(rr.r0.segs)) {
		return bad("segment")
	}
	if e.line, err = binary.ReadUvarint(rr.r); err != nil || e.line >= uint64(rr.r0.segs[e.seg].lines) {
		return bad("line")
	}
	if e.tag, err = binary.ReadUvarint(rr.r); err != nil || e.tag >= uint64(len(rr.r0.tags)) {
		return bad("tag set")
	}
	if rr.read > 0 && e.id < prev {
		return bad("out of order")
	}
	rr.read++
	return true, nil
}

// merge reads runs as one, in entry order.
type merge struct {
	km    *kmerge.Merge[*runReader]
	files []*os.File // the levels' files the runs are in
	total uint64     // entries in all the runs
	taken bool       // the last entry given is the top run's current one
}

// openMerge reads the runs of levels as one, each level's file opened
// once.
func (r *runs) openMerge(levels []runLevel) (*merge, error) {
	m := &merge{}
	var rs []*runReader
	fail := func(err error) (*merge, error) {
		m.closeFiles() // the readers hold nothing but these files
		return nil, err
	}
	for _, lv := range levels {
		if len(lv.spans) == 0 {
			continue
		}
		f, err := os.Open(lv.path)
		if err != nil {
			return fail(err)
		}
		m.files = append(m.files, f)
		info, err := f.Stat()
		if err != nil {
			return fail(err)
		}
		for _, sp := range lv.spans {
			rr, err := r.openRun(f, info.Size(), sp)
			if err != nil {
				return fail(err)
			}
			m.total += rr.n
			rs = append(rs, rr)
		}
	}
	km, err := kmerge.New(rs, func(a, b *runReader) bool { return a.cur.before(&b.cur) })
	if err != nil {
		m.closeFiles() // kmerge.New closed the readers
		return nil, err
	}
	m.km = km
	return m, nil
}

func (m *merge) closeFiles() {
	for _, f := range m.files {
		f.Close()
	}
	m.files = nil
}

// next gives the next entry (valid until the next call), nil at the end.
func (m *merge) next() (*runEntry, error) {
	if m.taken {
		if err := m.km.Advance(); err != nil {
			return nil, err
		}
	}
	rr, ok := m.km.Top()
	if m.taken = ok; !ok {
		return nil, nil
	}
	return &rr.cur, nil
}

func (m *merge) close() {
	m.km.Close()
	m.closeFiles()
}

// bulkChunk is how many versions, in id order, one transaction of an
// index build from runs adds: they land on few leaf pages.
const bulkChunk = 4 * indexChunk

// build adds the versions of every run to the index, in id order, drops
// the lines of versions sealed twice from the later segments, and has
// the index cover every segment of the folder. It marks the index
// (metaBulk) until it is done: an index found marked was interrupted and
// is built again from the segments (catchUp). Called with the hub's lock
// held, by the folder's only writer.
func (r *runs) build(ix *hubIndex) (dropped dropCounts, err error) {
	m, err := r.openMerge(r.levels)
	if err != nil {
		return dropped, err
	}
	defer m.close()
	err = ix.update(func(tx *bolt.Tx) error {
		meta, err := tx.CreateBucketIfNotExists([]byte(bucketMeta))
		if err != nil {
			return err
		}
		return meta.Put([]byte(metaBulk), []byte(r.last()))
	})
	if err != nil {
		return dropped, err
	}
	drop := map[uint64][]bool{} // by segment, the lines to drop
	batch := make([]version, 0, bulkChunk)
	tags := make([]*Tags, len(r.tags))
	for i := range r.tags {
		tags[i] = &r.tags[i]
	}
	var id string
	var fps [][fpLen]byte // of the versions of id so far
	for {
		e, err := m.next()
		if err != nil {
			return dropped, err
		}
		if e == nil {
			break
		}
		if e.id != id {
			if len(batch) >= bulkChunk {
				if err := ix.apply(batch, nil); err != nil {
					return dropped, err
				}
				if err := ix.reopen(); err != nil {
					return dropped, err
				}
				batch = batch[:0]
			}
			id, fps = e.id, fps[:0]
		}
		if slices.Contains(fps, e.fp) { // sealed before by this writer
			lines := drop[e.seg]
			if lines == nil {
				lines = make([]bool, r.segs[e.seg].lines)
				drop[e.seg] = lines
			}
			lines[e.line] = true
			continue
		}
		fps = append(fps, e.fp)
		batch = append(batch, version{id: id, fp: e.fp, tags: tags[e.tag]})
	}
	if err := ix.apply(batch, nil); err != nil {
		return dropped, err
	}
	// The segments' lines, now that the index holds their versions: a
	// segment is rewritten whole, or removed when nothing in it is left.
	for seg, lines := range drop {
		path := filepath.Join(filepath.Dir(r.dir), r.segs[seg].name)
		n := 0
		for _, d := range lines {
			if d {
				n++
			}
		}
		freed, removed, err := pruneSegment(path, r.dir, len(lines)-n, func(line int) bool { return !lines[line] })
		if err != nil {
			return dropped, err
		}
		dropped.lines += n
		dropped.bytes += freed
		if removed {
			dropped.segments++
		}
	}
	hub := r.segs[len(r.segs)-1].hub
	for i := len(r.segs) - 1; i >= 0; i-- {
		if d := drop[uint64(i)]; d == nil || slices.Contains(d, false) {
			hub = r.segs[i].hub // of the last segment left
			break
		}
	}
	return dropped, ix.coverAll(&hub)
}

// catchUpByRuns indexes the segment files the index does not cover yet
// as the folder's only writer indexes its seals (hubIndex.dropRepeats):
// each loses its lines of versions the index holds (rewritten, or
// removed when that is all of them) and goes to a run; a version in two
// of them is then dropped from the later at the build.
func (ix *hubIndex) catchUpByRuns(files []string) error {
	r, err := newRuns(ix.dir)
	if err != nil {
		return err
	}
	defer os.RemoveAll(r.dir)
	for _, f := range files {
		var versions []version
		var hub record.Hub
		err := readVersions(f, func(v version, h record.Hub) error {
			versions, hub = append(versions, v), h
			return nil
		})
		if err != nil {
			return err
		}
		found, err := ix.has(versions)
		if err != nil {
			return err
		}
		if slices.Contains(found, true) {
			kept := versions[:0:0]
			for i, v := range versions {
				if !found[i] {
					kept = append(kept, v)
				}
			}
			ix.log.Info().Str("segment", f).Int("lines", len(versions)-len(kept)).Msg("dropping the lines of record versions an earlier segment holds")
			if _, _, err := pruneSegment(f, r.dir, len(kept), func(line int) bool { return !found[line] }); err != nil {
				return err
			}
			if versions = kept; len(kept) == 0 {
				continue
			}
		}
		if err := r.add(filepath.Base(f), versions, hub); err != nil {
			return err
		}
	}
	if len(r.segs) == 0 {
		return nil
	}
	_, err = r.build(ix)
	return err
}

// dropCounts is what a build dropped from the segments.
type dropCounts struct {
	lines, segments int
	bytes           int64
}

// coverAll records that the index covers every segment of the folder,
// whose latest record has hub, and that no build is under way.
func (ix *hubIndex) coverAll(hub *record.Hub) error {
	files, err := segmentFiles(ix.dir)
	if err != nil {
		return err
	}
	last := ""
	if len(files) > 0 {
		last = filepath.Base(files[len(files)-1])
	}
	return ix.update(func(tx *bolt.Tx) error {
		m, err := tx.CreateBucketIfNotExists([]byte(bucketMeta))
		if err != nil {
			return err
		}
		if err := m.Delete([]byte(metaBulk)); err != nil {
			return err
		}
		return setCovered(m, last, uint64(len(files)), hub)
	})
}

// setCovered records in the meta bucket that the index covers segments
// segments, the last named last, whose latest record has hub.
func setCovered(m *bolt.Bucket, last string, segments uint64, hub *record.Hub) error {
	if err := m.Put([]byte(metaSegments), binary.BigEndian.AppendUint64(nil, segments)); err != nil {
		return err
	}
	if err := m.Put([]byte(metaLast), []byte(last)); err != nil {
		return err
	}
	b, err := json.Marshal(hub)
	if err != nil {
		return err
	}
	return m.Put([]byte(metaHub), b)
}

// copyLines writes the lines of file src that keep keeps (by their
// number, from 0) to the new file dst, fsynced, and tells how many lines
// src has.
func copyLines(src, dst string, keep func(line int) bool) (lines int, err error) {
	err = WriteNewFile(dst, func(w *bufio.Writer) error {
		return scanLines(src, func(b []byte) error {
			if keep(lines) {
				_, _ = w.Write(b)
				_ = w.WriteByte('\n')
			}
			lines++
			return nil
		})
	})
	return lines, err
}

// pruneSegment keeps, durably, only the lines of a published segment
// that keep keeps, kept of them: it removes the segment when that is
// none, else replaces it by those lines, written first to a file in
// tmpDir (a folder of the same hub folder). It tells how many bytes
// smaller the folder is and whether the segment was removed.
func pruneSegment(path, tmpDir string, kept int, keep func(line int) bool) (freed int64, removed bool, err error) {
	before, err := os.Stat(path)
	if err != nil {
		return 0, false, err
	}
	if kept == 0 {
		if err := os.Remove(path); err != nil {
			return 0, false, err
		}
		return before.Size(), true, SyncDir(filepath.Dir(path))
	}
	if err := os.MkdirAll(tmpDir, 0o755); err != nil {
		return 0, false, err
	}
	tmp := filepath.Join(tmpDir, "rewrite.tmp")
	_ = os.Remove(tmp) // left by a writer that stopped
	if _, err := copyLines(path, tmp, keep); err != nil {
		return 0, false, fmt.Errorf("rewriting %s: %w", path, err)
	}
	after, err := os.Stat(tmp)
	if err == nil {
		err = renameDurably(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return 0, false, err
	}
	return before.Size() - after.Size(), false, nil
}
