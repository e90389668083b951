package sink

import (
	"bufio"
	"io"

	"github.com/citecrawl/citecrawl/record"
)

// Lines writes JSON lines to a writer (standard output for `--out -`).
// Duplicates are told apart within the process only: a stream has no
// earlier output to read back.
type Lines struct {
	w    *bufio.Writer
	seen seen
	n    int
}

// NewLines returns a sink writing to w.
func NewLines(w io.Writer) *Lines {
	return &Lines{w: bufio.NewWriterSize(w, 64<<10), seen: seen{}}
}

// Write implements Sink.
func (s *Lines) Write(r *record.Record) (bool, error) {
	e, err := Encode(r)
	if err != nil {
		return false, err
	}
	if !s.seen.add(e.Key) {
		return false, nil
	}
	s.n++
	_, err = s.w.Write(e.Line)
	return true, err
}

// ShouldFlush implements Sink: flush about every 256 records so a reader
// of the pipe sees progress.
func (s *Lines) ShouldFlush() bool { return s.n >= 256 }

// Flush implements Sink.
func (s *Lines) Flush() error {
	s.n = 0
	return s.w.Flush()
}

// Close implements Sink.
func (s *Lines) Close() error { return s.Flush() }
