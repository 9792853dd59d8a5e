package processor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"
)

// readerConfig is the consumer-group reader. Offsets are committed by the
// processor (CommitMessages), never automatically.
func (p *Processor) readerConfig() kafka.ReaderConfig {
	start := kafka.FirstOffset
	if p.cfg.StartOffset == "latest" {
		start = kafka.LastOffset
	}
	return kafka.ReaderConfig{
		Brokers:               p.cfg.Brokers,
		GroupID:               p.cfg.GroupID,
		GroupTopics:           p.cfg.Topics,
		Dialer:                p.conn.dialer(),
		StartOffset:           start,
		MinBytes:              1,
		MaxBytes:              10 << 20,
		MaxWait:               250 * time.Millisecond,
		QueueCapacity:         p.cfg.Batch.MaxRecords,
		CommitInterval:        0, // synchronous: a commit returns once the broker has it
		SessionTimeout:        p.cfg.Group.SessionTimeout,
		HeartbeatInterval:     p.cfg.Group.HeartbeatInterval,
		RebalanceTimeout:      p.cfg.Group.RebalanceTimeout,
		JoinGroupBackoff:      time.Second,
		ReadBackoffMin:        100 * time.Millisecond,
		ReadBackoffMax:        2 * time.Second,
		WatchPartitionChanges: true,
		ErrorLogger:           kafka.LoggerFunc(p.kafkaError("reader")),
	}
}

// newWriter is the asynchronous writer: WriteMessages queues, and the
// Completion callback tells the tracker which records are safe. kafka-go
// writes each output partition's batches in order, one at a time.
func (p *Processor) newWriter(tr *tracker) *kafka.Writer {
	var bal kafka.Balancer = inputPartition{}
	if p.cfg.Partitioning == "key" {
		bal = &kafka.Murmur2Balancer{Consistent: true}
	}
	return &kafka.Writer{
		Addr:            kafka.TCP(p.cfg.Brokers...),
		Balancer:        bal,
		MaxAttempts:     p.cfg.Producer.MaxAttempts,
		WriteBackoffMin: 100 * time.Millisecond,
		WriteBackoffMax: 2 * time.Second,
		BatchSize:       p.cfg.Producer.BatchSize,
		BatchBytes:      int64(p.cfg.Producer.MaxMessageBytes),
		BatchTimeout:    p.cfg.Producer.BatchTimeout,
		RequiredAcks:    kafka.RequireAll,
		Async:           true,
		Compression:     compression(p.cfg.Producer.Compression),
		Transport:       p.conn.transport(),
		ErrorLogger:     kafka.LoggerFunc(p.kafkaError("writer")),
		Completion: func(msgs []kafka.Message, err error) {
			tr.complete(msgs, err)
			if err == nil {
				p.acknowledged(msgs)
			}
		},
	}
}

// acknowledged counts one acknowledged produce batch (one topic).
func (p *Processor) acknowledged(msgs []kafka.Message) {
	if len(msgs) == 0 {
		return
	}
	topic := msgs[0].Topic
	n := int64(len(msgs))
	switch {
	case slices.Contains(p.review, topic):
		p.countMarked(topic, msgs, HeaderEscalatedBy, "review", &p.stats.escalated)
	case topic == p.cfg.DLQTopic:
		p.stats.deadLettered.Add(n)
		p.m.produced.WithLabelValues(topic, "dead_letter").Add(float64(n))
	case topic == p.cfg.AuditTopic:
		p.countMarked(topic, msgs, HeaderDroppedBy, "audit", &p.stats.audited)
	default:
		p.stats.output.Add(n)
		p.m.produced.WithLabelValues(topic, "output").Add(float64(n))
	}
}

// countMarked counts a batch on a topic that may double as an output
// topic: messages with the header are of kind, the rest are outputs.
func (p *Processor) countMarked(topic string, msgs []kafka.Message, header, kind string, counter *atomic.Int64) {
	marked := int64(0)
	for i := range msgs {
		if hasHeader(msgs[i].Headers, header) {
			marked++
		}
	}
	rest := int64(len(msgs)) - marked
	counter.Add(marked)
	p.stats.output.Add(rest)
	p.m.produced.WithLabelValues(topic, kind).Add(float64(marked))
	p.m.produced.WithLabelValues(topic, "output").Add(float64(rest))
}

func hasHeader(hs []kafka.Header, key string) bool {
	for _, h := range hs {
		if h.Key == key {
			return true
		}
	}
	return false
}

func (p *Processor) kafkaError(who string) func(string, ...any) {
	return func(format string, args ...any) {
		msg := fmt.Sprintf(format, args...)
		level := slog.LevelWarn
		if strings.Contains(msg, "i/o timeout") && strings.Contains(msg, "reading partition") {
			// kafka-go's fetch deadline equals the broker's long-poll wait,
			// so an idle partition times out now and then; it refetches.
			level = slog.LevelDebug
		}
		p.log.Log(context.Background(), level, "kafka "+who, "msg", msg)
	}
}

func compression(name string) kafka.Compression {
	switch name {
	case "gzip":
		return kafka.Gzip
	case "snappy":
		return kafka.Snappy
	case "lz4":
		return kafka.Lz4
	case "zstd":
		return kafka.Zstd
	}
	return 0
}

// inputPartition sends a record to its input partition number modulo the
// output topic's partitions, so records of one input partition keep their
// order in every output topic.
type inputPartition struct{}

func (inputPartition) Balance(msg kafka.Message, partitions ...int) int {
	e := msg.WriterData.(*entry)
	return partitions[e.part.id%len(partitions)]
}

// waitForBrokers blocks until the brokers answer and every topic the
// processor reads or writes exists, logging each failed attempt, so a
// processor started before its brokers says why it is idle.
func (p *Processor) waitForBrokers(ctx context.Context) error {
	client := &kafka.Client{Addr: kafka.TCP(p.cfg.Brokers...), Timeout: 10 * time.Second, Transport: p.conn.transport()}
	backoff := 250 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := p.checkTopics(ctx, client)
		if err == nil {
			if attempt > 1 {
				p.log.Info("brokers reachable", "brokers", p.cfg.Brokers)
			}
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		p.log.Error("brokers not ready; retrying", "brokers", p.cfg.Brokers, "attempt", attempt, "retry_in", backoff, "err", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

func (p *Processor) checkTopics(ctx context.Context, client *kafka.Client) error {
	res, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: p.outputs})
	if err != nil {
		var op *net.OpError
		if errors.As(err, &op) {
			return fmt.Errorf("cannot reach %v: %w", p.cfg.Brokers, err)
		}
		return err
	}
	var errs []error
	for _, t := range res.Topics {
		if t.Error != nil {
			errs = append(errs, fmt.Errorf("topic %s: %w", t.Name, t.Error))
		}
	}
	return errors.Join(errs...)
}
