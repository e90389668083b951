package pipeline

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/citecrawl/citecrawl/ingest/snapshot"
)

func TestParseSchedule(t *testing.T) {
	base := time.Date(2026, 11, 27, 10, 17, 30, 0, time.UTC) // a Friday
	day := func(month time.Month, d, h, m int) time.Time { return time.Date(2026, month, d, h, m, 0, 0, time.UTC) }
	for _, tc := range []struct {
		spec string
		want time.Time
	}{
		{"@every 6h", base.Add(6 * time.Hour)},
		{"@hourly", day(11, 27, 11, 0)},
		{"@daily", day(11, 28, 0, 0)},
		{"@weekly", day(11, 29, 0, 0)},
		{"@monthly", day(12, 1, 0, 0)},
		{"30 2 * * *", day(11, 28, 2, 30)},
		{"*/15 * * * *", day(11, 27, 10, 30)},
		{"0 9 * * 1-5", day(11, 30, 9, 0)}, // Friday after 9:00 -> Monday
		{"0 0 1 1,7 *", time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)},
		// Day of month and day of week both restricted: either matches
		// (Monday the 30th comes before the 1st).
		{"0 0 1 * 1", day(11, 30, 0, 0)},
		{"0 0 1 * MON", day(11, 30, 0, 0)},
		{"0 12 * * mon-fri", day(11, 27, 12, 0)}, // lower-case names
		{"0 8 * * 7", day(11, 29, 8, 0)},         // 7 is Sunday, as 0
		{"0 8 * * 6-7", day(11, 28, 8, 0)},       // Saturday, then Sunday
		{"0 8 * * 0", day(11, 29, 8, 0)},
		{"0 8 * * SUN", day(11, 29, 8, 0)},
		{"CRON_TZ=Europe/Paris 0 12 * * *", day(11, 27, 11, 0)}, // noon in Paris is 11:00 UTC
	} {
		s, err := ParseSchedule(tc.spec)
		if err != nil {
			t.Fatalf("%s: %v", tc.spec, err)
		}
		if got := s.Next(base); !got.Equal(tc.want) {
			t.Errorf("%s: next %v, want %v", tc.spec, got, tc.want)
		}
	}
	// Sunday through a range ending at 7, with and without a step.
	for spec, sunday := range map[string]bool{"0 8 * * 5-7": true, "0 8 * * 1-7/2": true, "0 8 * * 2-7/2": false, "0 8 * * fri-7": true} {
		s, err := ParseSchedule(spec)
		if err != nil {
			t.Fatalf("%s: %v", spec, err)
		}
		if got := s.Next(day(11, 28, 9, 0)); got.Equal(day(11, 29, 8, 0)) != sunday {
			t.Errorf("%s: next after Saturday 9:00 is %v; Sunday expected: %v", spec, got, sunday)
		}
	}
	for _, bad := range []string{"", "@every soon", "@every 50ms", "@every -1h", "* * *", "61 * * * *", "*/0 * * * *", "5-2 * * * *", "0 0 * * 8", "0 0 * * funday", "@fortnightly"} {
		_, err := ParseSchedule(bad)
		if err == nil {
			t.Errorf("%q accepted", bad)
			continue
		}
		if !strings.Contains(err.Error(), fmt.Sprintf("schedule %q", bad)) {
			t.Errorf("%q: error %q does not name the spec", bad, err)
		}
	}
}

// tick is a schedule with no cron rounding, so that tests run fast.
type tick time.Duration

func (d tick) Next(after time.Time) time.Time { return after.Add(time.Duration(d)) }

