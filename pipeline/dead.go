package pipeline

import (
	"context"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// DeadFilter picks dead letters: those of one stage, those whose reason
// contains a text. The zero filter picks every one.
type DeadFilter struct {
	Stage  string
	Reason string
}

// Match says whether d is one the filter picks.
func (f DeadFilter) Match(d DeadLetter) bool {
	return (f.Stage == "" || d.Stage == f.Stage) &&
		(f.Reason == "" || strings.Contains(strings.ToLower(d.Error), strings.ToLower(f.Reason)))
}

// ListDeadLetters returns the dead letters f picks, oldest first.
func ListDeadLetters(ctx context.Context, bus *Bus, f DeadFilter) ([]DeadLetter, error) {
	all, err := ReadDeadLetters(ctx, bus, 0)
	if err != nil {
		return nil, err
	}
	var out []DeadLetter
	for _, d := range all {
		if f.Match(d) {
			out = append(out, d)
		}
	}
	return out, nil
}

// ReplayDeadLetters puts the dead letters f picks back where they failed,
// with their original body and headers, and removes them from the
// dead-letter stream once they are queued again. A replay cut short is
// safe to run again: a letter is removed only after it is stored, and
// its message id is stored once within the duplicate window.
func ReplayDeadLetters(ctx context.Context, bus *Bus, f DeadFilter) (int, error) {
	dead, err := ListDeadLetters(ctx, bus, f)
	if err != nil {
		return 0, err
	}
	var s jetstream.Stream
	if err := rideOut(ctx, func(ctx context.Context) (err error) { s, err = bus.JS.Stream(ctx, StreamDead); return err }); err != nil {
		return 0, err
	}
	n := 0
	for _, d := range dead {
		if d.Subject == "" {
			return n, fmt.Errorf("dead letter %d names no subject to replay it on", d.Seq)
		}
		h := nats.Header{}
		for k, v := range d.header {
			switch k {
			case HeaderError, HeaderStage, HeaderSubject, HeaderDeliveries:
			default:
				h[k] = v
			}
		}
		out := Out{Subject: d.Subject, MsgID: fmt.Sprintf("replay:%d", d.Seq), Data: d.Data, Header: h}
		if err := bus.PublishAll(ctx, []Out{out}); err != nil {
			return n, fmt.Errorf("replaying dead letter %d on %s: %w", d.Seq, d.Subject, err)
		}
		err := rideOut(ctx, func(ctx context.Context) error {
			err := s.DeleteMsg(ctx, d.Seq)
			if err != nil && strings.Contains(err.Error(), "no message found") {
				return nil
			}
			return err
		})
		if err != nil {
			return n, fmt.Errorf("removing replayed dead letter %d: %w", d.Seq, err)
		}
		n++
	}
	return n, nil
}
