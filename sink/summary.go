package sink

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/citecrawl/citecrawl/record"
)

// Summary is a hub's summary.json: what citecrawl counted beside what the
// hub itself publishes.
type Summary struct {
	Hub           record.Hub        `json:"hub"`
	Records       int               `json:"records"`
	Roles         map[string]int    `json:"roles"`
	RoleSources   map[string]int    `json:"role_sources"`
	Polarities    map[string]int    `json:"polarities"`
	Pluralism     map[string]int    `json:"pluralism"`
	Years         map[string]int    `json:"years"`
	Gone          int               `json:"gone"`
	RulesVersions map[string]int    `json:"rules_versions"`
	Published     *record.HubCounts `json:"published,omitempty"`
}

// Tags are the parts of a record a summary counts, kept per record id
// instead of the whole record so memory stays small on big outputs.
type Tags struct {
	Role, RoleSource, Polarity, Pluralism, Year, RulesVersion string
	Gone                                                      bool
}

// TagsOf takes the counted parts of a record.
func TagsOf(r *record.Record) Tags {
	t := Tags{Role: r.Role, RoleSource: r.RoleSource, Polarity: r.Polarity, RulesVersion: r.RulesVersion, Gone: r.Gone, Year: "unknown"}
	if r.Pluralism != nil {
		t.Pluralism = r.Pluralism.Primary
	}
	if len(r.Paper.Published) >= 4 {
		t.Year = r.Paper.Published[:4]
	}
	return t
}

// Summarise counts the latest version of each record; papers the hub no
// longer lists are counted as gone, not in the distributions.
func Summarise(hub record.Hub, latest map[string]Tags) Summary {
	counts := map[Tags]int{}
	for _, t := range latest {
		counts[t]++
	}
	return summariseCounts(hub, counts)
}

// summariseCounts is Summarise given how many records have each set of
// tags (the folder sink's index keeps them so).
func summariseCounts(hub record.Hub, counts map[Tags]int) Summary {
	s := Summary{
		Hub:   hub,
		Roles: map[string]int{}, RoleSources: map[string]int{}, Polarities: map[string]int{},
		Pluralism: map[string]int{}, Years: map[string]int{}, RulesVersions: map[string]int{},
		Published: hub.Published,
	}
	s.Hub.Published = nil // shown once, at the top level
	for t, n := range counts {
		if n <= 0 {
			continue
		}
		if t.Gone {
			s.Gone += n
			continue
		}
		s.Records += n
		s.Roles[t.Role] += n
		s.RoleSources[t.RoleSource] += n
		s.Polarities[t.Polarity] += n
		if t.Pluralism != "" {
			s.Pluralism[t.Pluralism] += n
		}
		s.Years[t.Year] += n
		s.RulesVersions[t.RulesVersion] += n
	}
	return s
}

func writeSummary(dir string, sum Summary) error {
	b, err := json.MarshalIndent(sum, "", "  ")
	if err != nil {
		return err
	}
	return WriteFileAtomic(filepath.Join(dir, SummaryFile), append(b, '\n'))
}

// WriteFileAtomic writes data to a temporary file beside path, fsyncs it
// and renames it over path, so readers see the old file or the new one,
// never a part. The temporary name is unique, so two processes writing
// the same file never write into each other's.
func WriteFileAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(0o644)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = renameDurably(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// WriteNewFile creates path, which must not exist yet, writes it through
// a buffer with fill and fsyncs it (not its folder: SyncDir, once for
// the files a caller makes together). On any failure the file is
// removed, so no partial file stays behind under that name.
func WriteNewFile(path string, fill func(w *bufio.Writer) error) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 64<<10)
	err = fill(w)
	if err == nil {
		err = w.Flush()
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(path)
	}
	return err
}

// tagView is the part of a record line that Tags need: decoding only it
// skips building contexts and evidence.
type tagView struct {
	ID         string `json:"id"`
	Role       string `json:"role"`
	RoleSource string `json:"role_source"`
	Polarity   string `json:"polarity"`
	Pluralism  *struct {
		Primary string `json:"primary"`
	} `json:"pluralism"`
	Paper struct {
		Published string `json:"published"`
	} `json:"paper"`
	RulesVersion string `json:"rules_version"`
	Gone         bool   `json:"gone"`
}

// readTags calls fn with the id and tags of every line of a segment file.
func readTags(path string, fn func(id string, t Tags)) error {
	return scanLines(path, func(b []byte) error {
		var v tagView
		if err := json.Unmarshal(b, &v); err != nil {
			return err
		}
		r := record.Record{Role: v.Role, RoleSource: v.RoleSource, Polarity: v.Polarity,
			Paper: record.Paper{Published: v.Paper.Published}, RulesVersion: v.RulesVersion, Gone: v.Gone}
		if v.Pluralism != nil {
			r.Pluralism = &record.Pluralism{Primary: v.Pluralism.Primary}
		}
		fn(v.ID, TagsOf(&r))
		return nil
	})
}
