package sink

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/rs/zerolog"
	bolt "go.etcd.io/bbolt"

	"github.com/citecrawl/citecrawl/record"
)

// The index of a hub folder (HUB/.index.db, a bbolt file) says what its
// segments hold: every record version written (its id and content
// fingerprint), the tags of each record's latest version, counted by tag
// set for summary.json, and which segments it covers. It lets a writer
// tell whether a record was written, and write the summary, without
// keeping anything per record in memory. The segments stay the truth: an
// index that is missing, unreadable or does not match them is built again
// from them.
//
// Every writer sharing the folder uses the same index. It is updated only
// while the hub folder's lock is held, right after a segment is published
// (one batch per segment, not per record); the lock-free look-ups of Write
// open it read-only. Segments are named by the time they are published,
// under the lock, so a segment not yet indexed (a writer died between
// publishing it and indexing it) is one named after the last one indexed.
const indexFile = ".index.db"

// The buckets and keys of the index, converted to []byte where used.
const (
	// id -> tag set number (uvarint), then the fingerprint of every
	// version written, oldest first (fpLen bytes each).
	bucketRecords = "records"
	// tag set number (8 bytes, big-endian) -> how many records have it as
	// their latest version's (8 bytes), then the tags (encodeTags).
	bucketTagSets = "tagsets"
	// metaLast, metaSegments, metaHub.
	bucketMeta = "meta"

	metaLast     = "last"     // the last segment indexed
	metaSegments = "segments" // how many segments are indexed (8 bytes)
	metaHub      = "hub"      // the hub of the latest record (JSON)
	metaState    = "state"    // "clean", or "dirty BOOT ID" (see markDirty)
)

// fpLen is the length of a fingerprint in the index: record.Fingerprint's
// 24 hex digits as bytes.
const fpLen = 12

// indexChunk is how many records one index transaction (or one look-up
// of many) takes: bbolt keeps every page a transaction changes in memory
// until it commits, and every page it touched stays mapped (with the
// kernel's fault-around, up to 64 kB around each) until the file is
// closed; so a big segment is indexed in several transactions, the file
// closed and opened again between them. 1,024 records map at most 64 MiB
// and change at most 1,024 pages (about 2 MiB in memory with indexPageSize,
// 8 MiB in an index made with 4 kB pages), however big the index.
const indexChunk = 1024

// indexPageSize is the page size of a new index file (one written before
// keeps its own). Record ids are random, so the records a transaction adds
// land on as many leaf pages, each read into memory, changed and written
// again whole: with a 1 kB page rather than the system's 4 kB, adding a
// record costs about half the memory allocated (at 50,000 records in a
// folder, 410 added a transaction: 5.3 against 10.2 kB a record,
// BenchmarkIndexSeal), which the collector pays for, for a B+tree one
// level deeper.
const indexPageSize = 1024

// appendFill is how full the pages of keys appended past the last are
// made (bbolt's Bucket.FillPercent; it leaves half of each page free by
// default, for keys inserted between): fewer pages to write, and still
// room in each for a second version of every record (a build over the
// folder after the rules changed) before it splits.
const appendFill = 0.8

// indexTimeout bounds the wait for the index file's own lock (bbolt's),
// held briefly by the look-ups of other writers.
const indexTimeout = time.Minute

// errIndexCorrupt marks an index that cannot be read: it is built again.
var errIndexCorrupt = errors.New("index unreadable")

// version is what the index keeps of a record version. Its tags are
// shared by the versions of a segment that have the same (segment.tagsOf):
// a segment holds few tag sets and many versions, which reprocess holds a
// batch of for every hub, in the heap that paces its collector.
type version struct {
	id   string
	fp   [fpLen]byte
	tags *Tags
}

// versionKey tells record versions apart: id and fingerprint.
type versionKey struct {
	id string
	fp [fpLen]byte
}

func keyOf(id, fp string) versionKey { return versionKey{id, fingerprintBytes(fp)} }

