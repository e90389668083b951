package sink

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sync/errgroup"

	"github.com/citecrawl/citecrawl/filelock"
	"github.com/citecrawl/citecrawl/record"
)

// JSONLConfig tunes the folder sink: one folder per hub under the target,
// each holding sealed segment files of JSON lines and a summary.json.
type JSONLConfig struct {
	// SegmentMaxBytes seals a segment once it is this large.
	SegmentMaxBytes int64 `yaml:"segment_max_bytes"`
	// SegmentMaxAge seals a segment this long after its first record; it
	// must stay well under the sink consumer's ack wait.
	SegmentMaxAge time.Duration `yaml:"segment_max_age"`
}

// Segment and summary names. A segment is visible only under its final
// name; while it is written it has a hidden temporary name.
const (
	segmentPrefix = "seg-"
	segmentSuffix = ".jsonl"
	SummaryFile   = "summary.json"
)

// segmentFiles lists the sealed segments of one hub folder, oldest first.
func segmentFiles(hubDir string) ([]string, error) {
	files, err := filepath.Glob(filepath.Join(hubDir, segmentPrefix+"*"+segmentSuffix))
	sort.Strings(files) // names start with a timestamp
	return files, err
}

// jsonl writes one folder per hub under dir. Several writers (sink
// stages in one or more processes) may share the folder: each writes its
// own segments, under temporary names that carry its writer id, and
// publishes one only while holding the hub folder's lock, leaving out
// what the others wrote meanwhile as the folder's index (index.go) tells,
// and then adds it to the index. So every record version is written once,
// whoever got it, and no writer keeps anything per record in memory
// beyond its open segments.
type jsonl struct {
	dir            string
	cfg            JSONLConfig
	summaryOnClose bool // WithSummaryOnClose
	dedupeAtSeal   bool // WithDedupeAtSeal
	ownFolder      bool // WithOwnFolder
	// deferIndex: the folder's only writer, looking versions up at the
	// seal and writing summaries on Close, indexes its seals at Close
	// (runsDir).
	deferIndex bool
	log        zerolog.Logger
	hubs       map[string]*hubDir
	sealedMu   sync.Mutex       // segments are sealed in the background too (StartFlush)
	sealed     Sealed           // what this writer made visible so far
	flushing   *backgroundFlush // begun by StartFlush, not waited for yet
	writer     string           // this writer's id, in its temporary file names
	alive      *os.File         // holds the lock that tells the others this writer is alive
	enc        encoder          // Write's, one at a time
	spare      spareSegments    // sealed segments' buffers, for the next ones
}

// Names in the output folder besides the hub folders and their segments.
const (
	writersDir = ".writers" // a locked <writer id>.lock file per live writer
	hubLock    = ".lock"    // in each hub folder, held to publish a segment or a summary
)

// reTemp parses a segment's temporary name: ".<final name>.<writer id>.tmp".
var reTemp = regexp.MustCompile(`^\.(` + segmentPrefix + `.+` + regexp.QuoteMeta(segmentSuffix) + `)\.([0-9]+-[0-9a-f]{8})\.tmp$`)

type hubDir struct {
	dir   string
	seg   *segment // the open segment, if any
	dirty bool     // the summary is out of date
	// lines is how many lines its last segment held: the next is made
	// room for as many, rather than grown to them.
	lines int
	// ix is its index, kept open between seals (WithOwnFolder).
	ix *hubIndex
	// runs holds the versions of the segments published and not indexed
	// yet (deferIndex); nil once given up, and the seals are then indexed
	// one by one.
	runs *runs
}

// segment is a segment being written under its temporary name. What it
// holds is known only here until it is published and indexed, so a
// segment that fails takes every version it held with it.
type segment struct {
	f        *os.File
	w        *bufio.Writer
	tmp      string
	final    string                  // its name once published
	versions []version               // of each line, in order
	has      map[versionKey]struct{} // the versions of its lines
	tags     map[Tags]*Tags          // their tag sets (tagsOf)
	hub      record.Hub              // of its latest record
	err      error                   // a write failed: it cannot be sealed
}

