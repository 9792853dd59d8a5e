package processor

import (
	"context"
	"sort"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/pawlogs/paw/internal/dataplane"
)

// entry is one fetched input record until its output is acknowledged.
// Records with no output (dropped and not audited) are done at once.
type entry struct {
	part    *partition
	offset  int64
	fetched time.Time
	pending int // outputs not yet acknowledged (an escalated record has two)
	done    bool
}

// partition tracks one input partition's records in fetch order. The
// commit point advances over the prefix whose outputs are all acknowledged,
// so an offset is committed only after every record before it is safe.
type partition struct {
	topic     string
	id        int
	queue     []*entry
	head      int
	next      int64 // offset to commit: one past the acknowledged prefix
	committed int64 // what was last committed; -1 before the first commit
	hwm       int64 // high-water mark seen on the last fetch
	fetched   int64 // one past the last offset fetched
}

// tracker is the at-least-once bookkeeping of one consumer session. The
// writer's Completion callback and the commit loop share it.
type tracker struct {
	mu       sync.Mutex
	parts    map[topicPartition]*partition
	inFlight int // records handed to the writer, not yet acknowledged
	max      int
	space    chan struct{} // signalled when inFlight drops
	failed   error         // the first write failure; the session rewinds
	failedCh chan struct{}
	onAck    func(latency time.Duration)
}

type topicPartition struct {
	topic string
	id    int
}

func newTracker(maxInFlight int, onAck func(time.Duration)) *tracker {
	return &tracker{
		parts: map[topicPartition]*partition{}, max: maxInFlight,
		space: make(chan struct{}, 1), failedCh: make(chan struct{}), onAck: onAck,
	}
}

// add registers fetched records in order. entries[i] belongs to msgs[i].
func (t *tracker) add(msgs []kafka.Message, entries []entry, fetched []time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for i := range msgs {
		m := &msgs[i]
		key := topicPartition{m.Topic, m.Partition}
		p := t.parts[key]
		if p == nil {
			p = &partition{topic: m.Topic, id: m.Partition, next: m.Offset, committed: -1}
			t.parts[key] = p
		}
		p.hwm, p.fetched = m.HighWaterMark, m.Offset+1
		entries[i] = entry{part: p, offset: m.Offset, fetched: fetched[i]}
		p.queue = append(p.queue, &entries[i])
	}
}

// reserve waits until n more records may be in flight.
func (t *tracker) reserve(ctx context.Context, n int) error {
	for {
		t.mu.Lock()
		if t.failed != nil {
			err := t.failed
			t.mu.Unlock()
			return err
		}
		if t.inFlight == 0 || t.inFlight+n <= t.max {
			t.inFlight += n
			t.mu.Unlock()
			return nil
		}
		t.mu.Unlock()
		select {
		case <-t.space:
		case <-t.failedCh:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// unreserve returns reservations for records that never reached the writer.
func (t *tracker) unreserve(n int) {
	t.mu.Lock()
	t.inFlight -= n
	t.mu.Unlock()
	t.signal()
}

func (t *tracker) signal() {
	select {
	case t.space <- struct{}{}:
	default:
	}
}

// markDone completes records that produce no output.
func (t *tracker) markDone(es ...*entry) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := time.Now()
	for _, e := range es {
		e.done = true
		if t.onAck != nil {
			t.onAck(now.Sub(e.fetched))
		}
		t.advance(e.part)
	}
}

// complete is the writer's Completion callback: one produce batch, all to
// one output partition, acknowledged or failed for good.
func (t *tracker) complete(msgs []kafka.Message, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.inFlight -= len(msgs)
	defer t.signal()
	if err != nil {
		if t.failed == nil {
			t.failed = dataplane.DeliveryError(err, len(msgs))
			close(t.failedCh)
		}
		return
	}
	now := time.Now()
	for i := range msgs {
		e := msgs[i].WriterData.(*entry)
		if e.pending--; e.pending > 0 {
			continue
		}
		e.done = true
		if t.onAck != nil {
			t.onAck(now.Sub(e.fetched))
		}
		t.advance(e.part)
	}
}

// advance moves a partition's commit point over acknowledged records.
func (t *tracker) advance(p *partition) {
	for p.head < len(p.queue) && p.queue[p.head].done {
		p.next = p.queue[p.head].offset + 1
		p.queue[p.head] = nil
		p.head++
	}
	if p.head == len(p.queue) {
		p.queue, p.head = p.queue[:0], 0
	} else if p.head > 4096 && p.head > len(p.queue)/2 {
		p.queue = append(p.queue[:0], p.queue[p.head:]...)
		p.head = 0
	}
}

// commits lists, in a stable order, the offsets to commit now: each
// partition whose acknowledged prefix moved past its last commit. kafka-go
// commits Offset+1, so each message carries the last acknowledged offset.
func (t *tracker) commits() []kafka.Message {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []kafka.Message
	for _, p := range t.parts {
		if p.next > p.committed && p.next > 0 {
			out = append(out, kafka.Message{Topic: p.topic, Partition: p.id, Offset: p.next - 1})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Topic != out[j].Topic {
			return out[i].Topic < out[j].Topic
		}
		return out[i].Partition < out[j].Partition
	})
	return out
}

// committed records a successful commit of msgs.
func (t *tracker) committed(msgs []kafka.Message) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, m := range msgs {
		if p := t.parts[topicPartition{m.Topic, m.Partition}]; p != nil && m.Offset+1 > p.committed {
			p.committed = m.Offset + 1
		}
	}
}

// lag sums, over partitions, the records between the last commit and the
// high-water mark (backlog: what the group still has to get through) and
// between the last commit and the last fetch (uncommitted: what a crash now
// would make the group read again).
func (t *tracker) lag() (backlog, uncommitted int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, p := range t.parts {
		c := p.committed
		if c < 0 {
			c = p.next
		}
		backlog += max(0, p.hwm-c)
		uncommitted += max(0, p.fetched-c)
	}
	return backlog, uncommitted
}

// pending is the number of records fetched but not yet acknowledged.
func (t *tracker) pending() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, p := range t.parts {
		n += len(p.queue) - p.head
	}
	return n
}

func (t *tracker) err() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.failed
}