func versionOf(r *record.Record, fp string) version {
	tags := TagsOf(r)
	return version{id: r.ID, fp: fingerprintBytes(fp), tags: &tags}
}

// fingerprintBytes packs record.Fingerprint's hex digits; anything else
// (never written by this version) is hashed to the same length.
func fingerprintBytes(fp string) [fpLen]byte {
	var out [fpLen]byte
	if len(fp) == 2*fpLen {
		if _, err := hex.Decode(out[:], []byte(fp)); err == nil { // into out: no allocation
			return out
		}
	}
	sum := sha256.Sum256([]byte(fp))
	copy(out[:], sum[:])
	return out
}

// openIndex opens a hub folder's index: for update (creating it) or, with
// write false, read-only, returning nil when there is none yet. A file
// that is not a bbolt database is errIndexCorrupt.
func openIndex(dir string, write bool) (db *bolt.DB, err error) {
	path := filepath.Join(dir, indexFile)
	if !write {
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
	}
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true)) // see guard
	defer func() {
		if p := recover(); p != nil { // bbolt panics on some damaged files
			db, err = nil, fmt.Errorf("%s: %w: %v", path, errIndexCorrupt, p)
		}
	}()
	// Commits are not fsynced one by one where a machine crash can be told
	// (markDirty): that would cost two fsyncs more per segment sealed, and
	// for the same reason nor is the file each time it grows. A new index
	// has small pages (indexPageSize).
	noSync := write && bootID() != ""
	db, err = bolt.Open(path, 0o644, &bolt.Options{ReadOnly: !write, Timeout: indexTimeout, NoSync: noSync, NoGrowSync: noSync, PageSize: indexPageSize})
	switch {
	case err == nil:
		return db, nil
	case errors.Is(err, bolt.ErrInvalid), errors.Is(err, bolt.ErrChecksum), errors.Is(err, bolt.ErrVersionMismatch),
		errors.Is(err, bolt.ErrInvalidMapping), errors.Is(err, syscall.EINVAL):
		return nil, fmt.Errorf("%s: %w: %w", path, errIndexCorrupt, err)
	case !write && errors.Is(err, fs.ErrNotExist):
		return nil, nil
	}
	return nil, fmt.Errorf("opening index %s: %w", path, err)
}

// guard runs fn, turning a bbolt panic (a damaged page) into errIndexCorrupt;
// a read outside the mapped file, which a damaged page can point to, panics
// too instead of stopping the program.
func guard(path string, fn func() error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%s: %w: %v", path, errIndexCorrupt, p)
		}
	}()
	return fn()
}

// lookup tells which of keys (ids and fingerprints) the index holds, read
// without the hub's lock: what another writer publishes meanwhile is found
// again when this writer publishes (publish). A missing index knows
// nothing; an unreadable one is errIndexCorrupt (see rebuildIndex).
func lookup(dir string, keys []version) ([]bool, error) {
	found := make([]bool, len(keys))
	db, err := openIndex(dir, false)
	if err != nil || db == nil {
		return found, err
	}
	defer func() {
		if db != nil {
			db.Close()
		}
	}()
	for lo := 0; lo < len(keys) && err == nil; lo += indexChunk {
		if lo > 0 { // unmaps what the look-ups so far touched (see indexChunk)
			db.Close()
			if db, err = openIndex(dir, false); err != nil || db == nil {
				break
			}
		}
		err = guard(db.Path(), func() error {
			return db.View(func(tx *bolt.Tx) error {
				b := tx.Bucket([]byte(bucketRecords))
				if b == nil {
					return nil
				}
				for i := lo; i < min(lo+indexChunk, len(keys)); i++ {
					found[i] = hasVersion(b.Get([]byte(keys[i].id)), keys[i].fp)
				}
				return nil
			})
		})
	}
	return found, err
}