// openJSONL opens (creating if needed) the output folder and registers
// this writer: it holds the lock of its own file under .writers for as
// long as it is open, which is how the others know its temporary files
// are in use.
func openJSONL(_ context.Context, dir string, cfg Config, env env) (Sink, error) {
	wdir := filepath.Join(dir, writersDir)
	if err := os.MkdirAll(wdir, 0o755); err != nil {
		return nil, outputFault(dir, fmt.Errorf("sink output %s: %w", dir, err))
	}
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	id := fmt.Sprintf("%d-%s", os.Getpid(), hex.EncodeToString(rnd[:]))
	alive, ok, err := filelock.TryLock(filepath.Join(wdir, id+".lock"))
	if err == nil && !ok {
		err = errors.New("the writer id is taken")
	}
	if err != nil {
		return nil, outputFault(dir, fmt.Errorf("sink output %s: registering the writer: %w", dir, err))
	}
	removeDeadWriters(wdir)
	return &jsonl{dir: dir, cfg: cfg.JSONLConfig, summaryOnClose: env.summaryOnClose, dedupeAtSeal: env.dedupeAtSeal, ownFolder: env.ownFolder,
		deferIndex: env.ownFolder && env.dedupeAtSeal && env.summaryOnClose, log: env.log, hubs: map[string]*hubDir{},
		writer: id, alive: alive}, nil
}

// removeDeadWriters removes the lock files of writers that died without
// closing (a kill -9). Only files older than a minute are looked at: a
// writer creates its file a moment before it locks it.
func removeDeadWriters(wdir string) {
	locks, _ := filepath.Glob(filepath.Join(wdir, "*.lock"))
	for _, l := range locks {
		info, err := os.Stat(l)
		if err != nil || time.Since(info.ModTime()) < time.Minute {
			continue
		}
		if held, err := filelock.IsHeld(l); err == nil && !held {
			_ = os.Remove(l)
		}
	}
}

// Batching implements Sink: a segment is sealed at its size or age limit.
func (s *jsonl) Batching() Batching {
	return Batching{Bytes: s.cfg.SegmentMaxBytes, Age: s.cfg.SegmentMaxAge}
}

// Write implements Sink: it encodes the records and writes their lines.
func (s *jsonl) Write(ctx context.Context, records []*record.Record) (int, error) {
	return s.enc.write(ctx, records, s.WriteLines)
}

// WriteLines implements Sink. The records are looked up in the index of
// their hub folders, once per hub for the whole batch (with
// WithDedupeAtSeal, not until their segment is sealed); a full or
// read-only disk fails with ErrUnavailable.
func (s *jsonl) WriteLines(_ context.Context, lines []Line) (int, error) {
	hubs, written, err := s.lookup(lines)
	if err != nil {
		return 0, outputFault(s.dir, err)
	}
	n := 0
	for i := range lines {
		if written[i] {
			continue
		}
		wrote, err := s.write(hubs[i], &lines[i])
		if err != nil {
			return n, outputFault(s.dir, err)
		}
		if wrote {
			n++
		}
	}
	return n, nil
}

// lookup finds the hub folder of each record and whether its index holds it.
func (s *jsonl) lookup(lines []Line) ([]*hubDir, []bool, error) {
	hubs := make([]*hubDir, len(lines))
	for i := range lines {
		if lines[i].ID == "" { // the index could never hold it, and its hub's every seal would fail
			return nil, nil, fmt.Errorf("record of hub %q without an id", lines[i].Hub.ID)
		}
		h, err := s.hub(lines[i].Hub)
		if err != nil {
			return nil, nil, err
		}
		hubs[i] = h
	}
	written := make([]bool, len(lines))
	if s.dedupeAtSeal { // publish leaves out what the index holds
		return hubs, written, nil
	}
	byHub := map[*hubDir][]int{}
	for i, h := range hubs {
		byHub[h] = append(byHub[h], i)
	}
	for h, idx := range byHub {
		versions := make([]version, len(idx))
		for j, i := range idx {
			versions[j] = version{id: lines[i].ID, fp: fingerprintBytes(lines[i].Fingerprint)}
		}
		found, err := lookup(h.dir, versions)
		if errors.Is(err, errIndexCorrupt) { // a damaged page: built again
			err = s.locked(h, func() error {
				if found, err = lookup(h.dir, versions); !errors.Is(err, errIndexCorrupt) {
					return err // built again by another writer meanwhile
				}
				if rerr := rebuildIndex(h.dir, s.log, err); rerr != nil {
					return rerr
				}
				found, err = lookup(h.dir, versions)
				return err
			})
		}
		if err != nil {
			return nil, nil, err
		}
		for j, i := range idx {
			written[i] = found[j]
		}
	}
	return hubs, written, nil
}

