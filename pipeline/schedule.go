package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Schedule says when the next run is due.
type Schedule interface {
	Next(after time.Time) time.Time
}

// ParseSchedule reads "@every 6h", "@hourly", "@daily" or a five-field
// cron expression (minute hour day-of-month month day-of-week, with *,
// lists, ranges and */n), evaluated in UTC.
func ParseSchedule(spec string) (Schedule, error) {
	spec = strings.TrimSpace(spec)
	switch {
	case strings.HasPrefix(spec, "@every "):
		d, err := time.ParseDuration(strings.TrimSpace(strings.TrimPrefix(spec, "@every ")))
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("schedule %q: @every needs a positive duration like 6h", spec)
		}
		return every(d), nil
	case spec == "@hourly":
		spec = "0 * * * *"
	case spec == "@daily" || spec == "@midnight":
		spec = "0 0 * * *"
	case spec == "@weekly":
		spec = "0 0 * * 0"
	}
	f := strings.Fields(spec)
	if len(f) != 5 {
		return nil, fmt.Errorf("schedule %q: want @every DURATION or five cron fields (minute hour day month weekday)", spec)
	}
	var c cron
	var err error
	for i, r := range []struct {
		set    *[]bool
		lo, hi int
		name   string
	}{{&c.min, 0, 59, "minute"}, {&c.hour, 0, 23, "hour"}, {&c.dom, 1, 31, "day of month"}, {&c.month, 1, 12, "month"}, {&c.dow, 0, 6, "day of week"}} {
		if *r.set, err = cronField(f[i], r.lo, r.hi); err != nil {
			return nil, fmt.Errorf("schedule %q: %s field %q: %w", spec, r.name, f[i], err)
		}
	}
	return c, nil
}

type every time.Duration

func (e every) Next(after time.Time) time.Time { return after.Add(time.Duration(e)) }

type cron struct{ min, hour, dom, month, dow []bool }

func (c cron) Next(after time.Time) time.Time {
	t := after.UTC().Truncate(time.Minute).Add(time.Minute)
	for limit := 0; limit < 366*24*60; limit++ {
		if c.month[int(t.Month())] && c.dom[t.Day()] && c.dow[int(t.Weekday())] && c.hour[t.Hour()] && c.min[t.Minute()] {
			return t
		}
		t = t.Add(time.Minute)
	}
	return time.Time{} // never (e.g. 31 February)
}

func cronField(s string, lo, hi int) ([]bool, error) {
	set := make([]bool, hi+1)
	for _, part := range strings.Split(s, ",") {
		step := 1
		if r, st, ok := strings.Cut(part, "/"); ok {
			n, err := strconv.Atoi(st)
			if err != nil || n < 1 {
				return nil, fmt.Errorf("bad step %q", st)
			}
			part, step = r, n
		}
		a, b := lo, hi
		if part != "*" {
			x, y, isRange := strings.Cut(part, "-")
			var err error
			if a, err = strconv.Atoi(x); err != nil {
				return nil, fmt.Errorf("%q is not a number", x)
			}
			b = a
			if isRange {
				if b, err = strconv.Atoi(y); err != nil {
					return nil, fmt.Errorf("%q is not a number", y)
				}
			}
		}
		if a < lo || b > hi || a > b {
			return nil, fmt.Errorf("%d-%d is outside %d-%d", a, b, lo, hi)
		}
		for v := a; v <= b; v += step {
			set[v] = true
		}
	}
	return set, nil
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
	res, err := Run(runCtx, bus, cfg, env)
	close(done)
	if rerr := lease.Release(context.Background()); rerr != nil {
		env.Log.Warn().Err(rerr).Msg("releasing the crawl lease")
	}
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
