package main

import (
	"bytes"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// lastFrame is the last line the bar drew in out: what a terminal shows.
func lastFrame(t *testing.T, out string) string {
	t.Helper()
	if !strings.HasSuffix(out, "\n") {
		t.Fatalf("the bar's line is not ended: %q", out)
	}
	frames := strings.Split(strings.TrimSuffix(out, "\n"), "\r")
	return frames[len(frames)-1]
}

func TestProgressBarKnownTotal(t *testing.T) {
	var buf bytes.Buffer
	update, end := progressBar(&buf)
	for done := int64(0); done <= 1000; done++ {
		update(done, 1000)
	}
	end()
	last := lastFrame(t, buf.String())
	for _, want := range []string{"100%", "(1000/1000, ", "[==============================]"} {
		if !strings.Contains(last, want) {
			t.Errorf("last frame %q lacks %q", last, want)
		}
	}
	if !regexp.MustCompile(`, \d+ records/s\)`).MatchString(last) {
		t.Errorf("last frame %q shows no rate", last)
	}
	if !regexp.MustCompile(`\[\d+s\]`).MatchString(last) {
		t.Errorf("last frame %q shows no elapsed time", last)
	}
}

// An interrupted run: the last report came within the throttle of the
// frame before, and end must still draw it, as it is (not 100%).
func TestProgressBarEndDrawsLastState(t *testing.T) {
	var buf bytes.Buffer
	update, end := progressBar(&buf)
	for done := int64(0); done <= 400; done++ {
		update(done, 1000)
	}
	end()
	last := lastFrame(t, buf.String())
	for _, want := range []string{" 40%", "(400/1000, ", " records/s)"} {
		if !strings.Contains(last, want) {
			t.Errorf("last frame %q lacks %q", last, want)
		}
	}
	if !regexp.MustCompile(`\[\d+s:\d+s\]`).MatchString(last) {
		t.Errorf("last frame %q shows no elapsed:left", last)
	}
	update(500, 1000) // after end: nothing
	if !strings.HasSuffix(buf.String(), "\n") {
		t.Errorf("drawn after end: %q", buf.String())
	}
}

// A million reports are not a million frames. (Bounded by the throttle:
// to draw each the loop would take 200 s.)
func TestProgressBarThrottled(t *testing.T) {
	var buf bytes.Buffer
	update, end := progressBar(&buf)
	const n = 1_000_000
	for done := int64(1); done <= n; done++ {
		update(done, n)
	}
	end()
	if frames := strings.Count(buf.String(), "\r"); frames > 1000 {
		t.Errorf("%d frames for %d reports", frames, n)
	}
	if last := lastFrame(t, buf.String()); !strings.Contains(last, "100%") || !strings.Contains(last, "(1000000/1000000, ") {
		t.Errorf("last frame %q", last)
	}
}

func TestProgressBarUnknownTotal(t *testing.T) {
	var buf bytes.Buffer
	update, end := progressBar(&buf)
	for done := int64(0); done <= 5000; done += 50 {
		update(done, 0)
	}
	end()
	last := lastFrame(t, buf.String())
	if !regexp.MustCompile(`\(5000, \d+ records/s\)`).MatchString(last) {
		t.Errorf("last frame %q lacks the count and rate", last)
	}
	if strings.Contains(last, "%") || strings.Contains(last, "/-") {
		t.Errorf("last frame %q shows a total it does not know", last)
	}
}

// The total may change between reports, also once the bar reached it.
func TestProgressBarTotalChanges(t *testing.T) {
	var buf bytes.Buffer
	update, end := progressBar(&buf)
	update(100, 1000)
	update(600, 2000)
	update(2000, 2000) // drawn however soon: the bar is full
	if last := lastFrame(t, buf.String()+"\n"); !strings.Contains(last, "100%") || !strings.Contains(last, "(2000/2000, ") {
		t.Errorf("after the total grew: %q", last)
	}
	update(3000, 2500) // more than the total said: the total is what is done
	if last := lastFrame(t, buf.String()+"\n"); !strings.Contains(last, "100%") || !strings.Contains(last, "(3000/3000, ") {
		t.Errorf("past the total: %q", last)
	}
	update(3000, 6000) // past what a finished bar drew
	end()
	last := lastFrame(t, buf.String())
	if !strings.Contains(last, " 50%") || !strings.Contains(last, "(3000/6000, ") {
		t.Errorf("last frame %q", last)
	}
}

func TestProgressBarNeverUpdated(t *testing.T) {
	var buf bytes.Buffer
	_, end := progressBar(&buf)
	end()
	if buf.Len() != 0 {
		t.Errorf("wrote %q", buf.String())
	}
}

// The rate is of the time since the bar was made (before the run's
// setup), not since the first report, a batch of records in no time.
func TestProgressBarRateSinceStart(t *testing.T) {
	var buf bytes.Buffer
	update, end := progressBar(&buf)
	made := time.Now()
	for time.Since(made) < 100*time.Millisecond { // the time the rate is over
		time.Sleep(time.Millisecond)
	}
	update(100_000, 1_000_000)
	// The first report is drawn at once, as it is (not the bar before it).
	first := lastFrame(t, buf.String()+"\n")
	end()
	m := regexp.MustCompile(`\(100000/1000000, (\d+) records/s\)`).FindStringSubmatch(first)
	if m == nil {
		t.Fatalf("first frame %q, not the first report with its rate", first)
	}
	// At most 100,000 over 100 ms; from the first report, a 100 ms stall
	// between the two calls would be needed to show so little.
	if rate, _ := strconv.Atoi(m[1]); rate > 1_000_000 {
		t.Errorf("rate %d records/s: its clock started at the first report", rate)
	}
}