// write adds one record to its hub's open segment, unless the segment
// holds it already.
func (s *jsonl) write(h *hubDir, l *Line) (bool, error) {
	key := keyOf(l.ID, l.Fingerprint)
	if h.seg != nil {
		if _, ok := h.seg.has[key]; ok {
			return false, nil
		}
	}
	if h.seg == nil {
		if err := s.openSegment(h); err != nil {
			return false, err
		}
	}
	seg := h.seg
	if seg.err != nil {
		return false, seg.err
	}
	_, err := seg.w.Write(l.JSON)
	if err == nil {
		err = seg.w.WriteByte('\n')
	}
	if err != nil {
		seg.err = fmt.Errorf("writing %s: %w", seg.tmp, err)
		return false, seg.err
	}
	seg.has[key] = struct{}{}
	seg.versions = append(seg.versions, version{id: key.id, fp: key.fp, tags: seg.tagsOf(l.Tags)})
	seg.hub = l.Hub
	return true, nil
}

// tagsOf is t, shared by the segment's versions that have the same.
func (seg *segment) tagsOf(t Tags) *Tags {
	if p, ok := seg.tags[t]; ok {
		return p
	}
	// A copy, not &t: a parameter whose address is kept is moved to the
	// heap on every call, found or not (a Tags a record).
	p := new(Tags)
	*p = t
	seg.tags[t] = p
	return p
}

// Flush implements Sink: it seals every open segment (fsync, rename,
// fsync the folder) and rewrites the summaries that changed. A summary
// that cannot be written does not fail the records, which are sealed: it
// is written again at the next flush.
func (s *jsonl) Flush(context.Context) error {
	if err := s.sealAll(); err != nil {
		return err
	}
	if !s.summaryOnClose {
		if err := s.writeSummaries(); err != nil {
			s.log.Warn().Err(err).Msg("summary not updated; it is written again at the next flush")
		}
	}
	return nil
}

// sealAll seals every hub's open segment, after the flush StartFlush
// began, if any.
func (s *jsonl) sealAll() error {
	werr := s.waitFlush()
	err := s.sealSegments(s.takeSegments())
	if werr == nil {
		return err // as it is, for the stage's errors.As
	}
	return errors.Join(werr, err)
}

// takeSegments takes the open segments out of use: what is written next
// goes to new ones.
func (s *jsonl) takeSegments() map[*hubDir]*segment {
	segs := map[*hubDir]*segment{}
	for _, h := range s.hubs {
		if h.seg != nil {
			segs[h], h.seg, h.lines = h.seg, nil, len(h.seg.versions)
		}
	}
	return segs
}

// sealSegments seals segments taken out of use. A full or read-only disk
// is reported once, as the condition of the whole output it is.
func (s *jsonl) sealSegments(segs map[*hubDir]*segment) error {
	var errs []error
	var down error
	for h, seg := range segs {
		err := s.seal(h, seg)
		s.spare.put(seg)
		if errors.Is(err, ErrUnavailable) && down == nil {
			down = err
		} else if err != nil && !errors.Is(err, ErrUnavailable) {
			errs = append(errs, err)
		}
	}
	if down != nil {
		return down
	}
	return errors.Join(errs...)
}

// StartFlush implements BackgroundFlusher: it takes the open segments out
// of use and seals them on another goroutine, once the flush it began
// before is done. Summaries are left to Flush and Close.
func (s *jsonl) StartFlush(context.Context) (wait func() error) {
	prev := s.waitFlush()
	f := &backgroundFlush{done: make(chan struct{})}
	if prev != nil {
		f.err = prev
		close(f.done)
	} else {
		segs := s.takeSegments()
		go func() {
			defer close(f.done)
			f.err = s.sealSegments(segs)
		}()
	}
	s.flushing = f
	return f.wait
}

// backgroundFlush is a flush StartFlush began. Its failure is returned
// by every wait, and by the next Flush or Close only if no wait was.
type backgroundFlush struct {
	done     chan struct{}
	err      error
	reported atomic.Bool
}

// wait returns the flush's result, every time: a caller that writes a
// checkpoint once it returns nil must never get nil for a failed seal
// whose failure Flush or Close saw first.
func (f *backgroundFlush) wait() error {
	<-f.done
	f.reported.Store(true)
	return f.err
}

// waitFlush waits for the flush StartFlush began, if any, and returns its
// error unless wait has returned it already.
func (s *jsonl) waitFlush() error {
	f := s.flushing
	if f == nil {
		return nil
	}
	s.flushing = nil
	<-f.done
	if f.reported.Swap(true) {
		return nil
	}
	return f.err
}

// Discard closes the open segments and removes them, unsealed
// (sink.BackgroundFlusher).
func (s *jsonl) Discard() {
	for _, seg := range s.takeSegments() {
		_ = seg.f.Close()
		_ = os.Remove(seg.tmp)
		s.spare.put(seg)
	}
}

