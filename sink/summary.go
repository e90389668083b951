package sink

import (
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
	RulesVersions map[string]int    `json:"rules_versions"`
	Published     *record.HubCounts `json:"published,omitempty"`
}

// Summarise counts the latest version of each record.
func Summarise(hub record.Hub, latest map[string]*record.Record) Summary {
	s := Summary{
		Hub: hub, Records: len(latest),
		Roles: map[string]int{}, RoleSources: map[string]int{}, Polarities: map[string]int{},
		Pluralism: map[string]int{}, Years: map[string]int{}, RulesVersions: map[string]int{},
		Published: hub.Published,
	}
	s.Hub.Published = nil // shown once, at the top level
	for _, r := range latest {
		s.Roles[r.Role]++
		s.RoleSources[r.RoleSource]++
		s.Polarities[r.Polarity]++
		if r.Pluralism != nil {
			s.Pluralism[r.Pluralism.Primary]++
		}
		if len(r.Paper.Published) >= 4 {
			s.Years[r.Paper.Published[:4]]++
		} else {
			s.Years["unknown"]++
		}
		s.RulesVersions[r.RulesVersion]++
	}
	return s
}

func writeSummary(h *hubDir) error {
	b, err := json.MarshalIndent(Summarise(h.hub, h.latest), "", "  ")
	if err != nil {
		return err
	}
	return WriteFileAtomic(filepath.Join(h.dir, SummaryFile), append(b, '\n'))
}

// WriteFileAtomic writes data to a temporary file beside path, fsyncs it
// and renames it over path, so readers see the old file or the new one,
// never a part.
func WriteFileAtomic(path string, data []byte) error {
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	f, err := os.Create(tmp)
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return renameDurably(tmp, path)
}
