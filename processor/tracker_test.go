package processor

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
)

// batchOf fetches offsets on one partition into a tracker.
func batchOf(tr *tracker, topic string, part int, offsets ...int64) []entry {
	msgs := make([]kafka.Message, len(offsets))
	times := make([]time.Time, len(offsets))
	for i, o := range offsets {
		msgs[i] = kafka.Message{Topic: topic, Partition: part, Offset: o, HighWaterMark: 100}
	}
	entries := make([]entry, len(offsets))
	tr.add(msgs, entries, times)
	return entries
}

func ack(tr *tracker, es ...*entry) {
	msgs := make([]kafka.Message, len(es))
	for i, e := range es {
		msgs[i] = kafka.Message{WriterData: e}
	}
	tr.inFlight += len(es)
	tr.complete(msgs, nil)
}

func TestTrackerCommitsOnlyAcknowledgedPrefixes(t *testing.T) {
	tests := []struct {
		name string
		// acks is the order in which offsets 10..14 are acknowledged; -1
		// marks "dropped, no output" for the next one.
		acks []int
		want int64 // the offset passed to CommitMessages (last acked), -1 for none
	}{
		{"none acknowledged", nil, -1},
		{"in order", []int{0, 1, 2, 3, 4}, 14},
		{"gap holds the commit back", []int{0, 1, 3, 4}, 11},
		{"out of order, gap filled", []int{4, 3, 2, 1, 0}, 14},
		{"first missing", []int{1, 2, 3, 4}, -1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr := newTracker(100, nil)
			es := batchOf(tr, "in", 2, 10, 11, 12, 13, 14)
			for _, i := range tc.acks {
				ack(tr, &es[i])
			}
			cs := tr.commits()
			got := int64(-1)
			for _, c := range cs {
				if c.Topic == "in" && c.Partition == 2 && c.Offset >= 10 {
					got = c.Offset
				}
			}
			if got != tc.want {
				t.Fatalf("commit offset %d, want %d (commits %v)", got, tc.want, cs)
			}
		})
	}
}

func TestTrackerPartitionsAreIndependentAndFailuresStick(t *testing.T) {
	tr := newTracker(100, nil)
	a := batchOf(tr, "in", 0, 5, 6)
	b := batchOf(tr, "in", 1, 7)
	tr.markDone(&a[0], &b[0])
	cs := tr.commits()
	if len(cs) != 2 || cs[0].Offset != 5 || cs[1].Offset != 7 {
		t.Fatalf("commits %v, want partition 0 at 5 and partition 1 at 7", cs)
	}
	tr.committed(cs)
	if cs := tr.commits(); len(cs) != 0 {
		t.Fatalf("nothing new acknowledged, still commits %v", cs)
	}
	// Committed: partition 0 up to 6 (7 fetched), partition 1 up to 8 (8
	// fetched); both high-water marks are 100.
	const wantBacklog, wantUncommitted = (100 - 6) + (100 - 8), 1
	if backlog, uncommitted := tr.lag(); backlog != wantBacklog || uncommitted != wantUncommitted {
		t.Fatalf("lag %d, %d; want %d, %d", backlog, uncommitted, wantBacklog, wantUncommitted)
	}
	failure := errors.New("broker gone")
	tr.inFlight++
	tr.complete([]kafka.Message{{WriterData: &a[1]}}, failure)
	if !errors.Is(tr.err(), failure) {
		t.Fatalf("err %v, want the write failure", tr.err())
	}
	if cs := tr.commits(); len(cs) != 0 {
		t.Fatalf("a failed record was committed: %v", cs)
	}
	if err := tr.reserve(context.Background(), 1); !errors.Is(err, failure) {
		t.Fatalf("reserve after a failure: %v", err)
	}
}

func TestTrackerBoundsInFlight(t *testing.T) {
	tr := newTracker(10, nil)
	if err := tr.reserve(context.Background(), 8); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := tr.reserve(ctx, 5); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("reserve past the bound: %v, want to wait", err)
	}
	done := make(chan error, 1)
	go func() { done <- tr.reserve(context.Background(), 5) }()
	es := batchOf(tr, "in", 0, 1, 2, 3, 4, 5)
	msgs := make([]kafka.Message, 5)
	for i := range msgs {
		msgs[i].WriterData = &es[i]
	}
	tr.complete(msgs, nil) // frees 5 of the 8
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("reserve did not wake up when records were acknowledged")
	}
}