func (s *jsonl) writeSummaries() error {
	var errs []error
	for _, h := range s.hubs {
		if !h.dirty {
			continue
		}
		err := s.locked(h, func() error {
			ix, err := s.index(h)
			if err != nil {
				return err
			}
			err = s.summarise(h, ix)
			s.release(h, ix, err == nil)
			return err
		})
		if err != nil {
			errs = append(errs, outputFault(s.dir, err))
		}
	}
	return errors.Join(errs...)
}

// summarise writes a hub's summary.json from its index. Called with the
// hub's lock held.
func (s *jsonl) summarise(h *hubDir, ix *hubIndex) error {
	var sum Summary
	err := ix.orRebuild(func() (err error) { sum, err = ix.summary(); return err })
	if err == nil {
		err = writeSummary(h.dir, sum)
	}
	if err == nil {
		h.dirty = false
	}
	return err
}

// Close implements Sink: it seals and writes the summaries, then lets the
// other writers know this one is gone.
func (s *jsonl) Close(context.Context) error {
	err := s.sealAll()
	if err == nil && s.deferIndex {
		err = s.openOtherHubs()
	}
	if err == nil {
		err = s.completeIndexes()
	}
	if err == nil {
		err = s.writeSummaries()
	}
	s.closeIndexes() // markClean opens them
	// An index left dirty costs only a rebuild if the machine stops
	// before another writer closes it clean.
	for _, h := range s.hubs {
		if cerr := s.locked(h, func() error { return markClean(h.dir) }); cerr != nil {
			s.log.Warn().Err(cerr).Str("folder", h.dir).Msg("the index was not marked clean; it is built again if the machine stops first")
		}
	}
	if s.alive != nil {
		_ = os.Remove(s.alive.Name())
		_ = s.alive.Close()
		s.alive = nil
	}
	return err
}

// hub returns the state of a hub's folder, loading what was written there
// on first use.
func (s *jsonl) hub(hub record.Hub) (*hubDir, error) {
	key := hub.ID
	if key == "" {
		key = "unknown-hub"
	}
	if h, ok := s.hubs[key]; ok {
		return h, nil
	}
	h, err := s.openHub(filepath.Join(s.dir, safeName(key)))
	if err != nil {
		return nil, err
	}
	s.hubs[key] = h
	return h, nil
}

// openHub loads the state of a hub folder, making it if needed.
func (s *jsonl) openHub(dir string) (*hubDir, error) {
	h := &hubDir{dir: dir}
	if err := os.MkdirAll(h.dir, 0o755); err != nil {
		return nil, fmt.Errorf("sink folder %s: %w", h.dir, err)
	}
	// Brings the index up to date (or builds it) before the lock-free
	// look-ups of Write use it.
	err := s.locked(h, func() error {
		if s.deferIndex { // before the index catches up: a stopped writer's runs are stale
			var err error
			if h.runs, err = newRuns(h.dir); err != nil {
				return err
			}
		}
		ix, err := s.openIndex(h.dir)
		if err != nil {
			return err
		}
		if err := ix.Close(); err != nil {
			return err
		}
		s.removeDeadTemps(h)
		return nil
	})
	if err != nil {
		return nil, err
	}
	// A summary older than the newest segment missed a write (a full
	// disk): it is written again at the next flush.
	if files, _ := segmentFiles(h.dir); len(files) > 0 {
		sum, err := os.Stat(filepath.Join(h.dir, SummaryFile))
		last, lerr := os.Stat(files[len(files)-1])
		h.dirty = err != nil || lerr == nil && sum.ModTime().Before(last.ModTime())
	}
	return h, nil
}

// openOtherHubs loads the hub folders of the output this writer has not
// written to (deferIndex): a writer that stopped may have left their
// seals out of the index, with versions sealed twice, and their summaries
// unwritten, which Close then sees to as it does for its own.
func (s *jsonl) openOtherHubs() error {
	open := map[string]bool{}
	for _, h := range s.hubs {
		open[h.dir] = true
	}
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return fmt.Errorf("reading output %s: %w", s.dir, err)
	}
	for _, e := range entries {
		dir := filepath.Join(s.dir, e.Name())
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") || open[dir] {
			continue
		}
		if _, err := os.Stat(filepath.Join(dir, indexFile)); err != nil { // not a hub folder, or none written yet
			if files, _ := segmentFiles(dir); len(files) == 0 {
				continue
			}
		}
		h, err := s.openHub(dir)
		if err != nil {
			return err
		}
		s.hubs["\x00"+e.Name()] = h // no hub id: Write never finds it
	}
	return nil
}

