package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/citecrawl/citecrawl/pipeline"
)

// showProgress decides whether to draw the live progress line: only for
// people, that is on a terminal, unless asked.
func showProgress(mode string, w io.Writer) bool {
	switch mode {
	case "on":
		return true
	case "off":
		return false
	}
	return isTerminal(w)
}

// isTerminal tells whether w is a terminal, where people read.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// startProgress redraws one line every half second until the returned
// function is called.
func startProgress(w io.Writer, s *pipeline.Stats) (stop func()) {
	start := time.Now()
	done := make(chan struct{})
	finished := make(chan struct{})
	draw := func() {
		elapsed := time.Since(start).Seconds()
		written := s.RecordsWritten.Load()
		fmt.Fprintf(w, "\r\033[Kpages %d · records %d published, %d tagged, %d written · retries %d · dead letters %d · %.1f records/s",
			s.PagesFetched.Load(), s.RecordsPublished.Load(), s.RecordsTagged.Load(), written,
			s.Retries.Load(), s.DeadLetters.Load(), float64(written)/max(elapsed, 0.001))
	}
	go func() {
		defer close(finished)
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				draw()
			case <-done:
				draw()
				fmt.Fprintln(w)
				return
			}
		}
	}()
	return func() {
		close(done)
		<-finished
	}
}

// progressThrottle is how often at most the reprocess bar is drawn.
const progressThrottle = 200 * time.Millisecond

// progressBar draws reprocess's progress on w with
// github.com/schollz/progressbar: with the total known
// " 46% [============>.................] (12000/26000, 30195 records/s) [0s:0s]"
// (elapsed:left), without (a run from a folder) a spinner, the count and the
// rate. Its clock starts now. It draws at most every progressThrottle.
// update is pipeline.ReprocessOptions.Progress; end draws the last state
// it got, however soon after the last drawing, and ends the line (nothing
// if update was never called). update does nothing after end.
func progressBar(w io.Writer) (update func(done, total int64), end func()) {
	var (
		mu sync.Mutex
		// Started now, not at the first report (a batch in), which would
		// make the first rate a batch over no time.
		bar   = newProgressBar(w)
		fresh = true // no report yet
		known bool   // bar's total is known
		ended bool
	)
	update = func(done, total int64) {
		mu.Lock()
		defer mu.Unlock()
		if ended {
			return
		}
		k := total > 0
		if k {
			total = max(total, done) // past its max the library stops drawing
		}
		switch {
		case fresh:
			setTotal(bar, total)
		case k != known || bar.IsFinished():
			// A finished bar draws no more, and one whose total is not
			// known counts modulo its width: a new one follows.
			bar = newProgressBar(w)
			setTotal(bar, total)
		case k && bar.GetMax64() != total:
			bar.ChangeMax64(total)
		}
		fresh, known = false, k
		_ = bar.Set64(done)
	}
	end = func() {
		mu.Lock()
		defer mu.Unlock()
		if ended || fresh {
			ended = true
			return
		}
		ended = true
		if !bar.IsFinished() {
			// The last state may have come within the throttle: draw it.
			// Nothing else uses the bar (no spinner goroutine, and update
			// holds mu), so its options can be changed here.
			progressbar.OptionThrottle(0)(bar)
			if known {
				_ = bar.Add64(0) // as it is: Finish would show 100%
			} else {
				_ = bar.Finish() // keeps the count
			}
		}
		fmt.Fprintln(w)
	}
	return update, end
}

// newProgressBar starts a bar on w, whose total setTotal sets.
func newProgressBar(w io.Writer) *progressbar.ProgressBar {
	bar := progressbar.NewOptions64(1,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetTheme(progressbar.ThemeASCII),
		progressbar.OptionSetWidth(30),
		progressbar.OptionShowCount(),
		progressbar.OptionShowIts(),
		progressbar.OptionSetItsString("records"),
		progressbar.OptionShowElapsedTimeOnFinish(),
		progressbar.OptionThrottle(progressThrottle),
		progressbar.OptionUseANSICodes(true), // \r and erase to the end of the line
		// Drawn only when progress is reported: no goroutine of its own.
		progressbar.OptionSetSpinnerChangeInterval(0),
	)
	bar.StartWithoutRender()
	return bar
}

// setTotal sets the total of a bar nothing was reported to yet (<= 0: not
// known), without drawing it.
func setTotal(bar *progressbar.ProgressBar, total int64) {
	progressbar.OptionSetVisibility(false)(bar) // ChangeMax64 draws, unless invisible
	if total > 0 {
		bar.ChangeMax64(total)
	} else {
		bar.ChangeMax64(-1) // a spinner
	}
	progressbar.OptionSetVisibility(true)(bar)
	progressbar.OptionShowTotalBytes(total > 0)(bar) // "done/total", not "done/-"
	progressbar.OptionSetElapsedTime(total <= 0)(bar)
}
