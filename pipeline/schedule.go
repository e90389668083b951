package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/robfig/cron/v3"
)

// Schedule says when the next run is due.
type Schedule interface {
	Next(after time.Time) time.Time
}

// ParseSchedule reads a standard five-field cron expression (minute hour
// day-of-month month day-of-week, with names like MON and 7 for Sunday) or
// a descriptor (@hourly, @daily, @weekly, @monthly, @yearly, @every 6h),
// evaluated in UTC unless the spec starts with CRON_TZ=<zone>. As in
// standard cron, a day-of-month and a day-of-week that are both restricted
// match either.
func ParseSchedule(spec string) (Schedule, error) {
	spec = strings.TrimSpace(spec)
	if d, ok := strings.CutPrefix(spec, "@every "); ok {
		// The parser rounds below a second up to one; say so instead.
		if d, err := time.ParseDuration(strings.TrimSpace(d)); err == nil && d < time.Second {
			return nil, fmt.Errorf("schedule %q: @every needs a duration of at least 1s", spec)
		}
	}
	s, err := cron.ParseStandard(sevenAsSunday(spec))
	if err != nil {
		return nil, fmt.Errorf("schedule %q: %w (want five cron fields \"minute hour day month weekday\" or @every DURATION, @hourly, @daily ...)", spec, err)
	}
	return utcSchedule{s}, nil
}

// utcSchedule evaluates a schedule without a CRON_TZ in UTC, whatever the
// machine's local zone.
type utcSchedule struct{ cron.Schedule }

func (u utcSchedule) Next(after time.Time) time.Time { return u.Schedule.Next(after.UTC()) }

var weekdays = []string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}

// sevenAsSunday rewrites 7 in the day-of-week field of a five-field spec as
// 0: standard cron takes both for Sunday, the parser only 0.
func sevenAsSunday(spec string) string {
	tz := ""
	if strings.HasPrefix(spec, "CRON_TZ=") || strings.HasPrefix(spec, "TZ=") {
		tz, spec, _ = strings.Cut(spec, " ")
		tz += " "
	}
	f := strings.Fields(spec)
	if len(f) != 5 {
		return tz + spec
	}
	var parts []string
	for _, part := range strings.Split(f[4], ",") {
		rng, step, hasStep := strings.Cut(part, "/")
		lo, hi, isRange := strings.Cut(rng, "-")
		switch {
		case rng == "7" || (isRange && lo == "7" && hi == "7"):
			part = "0"
		case isRange && hi == "7":
			part = lo + "-6"
			if hasStep {
				part += "/" + step
			}
			// Keep Sunday when the range (and step) reaches it.
			a, errA := strconv.Atoi(lo)
			if i := slices.Index(weekdays, strings.ToLower(lo)); i >= 0 {
				a, errA = i, nil
			}
			n, errN := 1, error(nil)
			if hasStep {
				n, errN = strconv.Atoi(step)
			}
			if errA == nil && errN == nil && n > 0 && (7-a)%n == 0 {
				part += ",0"
			}
		}
		parts = append(parts, part)
	}
	f[4] = strings.Join(parts, ",")
	return tz + strings.Join(f, " ")
}

// BucketLeases holds the crawl lease: two schedulers sharing one NATS
// never crawl at once.
const BucketLeases = "citecrawl_leases"

// Lease is a named lease in a JetStream key-value bucket. The holder
// writes its name and an expiry; another may take it only once the expiry
// has passed, so a dead holder blocks for at most one TTL. Updates use the
// entry's revision, so two takers cannot both win.
type Lease struct {
	kv     jetstream.KeyValue
	name   string
	holder string
	ttl    time.Duration
	now    func() time.Time
	rev    uint64
}

type leaseValue struct {
	Holder  string    `json:"holder"`
	Expires time.Time `json:"expires"`
}

// NewLease opens the lease name for holder.
func NewLease(ctx context.Context, bus *Bus, name, holder string, ttl time.Duration, now func() time.Time) (*Lease, error) {
	kv, err := bus.JS.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: BucketLeases, Storage: jetstream.FileStorage,
		Replicas: max(bus.cfg.Replicas, 1), Description: "citecrawl scheduler leases"})
	if err != nil {
		return nil, fmt.Errorf("key-value bucket %s: %w", BucketLeases, err)
	}
	if now == nil {
		now = time.Now
	}
	return &Lease{kv: kv, name: name, holder: holder, ttl: ttl, now: now}, nil
}