// locked runs fn holding the hub folder's lock, which every writer holds
// to publish a segment or a summary there.
func (s *jsonl) locked(h *hubDir, fn func() error) error {
	if err := os.MkdirAll(h.dir, 0o755); err != nil { // made again if it was removed
		return fmt.Errorf("sink folder %s: %w", h.dir, err)
	}
	l, err := filelock.Lock(filepath.Join(h.dir, hubLock))
	if err != nil {
		return fmt.Errorf("locking %s: %w", h.dir, err)
	}
	defer l.Close()
	return fn()
}

// removeDeadTemps removes the temporary segments of writers that are no
// longer alive: a crash left them, and their records were never acked,
// so they come again from the stream. A live writer's files are left
// alone. Called with the hub's lock held.
func (s *jsonl) removeDeadTemps(h *hubDir) {
	temps, _ := filepath.Glob(filepath.Join(h.dir, ".*.tmp"))
	for _, f := range temps {
		m := reTemp.FindStringSubmatch(filepath.Base(f))
		switch {
		case m == nil && strings.HasPrefix(filepath.Base(f), "."+SummaryFile+"."):
			// A summary being written; only the lock holder writes one.
		case m == nil:
			continue // not ours to judge
		case m[2] == s.writer:
			continue
		default:
			held, err := filelock.IsHeld(filepath.Join(s.dir, writersDir, m[2]+".lock"))
			if err != nil || held {
				continue
			}
		}
		s.log.Info().Str("file", f).Msg("removing an unfinished segment of a writer that has stopped")
		_ = os.Remove(f)
	}
}

// openSegment starts a segment under a temporary name of this writer.
func (s *jsonl) openSegment(h *hubDir) error {
	if err := os.MkdirAll(h.dir, 0o755); err != nil { // made again if it was removed
		return fmt.Errorf("sink folder %s: %w", h.dir, err)
	}
	tmp := s.tempName(h)
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("opening segment: %w", err)
	}
	h.seg = s.spare.get(f, tmp, h.lines)
	return nil
}

// spareSegments keeps the buffers of segments sealed (or discarded) for
// new ones: its buffer, version list and maps. Made new, they were a
// sixth of what reprocess allocates (a 64 KiB buffer and maps of about
// 800 versions for each hub at each checkpoint), and the collector runs
// more often the more is allocated. Segments are sealed on another
// goroutine (StartFlush) while new ones are opened.
type spareSegments struct {
	mu   sync.Mutex
	segs []*segment
}

// Spare segments beyond these are left to the collector: more than
// maxSpareSegments (a writer with many hub folders), or of more than
// maxSpareLines versions. A spare is live heap, which the collector
// doubles into the heap it lets grow: reprocess from a folder seals up
// to 16,384 records of a hub at once (200,000 records: 69 to 76 MiB peak
// with those kept, 63 to 64 without, 59 to 64 before spares), from the
// stream about 800 a hub.
const (
	maxSpareSegments = 64
	maxSpareLines    = 1 << 12
)

// get is a segment to write to f, under the temporary name tmp, with room
// for lines versions: a spare one emptied, or a new one.
func (sp *spareSegments) get(f *os.File, tmp string, lines int) *segment {
	sp.mu.Lock()
	var seg *segment
	if n := len(sp.segs); n > 0 {
		seg, sp.segs = sp.segs[n-1], sp.segs[:n-1]
	}
	sp.mu.Unlock()
	if seg == nil {
		return &segment{f: f, w: bufio.NewWriterSize(f, 64<<10), tmp: tmp,
			versions: make([]version, 0, lines), has: make(map[versionKey]struct{}, lines), tags: map[Tags]*Tags{}}
	}
	seg.w.Reset(f)
	*seg = segment{f: f, w: seg.w, tmp: tmp, versions: slices.Grow(seg.versions[:0], lines), has: seg.has, tags: seg.tags}
	return seg
}

// put keeps a segment that is done with (sealed, or not) for get. Its
// versions, maps and file are forgotten first: nothing of it may be read
// again.
func (sp *spareSegments) put(seg *segment) {
	if cap(seg.versions) > maxSpareLines {
		return
	}
	seg.w.Reset(nil)
	clear(seg.versions[:cap(seg.versions)]) // their ids and tags, for the collector
	clear(seg.has)                          // else the next segment would take its records for repeats
	clear(seg.tags)                         // only memory: an entry kept would point to an equal Tags
	*seg = segment{w: seg.w, versions: seg.versions[:0], has: seg.has, tags: seg.tags}
	sp.mu.Lock()
	if len(sp.segs) < maxSpareSegments {
		sp.segs = append(sp.segs, seg)
	}
	sp.mu.Unlock()
}

