package sink

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/rs/zerolog"

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

// jsonl writes one folder per hub under dir. It remembers every version
// it finds or writes there, so a record delivered twice is written once.
type jsonl struct {
	dir            string
	cfg            JSONLConfig
	summaryOnClose bool // WithSummaryOnClose
	log            zerolog.Logger
	hubs           map[string]*hubDir
	sealed         Sealed // segments made visible so far
}

type hubDir struct {
	dir     string
	seen    seen
	latest  map[string]Tags // tags of the latest version per record id, for the summary
	seg     *os.File
	segTmp  string
	segW    *bufio.Writer
	segKeys []string // versions in the open segment, forgotten if it fails
	dirty   bool     // the summary is out of date
	hub     record.Hub
}

// openJSONL opens (creating if needed) the output folder.
func openJSONL(_ context.Context, dir string, cfg Config, env env) (Sink, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("sink output %s: %w", dir, err)
	}
	return &jsonl{dir: dir, cfg: cfg.JSONLConfig, summaryOnClose: env.summaryOnClose, log: env.log, hubs: map[string]*hubDir{}}, nil
}

// Batching implements Sink: a segment is sealed at its size or age limit.
func (s *jsonl) Batching() Batching {
	return Batching{Bytes: s.cfg.SegmentMaxBytes, Age: s.cfg.SegmentMaxAge}
}

// Write implements Sink.
func (s *jsonl) Write(_ context.Context, records []*record.Record) (int, error) {
	encs, err := encodeAll(records)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, e := range encs {
		wrote, err := s.write(e)
		if err != nil {
			return n, err
		}
		if wrote {
			n++
		}
	}
	return n, nil
}

// write adds one record to its hub's open segment, unless it was written
// before.
func (s *jsonl) write(e encoded) (bool, error) {
	r := e.rec
	h, err := s.hub(r.Hub)
	if err != nil {
		return false, err
	}
	if !h.seen.add(e.key) {
		return false, nil
	}
	h.segKeys = append(h.segKeys, e.key)
	if h.seg == nil {
		if err := s.openSegment(h); err != nil {
			return false, err
		}
	}
	if _, err := h.segW.Write(e.line); err != nil {
		return false, fmt.Errorf("writing %s: %w", h.segTmp, err)
	}
	h.latest[r.ID] = TagsOf(r)
	h.hub = r.Hub
	h.dirty = true
	return true, nil
}

// Flush implements Sink: it seals every open segment (fsync, rename,
// fsync the folder) and rewrites the summaries that changed.
func (s *jsonl) Flush(context.Context) error { return s.flush(!s.summaryOnClose) }

func (s *jsonl) flush(summaries bool) error {
	for _, h := range s.hubs {
		if err := s.seal(h); err != nil {
			return err
		}
		if summaries && h.dirty {
			if err := writeSummary(h); err != nil {
				return err
			}
			h.dirty = false
		}
	}
	return nil
}

// Close implements Sink.
func (s *jsonl) Close(context.Context) error { return s.flush(true) }

// hub returns the state of a hub's folder, loading what earlier runs wrote
// there on first use.
func (s *jsonl) hub(hub record.Hub) (*hubDir, error) {
	key := hub.ID
	if key == "" {
		key = "unknown-hub"
	}
	if h, ok := s.hubs[key]; ok {
		return h, nil
	}
	h := &hubDir{dir: filepath.Join(s.dir, safeName(key)), seen: seen{}, latest: map[string]Tags{}}
	if err := os.MkdirAll(h.dir, 0o755); err != nil {
		return nil, fmt.Errorf("sink folder %s: %w", h.dir, err)
	}
	files, err := segmentFiles(h.dir)
	if err != nil {
		return nil, err
	}
	for _, f := range files {
		err := readSegment(f, func(r *record.Record) error {
			h.seen.add(versionKey(r))
			h.latest[r.ID] = TagsOf(r)
			h.hub = r.Hub
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	// Temporary files left by a crash were never acked: their records
	// come again from the stream, so the files can go.
	stale, _ := filepath.Glob(filepath.Join(h.dir, ".*.tmp"))
	for _, f := range stale {
		s.log.Info().Str("file", f).Msg("removing unfinished segment of an earlier run")
		_ = os.Remove(f)
	}
	s.hubs[key] = h
	return h, nil
}

func (s *jsonl) openSegment(h *hubDir) error {
	now := time.Now()
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	final := fmt.Sprintf("%s%s-%s%s", segmentPrefix, now.UTC().Format("20060102T150405.000000000Z"), hex.EncodeToString(rnd[:]), segmentSuffix)
	h.segTmp = filepath.Join(h.dir, "."+final+".tmp")
	f, err := os.OpenFile(h.segTmp, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("opening segment: %w", err)
	}
	h.seg, h.segW, h.segKeys = f, bufio.NewWriterSize(f, 64<<10), nil
	return nil
}

// seal makes the open segment durable and visible under its final name.
func (s *jsonl) seal(h *hubDir) error {
	if h.seg == nil {
		return nil
	}
	tmp := h.segTmp
	final := filepath.Join(h.dir, strings.TrimSuffix(strings.TrimPrefix(filepath.Base(tmp), "."), ".tmp"))
	err := h.segW.Flush()
	if err == nil {
		err = h.seg.Sync()
	}
	if cerr := h.seg.Close(); err == nil {
		err = cerr
	}
	h.seg, h.segW = nil, nil
	if err == nil {
		err = renameDurably(tmp, final)
	}
	if err != nil {
		// The records will be redelivered: they must not look written.
		_ = os.Remove(tmp)
		for _, k := range h.segKeys {
			delete(h.seen, k)
		}
		h.segKeys = nil
		return fmt.Errorf("sealing segment %s: %w", tmp, err)
	}
	h.segKeys = nil
	s.sealed.Segments++
	if info, err := os.Stat(final); err == nil {
		s.sealed.Bytes += info.Size()
	}
	return nil
}

// Sealed implements SealCounter.
func (s *jsonl) Sealed() Sealed { return s.sealed }

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

// readSegment calls fn for every record of a segment file.
func readSegment(path string, fn func(*record.Record) error) error {
	return scanLines(path, func(b []byte) error {
		var r record.Record
		if err := json.Unmarshal(b, &r); err != nil {
			return err
		}
		return fn(&r)
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
	sc.Buffer(make([]byte, 1<<20), 64<<20)
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
	for _, f := range files {
		err := readSegment(f, func(rec *record.Record) error {
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

// EachLatest implements Reader. It decodes only the tags of each line,
// not the contexts and evidence.
func (r jsonlReader) EachLatest(ctx context.Context, fn func(id string, t Tags)) error {
	files, err := r.segments("")
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
		fn(id, t)
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