// TryAcquire takes the lease if it is free, expired or already ours.
func (l *Lease) TryAcquire(ctx context.Context) (bool, error) {
	v, _ := json.Marshal(leaseValue{Holder: l.holder, Expires: l.now().Add(l.ttl)})
	e, err := l.kv.Get(ctx, l.name)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		rev, err := l.kv.Create(ctx, l.name, v)
		if err != nil {
			return false, nil // someone else created it first
		}
		l.rev = rev
		return true, nil
	}
	if err != nil {
		return false, err
	}
	var cur leaseValue
	if json.Unmarshal(e.Value(), &cur) == nil && cur.Holder != l.holder && l.now().Before(cur.Expires) {
		return false, nil
	}
	rev, err := l.kv.Update(ctx, l.name, v, e.Revision())
	if err != nil {
		return false, nil // lost the race
	}
	l.rev = rev
	return true, nil
}

// Renew extends a held lease; it fails if someone else took it meanwhile.
func (l *Lease) Renew(ctx context.Context) error {
	v, _ := json.Marshal(leaseValue{Holder: l.holder, Expires: l.now().Add(l.ttl)})
	rev, err := l.kv.Update(ctx, l.name, v, l.rev)
	if err != nil {
		return fmt.Errorf("lease %s lost: %w", l.name, err)
	}
	l.rev = rev
	return nil
}

// Release frees the lease if we still hold it.
func (l *Lease) Release(ctx context.Context) error {
	v, _ := json.Marshal(leaseValue{Holder: "", Expires: time.Time{}})
	_, err := l.kv.Update(ctx, l.name, v, l.rev)
	return err
}

// Scheduled runs Run at every time the schedule gives, under the lease so
// that only one scheduler on the cluster crawls at a time. Each run's
// result goes to onRun. It returns when ctx ends.
func Scheduled(ctx context.Context, bus *Bus, cfg Config, env Env, sched Schedule, lease *Lease, onRun func(*Result, error)) error {
	env.defaults()
	for {
		next := sched.Next(env.Now())
		if next.IsZero() {
			return errors.New("the schedule has no next time")
		}
		env.Log.Info().Time("next", next).Msg("waiting for the next scheduled run")
		if err := sleepUntil(ctx, next, env.Now); err != nil {
			return nil
		}
		ok, err := lease.TryAcquire(ctx)
		if err != nil {
			env.Log.Warn().Err(err).Msg("lease check failed; skipping this run")
			continue
		}
		if !ok {
			env.Log.Info().Msg("another scheduler holds the crawl lease; skipping this run")
			continue
		}
		res, err := runHoldingLease(ctx, bus, cfg, env, lease)
		onRun(res, err)
	}
}

// runHoldingLease runs a crawl, renewing the lease at a third of its TTL.
func runHoldingLease(ctx context.Context, bus *Bus, cfg Config, env Env, lease *Lease) (*Result, error) {
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(max(lease.ttl/3, 10*time.Millisecond))
		defer t.Stop()
		for {
			select {
			case <-t.C:
				if err := lease.Renew(runCtx); err != nil {
					env.Log.Error().Err(err).Msg("crawl lease lost; stopping this run")
					cancel()
					return
				}
			case <-done:
				return
			}
		}
	}()
	env.Stats = &Stats{} // counters per run
	bus.metrics.LeaseHeld(lease.name, true)
	res, err := Run(runCtx, bus, cfg, env)
	close(done)
	if rerr := lease.Release(context.Background()); rerr != nil {
		env.Log.Warn().Err(rerr).Msg("releasing the crawl lease")
	}
	bus.metrics.LeaseHeld(lease.name, false)
	return res, err
}

// sleepUntil waits until t by the given clock (re-reading it, so a test
// clock that jumps is honoured) or until ctx ends.
func sleepUntil(ctx context.Context, t time.Time, now func() time.Time) error {
	for {
		d := t.Sub(now())
		if d <= 0 {
			return nil
		}
		timer := time.NewTimer(min(d, time.Second))
		select {
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
			return ctx.Err()
		}
	}
}