// segmentTime is the layout of the time in a segment's name.
const segmentTime = "20060102T150405.000000000Z"

// segmentName makes a segment name for the time t.
func segmentName(t time.Time) string {
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	return fmt.Sprintf("%s%s-%s%s", segmentPrefix, t.UTC().Format(segmentTime), hex.EncodeToString(rnd[:]), segmentSuffix)
}

// tempName makes a new segment's temporary name: a segment name of now
// and this writer's id.
func (s *jsonl) tempName(h *hubDir) string {
	return filepath.Join(h.dir, "."+segmentName(time.Now())+"."+s.writer+".tmp")
}

// publishedName names a segment published now, after the segment last:
// names, in time order, then follow the order segments were published in,
// even if the clock went back.
func publishedName(last string) string {
	t := time.Now().UTC()
	if len(last) >= len(segmentPrefix)+len(segmentTime) {
		if lt, err := time.Parse(segmentTime, last[len(segmentPrefix):len(segmentPrefix)+len(segmentTime)]); err == nil && !t.After(lt) {
			t = lt.Add(time.Microsecond)
		}
	}
	return segmentName(t)
}

// seal makes a segment taken out of use durable and visible under its
// final name. When it fails, every version the segment held is forgotten
// (the stage has them delivered again), except those another writer
// wrote.
func (s *jsonl) seal(h *hubDir, seg *segment) error {
	err := seg.err
	if err == nil {
		err = seg.w.Flush()
	}
	if err == nil {
		err = seg.f.Sync()
	}
	if cerr := seg.f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = s.locked(h, func() error { return s.publish(h, seg) })
	}
	if err != nil {
		_ = os.Remove(seg.tmp)
		return outputFault(s.dir, fmt.Errorf("sealing segment %s: %w", seg.tmp, err))
	}
	return nil
}

// publish renames a closed segment into view, leaving out the versions
// already published (by another writer since this one looked them up, or,
// with WithDedupeAtSeal, by anyone), and indexes it. Called with the hub's
// lock held.
func (s *jsonl) publish(h *hubDir, seg *segment) (err error) {
	ix, err := s.index(h)
	if err != nil {
		return err
	}
	indexed := true
	defer func() { s.release(h, ix, err == nil && indexed) }()
	// A damaged page of the index is found by the transaction reaching
	// it: the index is built again from the segments (orRebuild).
	var found []bool
	err = ix.orRebuild(func() (err error) { found, err = ix.has(seg.versions); return err })
	if err != nil {
		return err
	}
	if slices.Contains(found, true) {
		if err := s.dropLines(h, seg, found); err != nil {
			return err
		}
		if len(seg.versions) == 0 {
			return os.Remove(seg.tmp)
		}
	}
	var last string
	if err := ix.orRebuild(func() (err error) { last, _, err = ix.meta(); return err }); err != nil {
		return err
	}
	if h.runs != nil && h.runs.last() != "" { // the index covers none of them yet
		last = h.runs.last()
	}
	seg.final = filepath.Join(h.dir, publishedName(last))
	if err := renameDurably(seg.tmp, seg.final); err != nil {
		return err
	}
	// Sealed: the segment is the truth from here on. An index that cannot
	// take it is brought up to date from the segments next time.
	h.dirty = true
	var size int64
	if info, err := os.Stat(seg.final); err == nil {
		size = info.Size()
	}
	s.sealedMu.Lock()
	s.sealed.Segments++
	s.sealed.Records += int64(len(seg.versions))
	s.sealed.Bytes += size
	s.sealedMu.Unlock()
	if h.runs != nil {
		if err := h.runs.add(filepath.Base(seg.final), seg.versions, seg.hub); err != nil {
			s.log.Warn().Err(err).Str("segment", seg.final).Msg("segment published but not written to the index runs; the folder's index catches up from its segments")
			s.dropRuns(h)
			indexed = false // opened again, and so brought up to date, by the next seal
		}
		return nil
	}
	if err := ix.orRebuild(func() error { return ix.add(filepath.Base(seg.final), seg.versions, &seg.hub) }); err != nil {
		s.log.Warn().Err(err).Str("segment", seg.final).Msg("segment published but not indexed; it is indexed at the next seal in its folder")
		indexed = false // opened again, and so brought up to date, by that seal
		return nil
	}
	// The summary while the index is open and the lock held; one that
	// fails is tried again by Flush, which reports it.
	if !s.summaryOnClose {
		_ = s.summarise(h, ix)
	}
	return nil
}

