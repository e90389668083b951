package sink

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/citecrawl/citecrawl/record"
)

// Config is the JSON Lines sink's configuration.
type Config struct {
	// Out is the output folder, or "-" for standard output.
	Out string `yaml:"out"`
	// SegmentMaxBytes seals a segment once it is this large.
	SegmentMaxBytes int64 `yaml:"segment_max_bytes"`
	// SegmentMaxAge seals a segment this long after its first record; it
	// must stay well under the sink consumer's ack wait.
	SegmentMaxAge time.Duration `yaml:"segment_max_age"`
	// SummaryOnClose writes summary.json only on Close rather than at
	// every flush (batch jobs that flush often and read it at the end).
	SummaryOnClose bool `yaml:"-"`
}

// Segment and summary names. A segment is visible only under its final
// name; while it is written it has a hidden temporary name.
const (
	segmentPrefix = "seg-"
	segmentSuffix = ".jsonl"
	SummaryFile   = "summary.json"
)

// SegmentFiles lists the sealed segments of one hub folder, oldest first.
func SegmentFiles(hubDir string) ([]string, error) {
	files, err := filepath.Glob(filepath.Join(hubDir, segmentPrefix+"*"+segmentSuffix))
	sort.Strings(files) // names start with a timestamp
	return files, err
}

// JSONL writes one folder per hub under Out, each holding sealed segment
// files of JSON lines and a summary.json.
type JSONL struct {
	cfg  Config
	log  zerolog.Logger
	now  func() time.Time
	hubs map[string]*hubDir
}

type hubDir struct {
	dir     string
	seen    seen
	latest  map[string]Tags // tags of the latest version per record id, for the summary
	seg     *os.File
	segTmp  string
	segW    *bufio.Writer
	segSize int64
	segAt   time.Time
	segKeys []string // versions in the open segment, forgotten if it fails
	dirty   bool     // the summary is out of date
	hub     record.Hub
}

// NewJSONL opens (creating if needed) the output folder.
func NewJSONL(cfg Config, log zerolog.Logger) (*JSONL, error) {
	if err := os.MkdirAll(cfg.Out, 0o755); err != nil {
		return nil, fmt.Errorf("sink output %s: %w", cfg.Out, err)
	}
	return &JSONL{cfg: cfg, log: log, now: time.Now, hubs: map[string]*hubDir{}}, nil
}

// Write implements Sink.
func (s *JSONL) Write(r *record.Record) (bool, error) {
	e, err := Encode(r)
	if err != nil {
		return false, err
	}
	return s.WriteEncoded(e)
}

// WriteEncoded is Write for a record already encoded.
func (s *JSONL) WriteEncoded(e Encoded) (bool, error) {
	r, b := e.Record, e.Line
	h, err := s.hub(r.Hub)
	if err != nil {
		return false, err
	}
	if !h.seen.add(e.Key) {
		return false, nil
	}
	h.segKeys = append(h.segKeys, e.Key)
	if h.seg == nil {
		if err := s.openSegment(h); err != nil {
			return false, err
		}
	}
	if _, err := h.segW.Write(b); err != nil {
		return false, fmt.Errorf("writing %s: %w", h.segTmp, err)
	}
	h.segSize += int64(len(b))
	h.latest[r.ID] = TagsOf(r)
	h.hub = r.Hub
	h.dirty = true
	return true, nil
}

// LoadExisting reads the state of every hub folder already under Out, as
// Write does lazily for the hubs it meets.
func (s *JSONL) LoadExisting() error {
	entries, err := os.ReadDir(s.cfg.Out)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.IsDir() && !strings.HasPrefix(e.Name(), ".") && e.Name() != "runs" {
			if _, err := s.hub(record.Hub{ID: e.Name()}); err != nil {
				return err
			}
		}
	}
	return nil
}

// EachLatest calls fn with the tags of the latest version of every record
// the sink knows (written, or loaded from earlier output).
func (s *JSONL) EachLatest(fn func(id string, t Tags)) {
	for _, h := range s.hubs {
		for id, t := range h.latest {
			fn(id, t)
		}
	}
}

// ShouldFlush implements Sink.
func (s *JSONL) ShouldFlush() bool {
	for _, h := range s.hubs {
		if h.seg != nil && (h.segSize >= s.cfg.SegmentMaxBytes || s.now().Sub(h.segAt) >= s.cfg.SegmentMaxAge) {
			return true
		}
	}
	return false
}

// Flush seals every open segment (fsync, rename, fsync the folder) and
// rewrites the summaries that changed.
func (s *JSONL) Flush() error { return s.flush(!s.cfg.SummaryOnClose) }

func (s *JSONL) flush(summaries bool) error {
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
func (s *JSONL) Close() error { return s.flush(true) }

// hub returns the state of a hub's folder, loading what earlier runs wrote
// there on first use.
func (s *JSONL) hub(hub record.Hub) (*hubDir, error) {
	key := hub.ID
	if key == "" {
		key = "unknown-hub"
	}
	if h, ok := s.hubs[key]; ok {
		return h, nil
	}
	h := &hubDir{dir: filepath.Join(s.cfg.Out, safeName(key)), seen: seen{}, latest: map[string]Tags{}}
	if err := os.MkdirAll(h.dir, 0o755); err != nil {
		return nil, fmt.Errorf("sink folder %s: %w", h.dir, err)
	}
	files, err := SegmentFiles(h.dir)
	if err != nil {
		return nil, err
	}
	for _, f := range files {
		err := ReadSegment(f, func(r *record.Record) error {
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

func (s *JSONL) openSegment(h *hubDir) error {
	now := s.now()
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	final := fmt.Sprintf("%s%s-%s%s", segmentPrefix, now.UTC().Format("20060102T150405.000000000Z"), hex.EncodeToString(rnd[:]), segmentSuffix)
	h.segTmp = filepath.Join(h.dir, "."+final+".tmp")
	f, err := os.OpenFile(h.segTmp, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("opening segment: %w", err)
	}
	h.seg, h.segW, h.segSize, h.segAt, h.segKeys = f, bufio.NewWriterSize(f, 64<<10), 0, now, nil
	return nil
}

// seal makes the open segment durable and visible under its final name.
func (s *JSONL) seal(h *hubDir) error {
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
	return nil
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

// ReadSegment calls fn for every record of a segment file.
func ReadSegment(path string, fn func(*record.Record) error) error {
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

// safeName keeps a hub id usable as a folder name.
func safeName(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.' {
			return r
		}
		return '_'
	}, s)
}