// Two scheduled runs against the offline site with a hub changing in
// between: only the changed and new papers are published again, the gone
// one is marked, and the run reports say so.
func TestScheduledIncrementalRuns(t *testing.T) {
	site := snapshot.Default()
	web := startSite(t, site)
	cfg := testConfig(t, t.TempDir(), site.HubURLs(web.URL))
	bus := openBus(t, cfg)
	defer bus.Close()
	lease, err := NewLease(context.Background(), bus, "crawl", "test", time.Minute, nil)
	if err != nil {
		t.Fatal(err)
	}
	sched := tick(50 * time.Millisecond) // a short schedule, no sleeps
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var results []*Result
	var removed string
	err = Scheduled(ctx, bus, cfg, testEnv(), sched, lease, func(res *Result, err error) {
		if err != nil {
			t.Error(err)
			cancel()
			return
		}
		results = append(results, res)
		if len(results) == 2 {
			cancel()
			return
		}
		// Between the runs: the Roadmap hub drops its last paper, one
		// paper's summary changes and a new citing paper appears.
		hubs := site.Hubs()
		for i := range hubs {
			if hubs[i].ID != snapshot.RoadmapHubID {
				continue
			}
			papers := append([]snapshot.Paper{}, hubs[i].Papers...)
			removed = papers[len(papers)-1].Title
			papers = papers[:len(papers)-1]
			papers[0].Summary = "A rewritten summary."
			papers = append(papers, snapshot.Paper{Title: "A New Citing Paper on Jury Learning", Summary: "Models individual annotators with juries.",
				Cat: "cs.CL", Date: "2026-06-01", Verdict: "unverdicted", Novelty: "5.0", Refs: 9})
			hubs[i].Papers = papers
		}
		site.SetHubs(hubs...)
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != 2 {
		t.Fatalf("%d runs", len(results))
	}
	first, second := results[0], results[1]
	if first.New != int64(site.DistinctPapers()) || first.Gone != 0 {
		t.Errorf("first run report: %+v", first)
	}
	if second.New != 1 || second.Changed != 1 || second.Gone != 1 || second.NotModified == 0 {
		t.Errorf("second run report: new %d changed %d gone %d not modified %d; want 1, 1, 1, >0", second.New, second.Changed, second.Gone, second.NotModified)
	}
	var report Result
	readJSON(t, cfg.Sink.Out+"/runs/"+second.RunID+".json", &report)
	if report.Gone != 1 || report.New != 1 {
		t.Errorf("run report file: %+v", report)
	}
	goneSeen := false
	for _, r := range readOut(t, cfg.Sink.Out) {
		if r.Gone {
			goneSeen = r.Paper.Title == removed
		}
	}
	if !goneSeen {
		t.Errorf("no gone version of %q in the output", removed)
	}
	var sum struct {
		Records, Gone int
	}
	readJSON(t, cfg.Sink.Out+"/"+snapshot.RoadmapHubID+"/summary.json", &sum)
	if sum.Records != 18 || sum.Gone != 1 {
		t.Errorf("summary: %d records, %d gone; want 18 and 1", sum.Records, sum.Gone)
	}
}

// Two schedulers on one NATS: one holds the lease; when it dies (stops
// renewing), the other takes over once the lease has expired.
func TestLeaseOneSchedulerAtATime(t *testing.T) {
	cfg := testConfig(t, t.TempDir(), nil)
	bus := openBus(t, cfg)
	defer bus.Close()
	var clock atomic.Int64
	clock.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	now := func() time.Time { return time.Unix(0, clock.Load()) }
	ctx := context.Background()
	a, _ := NewLease(ctx, bus, "crawl", "scheduler-a", time.Minute, now)
	b, _ := NewLease(ctx, bus, "crawl", "scheduler-b", time.Minute, now)
	if ok, err := a.TryAcquire(ctx); !ok || err != nil {
		t.Fatalf("a could not take a free lease: %v %v", ok, err)
	}
	if ok, _ := b.TryAcquire(ctx); ok {
		t.Fatal("b took a lease a holds")
	}
	clock.Add(int64(30 * time.Second))
	if err := a.Renew(ctx); err != nil {
		t.Fatal(err)
	}
	clock.Add(int64(45 * time.Second)) // a renewed 45s ago: still held
	if ok, _ := b.TryAcquire(ctx); ok {
		t.Fatal("b took a renewed lease")
	}
	clock.Add(int64(20 * time.Second)) // a is dead: 65s since its last renewal
	if ok, err := b.TryAcquire(ctx); !ok || err != nil {
		t.Fatalf("b did not take over an expired lease: %v", err)
	}
	if err := a.Renew(ctx); err == nil {
		t.Fatal("a renewed a lease b had taken")
	}
}

// Many schedulers trying at the same instant: exactly one wins.
func TestLeaseRaceHasOneWinner(t *testing.T) {
	cfg := testConfig(t, t.TempDir(), nil)
	bus := openBus(t, cfg)
	defer bus.Close()
	ctx := context.Background()
	for round := range 5 {
		var wins atomic.Int32
		var wg sync.WaitGroup
		for i := range 4 {
			l, err := NewLease(ctx, bus, fmt.Sprintf("race-%d", round), fmt.Sprintf("s%d", i), time.Minute, nil)
			if err != nil {
				t.Fatal(err)
			}
			wg.Go(func() {
				if ok, _ := l.TryAcquire(ctx); ok {
					wins.Add(1)
				}
			})
		}
		wg.Wait()
		if wins.Load() != 1 {
			t.Fatalf("round %d: %d winners", round, wins.Load())
		}
	}
}

// Two schedulers on one NATS with the same short schedule: their crawls
// never overlap, because each runs only under the lease.
func TestTwoSchedulersNeverCrawlAtOnce(t *testing.T) {
	site := snapshot.Default()
	web := startSite(t, site)
	cfg := testConfig(t, t.TempDir(), site.HubURLs(web.URL))
	bus := openBus(t, cfg)
	defer bus.Close()
	sched := tick(20 * time.Millisecond)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	type span struct {
		who        string
		start, end time.Time
	}
	var runs []span
	var wg sync.WaitGroup
	for _, who := range []string{"a", "b"} {
		lease, err := NewLease(ctx, bus, "crawl", who, time.Minute, nil)
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			_ = Scheduled(ctx, bus, cfg, testEnv(), sched, lease, func(res *Result, err error) {
				if err != nil {
					return // cancelled at the end
				}
				mu.Lock()
				defer mu.Unlock()
				runs = append(runs, span{who, res.Started, res.Started.Add(time.Duration(res.Duration))})
				if len(runs) >= 6 {
					cancel()
				}
			})
		})
	}
	wg.Wait()
	if len(runs) < 6 {
		t.Fatalf("%d runs", len(runs))
	}
	for i := range runs {
		for j := range runs {
			a, b := runs[i], runs[j]
			if i != j && a.start.Before(b.end) && b.start.Before(a.end) {
				t.Fatalf("runs of %s and %s overlapped: %v-%v and %v-%v", a.who, b.who, a.start, a.end, b.start, b.end)
			}
		}
	}
}