// hasVersion tells whether a records value lists fingerprint fp.
func hasVersion(v []byte, fp [fpLen]byte) bool {
	if v == nil {
		return false
	}
	_, n := binary.Uvarint(v)
	for v = v[n:]; len(v) >= fpLen; v = v[fpLen:] {
		if bytes.Equal(v[:fpLen], fp[:]) {
			return true
		}
	}
	return false
}

// hubIndex is a hub folder's index opened for update, with its lock held.
type hubIndex struct {
	db      *bolt.DB
	dir     string
	log     zerolog.Logger
	rebuilt bool // built again from the segments once already (rebuild)
	// dropRepeats: catch up as the folder's only writer indexes its
	// seals, through runs, dropping the lines of versions indexed or
	// written before (catchUpByRuns): that writer's seals may not have
	// been indexed at all.
	dropRepeats bool
}

// openHubIndex opens the index of a hub folder for update and brings it
// up to date with the segments there: it indexes the segments published
// after the last one it covers, and builds it again from all of them when
// it is unreadable or does not match them (a segment removed or added by
// hand, a folder written before there was an index). Called with the hub's
// lock held; close it before the lock is released.
func openHubIndex(dir string, log zerolog.Logger) (*hubIndex, error) {
	return openIndexOf(&hubIndex{dir: dir, log: log})
}

// openOwnHubIndex is openHubIndex for the folder's only writer, which
// indexes its seals at Close (see runsDir): the segments indexed when it
// is opened lose their lines of versions indexed already.
func openOwnHubIndex(dir string, log zerolog.Logger) (*hubIndex, error) {
	return openIndexOf(&hubIndex{dir: dir, log: log, dropRepeats: true})
}

func openIndexOf(ix *hubIndex) (*hubIndex, error) {
	err := ix.open()
	if errors.Is(err, errIndexCorrupt) {
		err = ix.rebuild(err)
	}
	if err != nil {
		return nil, err
	}
	return ix, nil
}

// open opens the index file for update and brings it up to date with
// the segments.
func (ix *hubIndex) open() error {
	db, err := openIndex(ix.dir, true)
	if err != nil {
		return err
	}
	ix.db = db
	if err = ix.markDirty(); err == nil {
		err = ix.catchUp()
	}
	if err != nil {
		ix.db.Close()
	}
	return err
}

