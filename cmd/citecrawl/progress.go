package main

import (
	"fmt"
	"io"
	"os"
	"time"

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