// index opens a hub folder's index for update, or gives the one kept open
// (WithOwnFolder). Called with the hub's lock held; release it before the
// lock is let go.
func (s *jsonl) index(h *hubDir) (*hubIndex, error) {
	if h.ix != nil {
		return h.ix, nil
	}
	if h.runs != nil && h.runs.last() != "" {
		// Opened again after a failure: it catches up from the segments,
		// which the runs then repeat.
		s.dropRuns(h)
	}
	ix, err := s.openIndex(h.dir)
	if err != nil {
		return nil, err
	}
	if s.ownFolder {
		h.ix = ix
	}
	return ix, nil
}

// openIndex opens a hub folder's index for update (openHubIndex).
func (s *jsonl) openIndex(dir string) (*hubIndex, error) {
	if s.deferIndex {
		return openOwnHubIndex(dir, s.log)
	}
	return openHubIndex(dir, s.log)
}

// dropRuns gives up a hub folder's runs: its seals are indexed one by
// one from now on, after those published so far, which the index catches
// up with from the segments when it is opened next.
func (s *jsonl) dropRuns(h *hubDir) {
	if h.runs == nil {
		return
	}
	_ = os.RemoveAll(h.runs.dir)
	h.runs = nil
}

// completeIndexes indexes what every hub folder's runs hold (runs.build),
// or, when that fails, what its segments hold.
func (s *jsonl) completeIndexes() error {
	// The hub folders' indexes are built at once, a core each: each has
	// its own lock, index and runs, and a build waits on its reads and
	// writes as much as on the CPU (at a million records over 20 hubs,
	// built one after another they were 4 s of reprocess's 21 with one
	// core idle).
	var mu sync.Mutex
	var errs []error
	var g errgroup.Group
	g.SetLimit(runtime.GOMAXPROCS(0))
	for _, h := range s.hubs {
		if h.runs == nil || h.runs.last() == "" {
			continue
		}
		g.Go(func() error {
			if err := s.completeIndex(h); err != nil {
				mu.Lock()
				errs = append(errs, outputFault(s.dir, err))
				mu.Unlock()
			}
			return nil
		})
	}
	_ = g.Wait()
	return errors.Join(errs...)
}

// completeIndex builds a hub folder's index from its runs.
func (s *jsonl) completeIndex(h *hubDir) error {
	return s.locked(h, func() error {
		ix, err := s.index(h)
		if err != nil {
			return err
		}
		if h.runs == nil { // given up by index: it caught up from the segments
			s.release(h, ix, true)
			return nil
		}
		dropped, err := h.runs.build(ix)
		if err != nil {
			s.log.Warn().Err(err).Str("folder", h.dir).Msg("the index could not be built from its runs: building it from the segments")
			err = ix.orRebuild(ix.catchUp)
		}
		s.dropRuns(h)
		s.release(h, ix, err == nil)
		s.sealedMu.Lock()
		s.sealed.Records -= int64(dropped.lines)
		s.sealed.Segments -= int64(dropped.segments)
		s.sealed.Bytes -= dropped.bytes
		s.sealedMu.Unlock()
		return err
	})
}

// release is done with the index that index gave: it closes it, unless
// it is kept open (WithOwnFolder) and ok. One kept is only unmapped: the
// pages a seal touched would otherwise stay mapped, in the process's
// memory, for every hub at once. One closed after a failure is opened
// again, and so brought up to date with the segments, by the next seal.
func (s *jsonl) release(h *hubDir, ix *hubIndex, ok bool) {
	if ok && h.ix == ix {
		unmap(ix.db)
		return
	}
	if h.ix == ix {
		h.ix = nil
	}
	_ = ix.Close()
}

// closeIndexes closes the indexes kept open.
func (s *jsonl) closeIndexes() {
	for _, h := range s.hubs {
		if h.ix != nil {
			_ = h.ix.Close()
			h.ix = nil
		}
	}
}

// dropLines rewrites a closed segment without the lines of the versions
// marked in drop, under a new temporary name.
func (s *jsonl) dropLines(h *hubDir, seg *segment, drop []bool) error {
	tmp := s.tempName(h)
	var keep []version
	lines, err := copyLines(seg.tmp, tmp, func(i int) bool {
		if i < len(seg.versions) && !drop[i] {
			keep = append(keep, seg.versions[i])
			return true
		}
		return false
	})
	if err == nil && lines != len(seg.versions) {
		_ = os.Remove(tmp)
		err = fmt.Errorf("%s: %d lines for %d records written", seg.tmp, lines, len(seg.versions))
	}
	if err != nil {
		return err
	}
	_ = os.Remove(seg.tmp)
	seg.tmp, seg.versions = tmp, keep
	return nil
}