// rebuild builds the index again from the segments, once it proved
// unreadable (cause): a file bbolt cannot open, or one that opens but has
// a damaged page, found when a transaction reaches it.
func (ix *hubIndex) rebuild(cause error) error {
	ix.rebuilt = true
	ix.log.Warn().Err(cause).Str("folder", ix.dir).Msg("the index of the hub folder is unreadable: building it again from the segments")
	if ix.db != nil {
		ix.db.Close() // closing a closed one does nothing
	}
	if err := os.Remove(filepath.Join(ix.dir, indexFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("removing the unreadable index: %w", err)
	}
	return ix.open()
}

// rebuildIndex builds the index of a hub folder again from the segments,
// found unreadable (cause) by a look-up. Called with the hub's lock held.
func rebuildIndex(dir string, log zerolog.Logger, cause error) error {
	ix := &hubIndex{dir: dir, log: log}
	if err := ix.rebuild(cause); err != nil {
		return err
	}
	return ix.Close()
}

// orRebuild runs fn; when fn finds the index unreadable, it builds the
// index again from the segments and runs fn once more, once for the life
// of ix (an index that is unreadable again is an error). Used only by the
// callers of hubIndex, never inside the rebuild.
func (ix *hubIndex) orRebuild(fn func() error) error {
	err := fn()
	if errors.Is(err, errIndexCorrupt) && !ix.rebuilt {
		if err = ix.rebuild(err); err == nil {
			err = fn()
		}
	}
	return err
}

func (ix *hubIndex) Close() error { return ix.db.Close() }

// bootID names this boot of the machine; "" where it cannot be told, and
// then every commit of the index is fsynced.
func bootID() string {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// markDirty makes sure the index says, durably, that it is being written
// without an fsync per commit during this boot ("dirty BOOT ID"), before
// any such commit. A process that dies leaves its writes to the system,
// which still writes them out; a machine that stops may not have, so an
// index found dirty from an earlier boot may be torn, and is built again
// from the segments. The last writer to close marks it clean (markClean).
func (ix *hubIndex) markDirty() error {
	boot := bootID()
	if boot == "" {
		return nil
	}
	want := "dirty " + boot
	var state string
	var empty bool
	err := guard(ix.db.Path(), func() error {
		return ix.db.View(func(tx *bolt.Tx) error {
			m := tx.Bucket([]byte(bucketMeta))
			empty = m == nil && tx.Bucket([]byte(bucketRecords)) == nil
			if m != nil {
				state = string(m.Get([]byte(metaState)))
			}
			return nil
		})
	})
	if err != nil || state == want {
		return err
	}
	if state != "clean" && !empty {
		ix.log.Warn().Str("folder", ix.dir).Str("state", state).
			Msg("the index of the hub folder was being written when the machine stopped: building it again from the segments")
		if err := ix.reset(); err != nil {
			return err
		}
	}
	err = ix.update(func(tx *bolt.Tx) error {
		m, err := tx.CreateBucketIfNotExists([]byte(bucketMeta))
		if err != nil {
			return err
		}
		return m.Put([]byte(metaState), []byte(want))
	})
	if err != nil {
		return err
	}
	return ix.db.Sync()
}

// markClean fsyncs a hub folder's index and marks it clean: a writer
// closing. Called with the hub's lock held.
func markClean(dir string) error {
	db, err := openIndex(dir, true)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := db.Sync(); err != nil {
		return err
	}
	err = guard(db.Path(), func() error {
		return db.Update(func(tx *bolt.Tx) error {
			m, err := tx.CreateBucketIfNotExists([]byte(bucketMeta))
			if err != nil {
				return err
			}
			return m.Put([]byte(metaState), []byte("clean"))
		})
	})
	if err != nil {
		return err
	}
	return db.Sync()
}

// meta reads what the index covers.
func (ix *hubIndex) meta() (last string, segments uint64, err error) {
	last, segments, _, err = ix.metaAll()
	return last, segments, err
}

// metaAll is meta, and whether an index build from runs was under way
// (metaBulk).
func (ix *hubIndex) metaAll() (last string, segments uint64, bulk bool, err error) {
	err = guard(ix.db.Path(), func() error {
		return ix.db.View(func(tx *bolt.Tx) error {
			if m := tx.Bucket([]byte(bucketMeta)); m != nil {
				bulk = m.Get([]byte(metaBulk)) != nil
				last = string(m.Get([]byte(metaLast)))
				if v := m.Get([]byte(metaSegments)); len(v) == 8 {
					segments = binary.BigEndian.Uint64(v)
				}
			}
			return nil
		})
	})
	return last, segments, bulk, err
}

// catchUp indexes the segments the index does not cover yet (see
// openHubIndex).
func (ix *hubIndex) catchUp() error {
	files, err := segmentFiles(ix.dir)
	if err != nil {
		return err
	}
	last, count, bulk, err := ix.metaAll()
	if err != nil {
		return err
	}
	covered := 0
	for covered < len(files) && filepath.Base(files[covered]) <= last {
		covered++
	}
	switch {
	case bulk:
		ix.log.Warn().Str("folder", ix.dir).Msg("the index of the hub folder was being built when its writer stopped: building it again from the segments")
		if err := ix.reset(); err != nil {
			return err
		}
		covered = 0
	case uint64(covered) != count || count > 0 && filepath.Base(files[covered-1]) != last:
		ix.log.Warn().Str("folder", ix.dir).Uint64("indexed", count).Int("segments", covered).
			Msg("the index of the hub folder does not match its segments: building it again from them")
		if err := ix.reset(); err != nil {
			return err
		}
		covered = 0
	case count == 0 && len(files) > 0:
		ix.log.Info().Str("folder", ix.dir).Int("segments", len(files)).Msg("building the index of the hub folder from its segments")
	case covered < len(files):
		ix.log.Info().Str("folder", ix.dir).Int("segments", len(files)-covered).Msg("indexing segments published without being indexed (a writer stopped in between)")
	}
	if ix.dropRepeats {
		return ix.catchUpByRuns(files[covered:])
	}
	for _, f := range files[covered:] {
		if err := ix.addFile(f); err != nil {
			return err
		}
	}
	return nil
}

// reset empties the index.
//
// The index's state (markDirty's) is kept: emptied, it is still being
// written, and the next open must not take it for one a machine crash
// left and build it again.
func (ix *hubIndex) reset() error {
	return ix.update(func(tx *bolt.Tx) error {
		var state []byte
		if m := tx.Bucket([]byte(bucketMeta)); m != nil {
			state = slices.Clone(m.Get([]byte(metaState)))
		}
		for _, name := range []string{bucketRecords, bucketTagSets, bucketMeta} {
			if err := tx.DeleteBucket([]byte(name)); err != nil && !errors.Is(err, bolt.ErrBucketNotFound) {
				return err
			}
		}
		if state == nil {
			return nil
		}
		m, err := tx.CreateBucket([]byte(bucketMeta))
		if err != nil {
			return err
		}
		return m.Put([]byte(metaState), state)
	})
}

// reopen closes the index file and opens it again, which unmaps the
// pages the last transactions touched.
func (ix *hubIndex) reopen() error {
	if err := ix.db.Close(); err != nil {
		return err
	}
	db, err := openIndex(ix.dir, true)
	if err != nil {
		return err
	}
	ix.db = db
	return nil
}

// addFile indexes a sealed segment file.
func (ix *hubIndex) addFile(path string) error {
	var batch []version
	var hub record.Hub
	flush := func(final bool) error {
		var err error
		if final {
			err = ix.add(filepath.Base(path), batch, &hub)
		} else if err = ix.apply(batch, markAdding(filepath.Base(path))); err == nil {
			err = ix.reopen()
		}
		batch = batch[:0]
		return err
	}
	err := readVersions(path, func(v version, h record.Hub) error {
		batch, hub = append(batch, v), h
		if len(batch) == indexChunk {
			return flush(false)
		}
		return nil
	})
	if err != nil {
		return err
	}
	return flush(true)
}

// readVersions calls fn with the version of every line of a segment file
// and its record's hub. The fingerprint is the line's, from its bytes, as
// its writer worked it out: a line written as a message came need not be
// the encoding of its decoded record (an escaped invalid byte decodes to
// U+FFFD).
func readVersions(path string, fn func(v version, hub record.Hub) error) error {
	return readSegment(path, record.Unmarshal, func(line []byte, r *record.Record) error {
		fp, ok := record.FingerprintOfLine(line)
		if !ok {
			fp = r.Fingerprint()
		}
		return fn(versionOf(r, fp), r.Hub)
	})
}

// add indexes the versions of the segment named name, just published, and
// records that it covers it. hub is the hub of its latest record. Adding
// the segment last indexed again (after a rebuild that indexed it) changes
// nothing.
//
// A segment of more than indexChunk versions is added in several
// transactions; the first marks the index (metaBulk) and the last, which
// records that it covers the segment, clears the mark. An index found
// marked holds versions of a segment it does not cover, which the folder's
// only writer would take for repeats of an earlier segment and drop from
// it (hubIndex.dropRepeats): it is built again from the segments instead.
func (ix *hubIndex) add(name string, versions []version, hub *record.Hub) error {
	for len(versions) > indexChunk {
		if err := ix.apply(versions[:indexChunk], markAdding(name)); err != nil {
			return err
		}
		if err := ix.reopen(); err != nil {
			return err
		}
		versions = versions[indexChunk:]
	}
	return ix.apply(versions, func(tx *bolt.Tx) error {
		m, err := tx.CreateBucketIfNotExists([]byte(bucketMeta))
		if err != nil {
			return err
		}
		if err := m.Delete([]byte(metaBulk)); err != nil || string(m.Get([]byte(metaLast))) == name {
			return err
		}
		var n uint64
		if v := m.Get([]byte(metaSegments)); len(v) == 8 {
			n = binary.BigEndian.Uint64(v)
		}
		return setCovered(m, name, n+1, hub)
	})
}

// markAdding marks the index as adding the segment named name in several
// transactions (see add).
func markAdding(name string) func(*bolt.Tx) error {
	return func(tx *bolt.Tx) error {
		m, err := tx.CreateBucketIfNotExists([]byte(bucketMeta))
		if err != nil {
			return err
		}
		return m.Put([]byte(metaBulk), []byte(name))
	}
}

// apply adds versions in one transaction, then runs also (if any) in it.
// Adding a version the index holds changes nothing, so a segment indexed
// in part (a writer stopped half-way) can be indexed again whole.
func (ix *hubIndex) apply(versions []version, also func(*bolt.Tx) error) error {
	// In id order bbolt walks its pages once; two versions of one record
	// stay in the order they were written. (Positions are sorted, not the
	// versions, which are big to move.)
	order := make([]int, len(versions))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int {
		if c := strings.Compare(versions[a].id, versions[b].id); c != 0 {
			return c
		}
		return a - b
	})
	return ix.update(func(tx *bolt.Tx) error {
		recs, err := tx.CreateBucketIfNotExists([]byte(bucketRecords))
		if err != nil {
			return err
		}
		sets, err := loadTagSets(tx)
		if err != nil {
			return err
		}
		// One cursor and one key buffer for the look-ups of the whole
		// transaction (Get makes a cursor a call; Put copies the key).
		cur := recs.Cursor()
		var key []byte
		// Versions all past the last key, as a build's come, are appended:
		// none is there to look up but the one just put (a record's second
		// version), and the pages they fill are filled further than the
		// half bbolt leaves for keys to come between (appendFill).
		last, _ := cur.Last()
		appending := len(order) > 0 && (last == nil || versions[order[0]].id > string(last))
		if appending {
			recs.FillPercent = appendFill
		}
		prev := ""
		for _, i := range order {
			v := &versions[i]
			key = append(key[:0], v.id...)
			var old []byte
			if !appending || v.id == prev {
				var k []byte
				k, old = cur.Seek(key) // repositioned after every Put, as bbolt asks
				if !bytes.Equal(k, key) {
					old = nil
				}
			}
			prev = v.id
			if hasVersion(old, v.fp) {
				continue
			}
			set, err := sets.number(*v.tags)
			if err != nil {
				return err
			}
			// The value outlives this loop (bbolt keeps it until the
			// commit): one allocation of its size.
			val := make([]byte, 0, binary.MaxVarintLen64+len(old)+fpLen)
			val = binary.AppendUvarint(val, set)
			if old != nil {
				oldSet, n := binary.Uvarint(old)
				sets.count(oldSet, -1)
				val = append(val, old[n:]...)
			}
			sets.count(set, +1)
			if err := recs.Put(key, append(val, v.fp[:]...)); err != nil {
				return err
			}
		}
		if err := sets.save(); err != nil {
			return err
		}
		if also != nil {
			return also(tx)
		}
		return nil
	})
}

func (ix *hubIndex) update(fn func(*bolt.Tx) error) error {
	return guard(ix.db.Path(), func() error { return ix.db.Update(fn) })
}

// has tells which of versions the index holds, indexChunk at a time.
func (ix *hubIndex) has(versions []version) ([]bool, error) {
	found := make([]bool, len(versions))
	for lo := 0; lo < len(versions); lo += indexChunk {
		if lo > 0 {
			if err := ix.reopen(); err != nil {
				return nil, err
			}
		}
		err := guard(ix.db.Path(), func() error {
			return ix.db.View(func(tx *bolt.Tx) error {
				if b := tx.Bucket([]byte(bucketRecords)); b != nil {
					for i := lo; i < min(lo+indexChunk, len(versions)); i++ {
						found[i] = hasVersion(b.Get([]byte(versions[i].id)), versions[i].fp)
					}
				}
				return nil
			})
		})
		if err != nil {
			return nil, err
		}
	}
	return found, nil
}

// summary counts the latest version of each record, from the tag sets.
func (ix *hubIndex) summary() (Summary, error) {
	var hub record.Hub
	counts := map[Tags]int{}
	err := guard(ix.db.Path(), func() error {
		return ix.db.View(func(tx *bolt.Tx) error {
			if m := tx.Bucket([]byte(bucketMeta)); m != nil {
				if v := m.Get([]byte(metaHub)); v != nil {
					if err := json.Unmarshal(v, &hub); err != nil {
						return fmt.Errorf("%w: the hub: %w", errIndexCorrupt, err)
					}
				}
			}
			return eachTagSet(tx, func(_ uint64, n int64, t Tags) { counts[t] += int(n) })
		})
	})
	return summariseCounts(hub, counts), err
}

// tagSets are the tag sets of an index, loaded for one transaction:
// there are few (the distinct combinations of role, polarity, year...),
// however many records there are.
type tagSets struct {
	b       *bolt.Bucket
	numbers map[Tags]uint64
	counts  map[uint64]int64
	tags    map[uint64]Tags
	changed map[uint64]bool
}

func loadTagSets(tx *bolt.Tx) (*tagSets, error) {
	b, err := tx.CreateBucketIfNotExists([]byte(bucketTagSets))
	if err != nil {
		return nil, err
	}
	s := &tagSets{b: b, numbers: map[Tags]uint64{}, counts: map[uint64]int64{}, tags: map[uint64]Tags{}, changed: map[uint64]bool{}}
	err = eachTagSet(tx, func(k uint64, n int64, t Tags) {
		s.numbers[t], s.counts[k], s.tags[k] = k, n, t
	})
	return s, err
}

// number gives the number of a tag set, making one for a new set.
func (s *tagSets) number(t Tags) (uint64, error) {
	if k, ok := s.numbers[t]; ok {
		return k, nil
	}
	k, err := s.b.NextSequence()
	if err != nil {
		return 0, err
	}
	s.numbers[t], s.tags[k], s.changed[k] = k, t, true
	return k, nil
}

func (s *tagSets) count(k uint64, d int64) {
	s.counts[k] += d
	s.changed[k] = true
}

func (s *tagSets) save() error {
	for k := range s.changed {
		v := binary.BigEndian.AppendUint64(nil, uint64(s.counts[k]))
		if err := s.b.Put(binary.BigEndian.AppendUint64(nil, k), append(v, encodeTags(s.tags[k])...)); err != nil {
			return err
		}
	}
	return nil
}

// eachTagSet calls fn with every tag set of the index: its number, how
// many records have it, its tags.
func eachTagSet(tx *bolt.Tx, fn func(k uint64, n int64, t Tags)) error {
	b := tx.Bucket([]byte(bucketTagSets))
	if b == nil {
		return nil
	}
	return b.ForEach(func(k, v []byte) error {
		if len(k) != 8 || len(v) < 8 {
			return fmt.Errorf("%w: a tag set of %d and %d bytes", errIndexCorrupt, len(k), len(v))
		}
		t, err := decodeTags(v[8:])
		if err != nil {
			return err
		}
		fn(binary.BigEndian.Uint64(k), int64(binary.BigEndian.Uint64(v[:8])), t)
		return nil
	})
}

// encodeTags writes tags as their fields separated by a byte no label
// holds.
func encodeTags(t Tags) []byte {
	gone := "0"
	if t.Gone {
		gone = "1"
	}
	return []byte(strings.Join([]string{t.Role, t.RoleSource, t.Polarity, t.Pluralism, t.Year, t.RulesVersion, gone}, "\x1f"))
}

func decodeTags(b []byte) (Tags, error) {
	f := strings.Split(string(b), "\x1f")
	if len(f) != 7 {
		return Tags{}, fmt.Errorf("%w: a tag set of %d fields", errIndexCorrupt, len(f))
	}
	return Tags{Role: f[0], RoleSource: f[1], Polarity: f[2], Pluralism: f[3], Year: f[4], RulesVersion: f[5], Gone: f[6] == "1"}, nil
}

// eachLatest calls fn with the tags of the latest version of every record
// the index of a hub folder holds, read-only, in id order. It reads
// indexChunk records per transaction, closing the file and opening it
// again between them (see indexChunk), and calls fn between transactions:
// a writer waits for the index file one chunk at most. A record written
// meanwhile may be given or not.
//
// ok is false when the index is missing, unreadable or does not cover the
// folder's segments, found at any chunk: the caller reads the segments
// instead, leaving out the ids up to after, given to fn already (after is
// nil when none were).
func eachLatest(dir string, fn func(id string, t Tags)) (ok bool, after []byte, err error) {
	type latest struct {
		id   string
		tags Tags
	}
	var files []string
	chunk := make([]latest, 0, indexChunk)
	for {
		db, err := openIndex(dir, false)
		if err != nil || db == nil {
			if errors.Is(err, errIndexCorrupt) {
				err = nil
			}
			return false, after, err
		}
		chunk, ok = chunk[:0], false
		err = guard(db.Path(), func() error {
			return db.View(func(tx *bolt.Tx) error {
				m, recs := tx.Bucket([]byte(bucketMeta)), tx.Bucket([]byte(bucketRecords))
				if m == nil || recs == nil {
					return nil
				}
				if !covers(m, files) { // listed again only when the index changed
					var err error
					if files, err = segmentFiles(dir); err != nil || !covers(m, files) {
						return err
					}
				}
				sets := map[uint64]Tags{}
				if err := eachTagSet(tx, func(k uint64, _ int64, t Tags) { sets[k] = t }); err != nil {
					return err
				}
				ok = true
				c := recs.Cursor()
				k, v := c.First()
				if after != nil {
					if k, v = c.Seek(after); bytes.Equal(k, after) {
						k, v = c.Next()
					}
				}
				for ; k != nil && len(chunk) < indexChunk; k, v = c.Next() {
					set, _ := binary.Uvarint(v)
					chunk = append(chunk, latest{id: string(k), tags: sets[set]})
				}
				return nil
			})
		})
		db.Close()
		switch {
		case errors.Is(err, errIndexCorrupt):
			return false, after, nil
		case err != nil || !ok:
			return false, after, err
		}
		for _, l := range chunk {
			fn(l.id, l.tags)
		}
		if len(chunk) < indexChunk {
			return true, after, nil
		}
		after = []byte(chunk[len(chunk)-1].id)
	}
}

// covers tells whether an index's meta bucket says it covers the segment
// files, and can be trusted to.
func covers(m *bolt.Bucket, files []string) bool {
	if state, boot := string(m.Get([]byte(metaState))), bootID(); boot != "" && state != "clean" && state != "dirty "+boot {
		return false // perhaps torn by a machine stop (markDirty)
	}
	v := m.Get([]byte(metaSegments))
	return len(v) == 8 && binary.BigEndian.Uint64(v) == uint64(len(files)) && len(files) > 0 &&
		filepath.Base(files[len(files)-1]) == string(m.Get([]byte(metaLast)))
}
