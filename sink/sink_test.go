package sink

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/citecrawl/citecrawl/record"
)

// conformance is what every sink must do; each sink under test gives a way
// to open it and to read back what is visible.
type sinkUnderTest struct {
	name       string
	open       func(t *testing.T) Sink
	visible    func(t *testing.T) []record.Record
	persistent bool // a reopened sink remembers what it wrote
}

func testRecords(n int, hubs ...string) []*record.Record {
	var out []*record.Record
	for _, hub := range hubs {
		for i := range n {
			r := &record.Record{
				Schema: record.Schema, ID: record.ID(hub, fmt.Sprint(i)),
				Hub:   record.Hub{ID: hub, URL: "https://pith.science/citations/" + hub, Title: "Hub " + hub},
				Paper: record.Paper{Title: fmt.Sprintf("Paper %d", i), Published: fmt.Sprintf("%d-01-01", 2024+i%2)},
				Role:  record.Roles[i%len(record.Roles)], RoleSource: record.RoleSourceSummary,
				Polarity:  record.Polarities[i%3],
				Pluralism: &record.Pluralism{Primary: record.PluralismNone, Labels: []string{record.PluralismNone}},
				FetchedAt: time.Date(2026, 1, 1, 0, 0, i, 0, time.UTC),
			}
			out = append(out, r)
		}
	}
	return out
}

func sinksUnderTest() []sinkUnderTest {
	var dir string
	var buf bytes.Buffer
	return []sinkUnderTest{
		{
			name:       "jsonl",
			persistent: true,
			open: func(t *testing.T) Sink {
				if dir == "" {
					dir = t.TempDir()
				}
				cfg := Config{SegmentMaxBytes: 8 << 20, SegmentMaxAge: 10 * time.Second}
				cfg.Out = dir
				s, err := NewJSONL(cfg, zerolog.Nop())
				if err != nil {
					t.Fatal(err)
				}
				return s
			},
			visible: func(t *testing.T) []record.Record {
				var out []record.Record
				hubs, _ := os.ReadDir(dir)
				for _, h := range hubs {
					files, err := SegmentFiles(filepath.Join(dir, h.Name()))
					if err != nil {
						t.Fatal(err)
					}
					for _, f := range files {
						if err := ReadSegment(f, func(r *record.Record) error { out = append(out, *r); return nil }); err != nil {
							t.Fatal(err)
						}
					}
				}
				return out
			},
		},
		{
			name: "lines",
			open: func(t *testing.T) Sink { return NewLines(&buf) },
			visible: func(t *testing.T) []record.Record {
				var out []record.Record
				sc := bufio.NewScanner(bytes.NewReader(buf.Bytes()))
				for sc.Scan() {
					var r record.Record
					if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
						t.Fatalf("output line %q: %v", sc.Text(), err)
					}
					out = append(out, r)
				}
				return out
			},
		},
	}
}

