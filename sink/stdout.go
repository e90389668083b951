package sink

import (
	"bufio"
	"context"
	"crypto/sha256"
	"errors"

	"github.com/citecrawl/citecrawl/record"
)

// lines writes JSON lines to the command's standard output (`--out -`).
// Duplicates are told apart within the process only: a stream has no
// earlier output to read back.
type lines struct {
	w    *bufio.Writer
	seen map[[sha256.Size224]byte]bool // hashes of the version keys written, of a fixed small size
	enc  encoder
}

func openLines(_ context.Context, _ string, _ Config, env env) (Sink, error) {
	if env.stdout == nil {
		return nil, errors.New("sink out is - but no standard output was given")
	}
	return &lines{w: bufio.NewWriterSize(env.stdout, 64<<10), seen: map[[sha256.Size224]byte]bool{}}, nil
}

// Batching implements Sink: about every 256 records, so a reader of the
// pipe sees progress.
func (s *lines) Batching() Batching { return Batching{Records: 256} }

// Write implements Sink: it encodes the records and writes their lines.
func (s *lines) Write(ctx context.Context, records []*record.Record) (int, error) {
	return s.enc.write(ctx, records, s.WriteLines)
}

// WriteLines implements Sink.
func (s *lines) WriteLines(_ context.Context, lines []Line) (int, error) {
	n := 0
	for i := range lines {
		k := sha256.Sum224([]byte(lines[i].key()))
		if s.seen[k] {
			continue
		}
		s.seen[k] = true
		if _, err := s.w.Write(lines[i].JSON); err != nil {
			return n, err
		}
		if err := s.w.WriteByte('\n'); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// Flush implements Sink.
func (s *lines) Flush(context.Context) error { return s.w.Flush() }

// Close implements Sink.
func (s *lines) Close(ctx context.Context) error { return s.Flush(ctx) }