// Sealed implements SealCounter.
func (s *jsonl) Sealed() Sealed {
	s.sealedMu.Lock()
	defer s.sealedMu.Unlock()
	return s.sealed
}

// renameDurably renames and then fsyncs the folder so the new name
// survives a crash.
func renameDurably(tmp, final string) error {
	if err := os.Rename(tmp, final); err != nil {
		return fmt.Errorf("publishing %s: %w", final, err)
	}
	d, err := os.Open(filepath.Dir(final))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// readSegment calls fn for every record of a segment file, with its line
// (valid only during the call); decode decodes a line (record.Unmarshal,
// or another of the record package's decoders).
func readSegment(path string, decode func([]byte, *record.Record) error, fn func(line []byte, r *record.Record) error) error {
	return scanLines(path, func(b []byte) error {
		var r record.Record
		if err := decode(b, &r); err != nil {
			return err
		}
		return fn(b, &r)
	})
}

// scanLines calls fn with every line of a file; an error names the file
// and the line.
func scanLines(path string, fn func([]byte) error) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 64<<20) // grows for a longer line
	for line := 1; sc.Scan(); line++ {
		if err := fn(sc.Bytes()); err != nil {
			return fmt.Errorf("%s line %d: %w", path, line, err)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("reading %s: %w", path, err)
	}
	return nil
}

// jsonlReader reads a folder the jsonl sink wrote: hub folders by name,
// then segments oldest first, then lines.
type jsonlReader struct{ dir string }

func openJSONLReader(_ context.Context, dir string, _ Config) (Reader, error) {
	if _, err := os.Stat(dir); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("sink output %s: %w", dir, ErrNoOutput)
		}
		return nil, fmt.Errorf("sink output %s: %w", dir, err)
	}
	return jsonlReader{dir: dir}, nil
}

// segments lists the sealed segments of every hub folder, or of one.
func (r jsonlReader) segments(hub string) ([]string, error) {
	if hub != "" {
		return segmentFiles(filepath.Join(r.dir, safeName(hub)))
	}
	hubs, err := os.ReadDir(r.dir)
	if err != nil {
		return nil, fmt.Errorf("reading output %s: %w", r.dir, err)
	}
	var files []string
	for _, h := range hubs {
		if !h.IsDir() {
			continue
		}
		hubFiles, err := segmentFiles(filepath.Join(r.dir, h.Name()))
		if err != nil {
			return nil, err
		}
		files = append(files, hubFiles...)
	}
	return files, nil
}

// Records implements Reader.
func (r jsonlReader) Records(ctx context.Context, fn func(*record.Record) error, opts ...ReadOption) error {
	var o readOptions
	for _, opt := range opts {
		opt(&o)
	}
	files, err := r.segments(o.hub)
	if err != nil {
		return err
	}
	decode := record.Unmarshal
	if o.forTagging {
		var buf []byte // UnmarshalUntagged's
		decode = func(b []byte, r *record.Record) (err error) {
			buf, err = record.UnmarshalUntagged(b, r, buf)
			return err
		}
	}
	for _, f := range files {
		err := readSegment(f, decode, func(_ []byte, rec *record.Record) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			return fn(rec)
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// EachLatest implements Reader. It reads each hub folder's index, or,
// when that does not cover the folder's segments, only the tags of each
// line of them, not the contexts and evidence.
func (r jsonlReader) EachLatest(ctx context.Context, fn func(id string, t Tags)) error {
	hubs, err := os.ReadDir(r.dir)
	if err != nil {
		return fmt.Errorf("reading output %s: %w", r.dir, err)
	}
	for _, h := range hubs {
		if !h.IsDir() {
			continue
		}
		dir := filepath.Join(r.dir, h.Name())
		ok, given, err := eachLatest(dir, fn)
		if err != nil {
			return err
		}
		if ok {
			continue
		}
		files, err := segmentFiles(dir)
		if err != nil {
			return err
		}
		latest := map[string]Tags{}
		for _, f := range files {
			if err := ctx.Err(); err != nil {
				return err
			}
			if err := readTags(f, func(id string, t Tags) { latest[id] = t }); err != nil {
				return err
			}
		}
		for id, t := range latest {
			if given == nil || id > string(given) { // not given from the index already
				fn(id, t)
			}
		}
	}
	return nil
}

// safeName keeps a hub id usable as a folder name.
func safeName(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.' {
			return r
		}
		return '_'
	}, s)
}
