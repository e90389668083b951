package retry

import (
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestPermanentKeepsTheChain(t *testing.T) {
	err := fmt.Errorf("reading x: %w", Permanent(fs.ErrNotExist))
	if !IsPermanent(err) || !errors.Is(err, fs.ErrNotExist) || err.Error() != "reading x: file does not exist" {
		t.Fatalf("%v: permanent %v", err, IsPermanent(err))
	}
	if IsPermanent(fs.ErrNotExist) || IsPermanent(nil) || Permanent(nil) != nil {
		t.Fatal("only what is marked is permanent")
	}
	if e := Permanentf("bad %s: %w", "input", fs.ErrInvalid); !IsPermanent(e) || !errors.Is(e, fs.ErrInvalid) {
		t.Fatalf("Permanentf: %v", e)
	}
}

func TestRetryAfter(t *testing.T) {
	base := errors.New("HTTP 429")
	err := fmt.Errorf("GET x: %w", After(base, 7*time.Second))
	if RetryAfter(err) != 7*time.Second || !errors.Is(err, base) || IsPermanent(err) {
		t.Fatalf("RetryAfter(%v) = %s", err, RetryAfter(err))
	}
	if After(base, 0) != base || RetryAfter(base) != 0 {
		t.Fatal("no wait asked, none reported")
	}
}

func TestDoubling(t *testing.T) {
	got := Doubling(2*time.Second, 5*time.Second, 4)
	want := []time.Duration{2 * time.Second, 4 * time.Second, 5 * time.Second, 5 * time.Second}
	if !slices.Equal(got, want) {
		t.Fatalf("Doubling = %v, want %v", got, want)
	}
	if len(Doubling(time.Second, time.Minute, 0)) != 0 {
		t.Fatal("no retries, no steps")
	}
}

func TestPolicyNext(t *testing.T) {
	p := Policy{Attempts: 3, Backoff: []time.Duration{time.Second, 10 * time.Second}, MaxWait: time.Minute}
	transient := errors.New("connection reset")
	for _, tc := range []struct {
		name  string
		n     int
		err   error
		retry bool
		wait  time.Duration
		why   string
	}{
		{"first retry", 1, transient, true, time.Second, ""},
		{"second retry", 2, transient, true, 10 * time.Second, ""},
		{"attempts used", 3, transient, false, 0, "3 of 3 attempts used"},
		{"permanent at once", 1, Permanent(transient), false, 0, "permanent"},
		{"longer Retry-After honoured", 1, After(transient, 30*time.Second), true, 30 * time.Second, ""},
		{"shorter Retry-After, backoff kept", 2, After(transient, 2*time.Second), true, 10 * time.Second, ""},
		{"Retry-After over the limit", 1, After(transient, time.Hour), false, time.Hour, "more than 1m0s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := p.Next(tc.n, tc.err)
			if d.Retry != tc.retry || d.Wait != tc.wait || !strings.Contains(d.Why, tc.why) {
				t.Fatalf("Next(%d, %v) = %+v, want retry %v wait %s why %q", tc.n, tc.err, d, tc.retry, tc.wait, tc.why)
			}
		})
	}
	if d := (Policy{Attempts: 5}).Next(4, transient); !d.Retry || d.Wait != time.Second {
		t.Fatalf("no backoff configured: %+v, want a second", d)
	}
	if d := (Policy{Attempts: 5, Backoff: []time.Duration{time.Minute}}).Next(1, After(transient, time.Hour)); !d.Retry || d.Wait != time.Hour {
		t.Fatalf("no limit: %+v, want the hour asked for", d)
	}
}