// TestSinkConformance is the contract every sink passes: nothing visible
// before Flush, each record once after, a redelivered record not written
// again, and (for persistent sinks) not after a reopen either.
func TestSinkConformance(t *testing.T) {
	for _, sut := range sinksUnderTest() {
		t.Run(sut.name, func(t *testing.T) {
			recs := testRecords(50, "hub-a", "hub-b")
			s := sut.open(t)
			for _, r := range recs {
				if ok, err := s.Write(r); err != nil || !ok {
					t.Fatalf("Write(%s) = %v, %v", r.ID, ok, err)
				}
			}
			// The same content fetched again later is the same version.
			again := *recs[3]
			again.FetchedAt = again.FetchedAt.Add(time.Hour)
			if ok, err := s.Write(&again); err != nil || ok {
				t.Fatalf("duplicate Write = %v, %v; want skipped", ok, err)
			}
			if got := sut.visible(t); len(got) != 0 {
				t.Fatalf("%d records visible before Flush", len(got))
			}
			if err := s.Flush(); err != nil {
				t.Fatal(err)
			}
			assertEachOnce(t, sut.visible(t), recs)

			// A changed record is a new version and is written.
			changed := *recs[0]
			changed.Role = record.RoleFuture
			if ok, _ := s.Write(&changed); !ok {
				t.Fatal("a changed record was taken for a duplicate")
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if n := len(sut.visible(t)); n != len(recs)+1 {
				t.Fatalf("%d lines after a changed version, want %d", n, len(recs)+1)
			}
			if !sut.persistent {
				return
			}
			s2 := sut.open(t)
			for _, r := range recs {
				if ok, err := s2.Write(r); err != nil || ok {
					t.Fatalf("reopened sink rewrote %s (%v)", r.ID, err)
				}
			}
			if err := s2.Close(); err != nil {
				t.Fatal(err)
			}
			if n := len(sut.visible(t)); n != len(recs)+1 {
				t.Fatalf("%d lines after a second run, want %d", n, len(recs)+1)
			}
		})
	}
}

func assertEachOnce(t *testing.T, got []record.Record, want []*record.Record) {
	t.Helper()
	count := map[string]int{}
	for _, r := range got {
		count[r.ID]++
	}
	for _, r := range want {
		if count[r.ID] != 1 {
			t.Errorf("record %s appears %d times, want once", r.ID, count[r.ID])
		}
	}
	if len(got) != len(want) {
		t.Errorf("%d records visible, want %d", len(got), len(want))
	}
}

func TestJSONLRotatesBySizeAndTime(t *testing.T) {
	cfg := Config{SegmentMaxBytes: 8 << 20, SegmentMaxAge: 10 * time.Second}
	cfg.Out = t.TempDir()
	cfg.SegmentMaxBytes = 2000
	cfg.SegmentMaxAge = time.Minute
	s, err := NewJSONL(cfg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s.now = func() time.Time { return clock }
	recs := testRecords(40, "hub-a")
	sealed := 0
	for _, r := range recs {
		if _, err := s.Write(r); err != nil {
			t.Fatal(err)
		}
		if s.ShouldFlush() {
			if err := s.Flush(); err != nil {
				t.Fatal(err)
			}
			sealed++
		}
	}
	if sealed < 2 {
		t.Fatalf("size limit sealed %d segments, want several", sealed)
	}
	// Age: one small record, then the clock passes the limit.
	cfg.SegmentMaxBytes = 1 << 30
	s.cfg = cfg
	if _, err := s.Write(testRecords(41, "hub-a")[40]); err != nil {
		t.Fatal(err)
	}
	if s.ShouldFlush() {
		t.Fatal("fresh small segment wants a flush")
	}
	clock = clock.Add(time.Minute)
	if !s.ShouldFlush() {
		t.Fatal("segment older than segment_max_age does not want a flush")
	}
}

func TestJSONLSummaryCountsLatestVersions(t *testing.T) {
	cfg := Config{SegmentMaxBytes: 8 << 20, SegmentMaxAge: 10 * time.Second}
	cfg.Out = t.TempDir()
	s, err := NewJSONL(cfg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	recs := testRecords(12, "hub-a")
	bg := 60
	for _, r := range recs {
		r.Hub.Published = &record.HubCounts{CitingPapers: 12, BackgroundPercent: &bg}
		s.Write(r)
	}
	changed := *recs[0] // background -> future
	changed.Role = record.RoleFuture
	s.Write(&changed)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(cfg.Out, "hub-a", SummaryFile))
	if err != nil {
		t.Fatal(err)
	}
	var sum Summary
	if err := json.Unmarshal(b, &sum); err != nil {
		t.Fatal(err)
	}
	if sum.Records != 12 || sum.Roles["background"] != 1 || sum.Roles["future"] != 3 || sum.Years["2024"] != 6 {
		t.Fatalf("summary %+v", sum)
	}
	if sum.Published == nil || sum.Published.CitingPapers != 12 {
		t.Fatalf("hub's own aggregates missing from the summary: %+v", sum.Published)
	}
	leftovers, _ := filepath.Glob(filepath.Join(cfg.Out, "hub-a", ".*"))
	if len(leftovers) != 0 {
		t.Fatalf("temporary files left: %v", leftovers)
	}
}
