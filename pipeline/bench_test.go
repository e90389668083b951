package pipeline

import (
	"context"
	"testing"
	"time"

	"github.com/citecrawl/citecrawl/ingest/snapshot"
)

// BenchmarkRunGeneratedHub is the end-to-end figure: one hub of 5,000
// citing papers served on loopback (per-host delay off), crawled, tagged
// and written through the embedded NATS server. Each paper costs one
// graph.json request, as on the real site.
func BenchmarkRunGeneratedHub(b *testing.B) {
	const n = 5000
	site := snapshot.New(snapshot.StyleCards, snapshot.Generated(n))
	web := startSite(b, site)
	var records int64
	var elapsed time.Duration
	for b.Loop() {
		b.StopTimer()
		cfg := testConfig(b, b.TempDir(), site.HubURLs(web.URL))
		bus := openBus(b, cfg)
		env := testEnv()
		b.StartTimer()
		start := time.Now()
		res, err := Run(context.Background(), bus, cfg, env)
		elapsed += time.Since(start)
		b.StopTimer()
		bus.Close()
		if err != nil {
			b.Fatal(err)
		}
		if res.Written != n {
			b.Fatalf("%d records written, want %d", res.Written, n)
		}
		records += res.Written
		b.StartTimer()
	}
	b.ReportMetric(float64(records)/elapsed.Seconds(), "records/s")
}
