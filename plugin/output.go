package plugin

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/pawlogs/paw/internal/dataplane"
)

// batch is a chunk's output records: JSON objects, each followed by a
// newline, in one buffer, and for Kafka the topic the pipeline's route
// chose for each ("" for the output's own).
type batch struct {
	buf   []byte
	lines []line
}

// line is buf[start:end] of its batch; buf[end] is its newline.
type line struct {
	topic      string
	start, end int
}

// add ends the line begun at start (len(buf) before it was written).
func (b *batch) add(topic string, start int) {
	b.lines = append(b.lines, line{topic: topic, start: start, end: len(b.buf)})
	b.buf = append(b.buf, '\n')
}

func (b *batch) reset() {
	b.buf, b.lines = b.buf[:0], b.lines[:0]
}

// output is where records go. Write is called concurrently (Fluent Bit's
// output workers) and must deliver all lines or return an error: the
// chunk is then retried by Fluent Bit. It may keep b only when it fails.
type output interface {
	Write(ctx context.Context, b *batch) error
	Close() error
}

type outputSpec struct {
	kind    string // stdout, file, kafka
	path    string
	brokers []string
	topic   string
}

func parseOutput(s string) (outputSpec, error) {
	switch {
	case s == "stdout":
		return outputSpec{kind: "stdout"}, nil
	case strings.HasPrefix(s, "file://"):
		p := strings.TrimPrefix(s, "file://")
		if p == "" {
			return outputSpec{}, fmt.Errorf("%q: file:// needs a path", s)
		}
		return outputSpec{kind: "file", path: p}, nil
	case strings.HasPrefix(s, "kafka://"):
		rest := strings.TrimPrefix(s, "kafka://")
		hosts, topic, ok := strings.Cut(rest, "/")
		if !ok || topic == "" || hosts == "" {
			return outputSpec{}, fmt.Errorf("%q: want kafka://host1:9092,host2:9092/TOPIC", s)
		}
		spec := outputSpec{kind: "kafka", topic: topic}
		for _, h := range strings.Split(hosts, ",") {
			if _, _, err := net.SplitHostPort(h); err != nil {
				return outputSpec{}, fmt.Errorf("%q: broker %q: %v", s, h, err)
			}
			spec.brokers = append(spec.brokers, h)
		}
		return spec, nil
	}
	return outputSpec{}, fmt.Errorf("%q: want stdout, file://PATH or kafka://host:port,.../TOPIC", s)
}

func openOutput(spec outputSpec, stdout io.Writer) (output, error) {
	switch spec.kind {
	case "stdout":
		return &streamOutput{w: stdout}, nil
	case "file":
		o, err := openFileOutput(spec.path)
		if err != nil {
			return nil, err // not a typed nil in the interface
		}
		return o, nil
	case "kafka":
		return newKafkaOutput(spec), nil
	}
	return nil, fmt.Errorf("unknown output kind %q", spec.kind)
}

// streamOutput writes JSON lines, one write per chunk, so concurrent
// flushes never interleave inside a line.
type streamOutput struct {
	mu     sync.Mutex
	w      io.Writer
	closer io.Closer
}

func openFileOutput(path string) (*streamOutput, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open output file: %w", err)
	}
	return &streamOutput{w: f, closer: f}, nil
}

func (o *streamOutput) Write(_ context.Context, b *batch) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if _, err := o.w.Write(b.buf); err != nil {
		return fmt.Errorf("write output: %w", err)
	}
	return nil
}

func (o *streamOutput) Close() error {
	if o.closer != nil {
		return o.closer.Close()
	}
	return nil
}

// kafkaOutput produces each chunk synchronously (acks=all), so FLB_OK is
// only returned once the brokers have every record.
type kafkaOutput struct {
	w     *kafka.Writer
	topic string
}

// kafkaWriteTimeout bounds one chunk's delivery; past it the chunk is
// retried by Fluent Bit rather than holding the output worker.
const kafkaWriteTimeout = 10 * time.Second

func newKafkaOutput(spec outputSpec) *kafkaOutput {
	return &kafkaOutput{topic: spec.topic, w: &kafka.Writer{
		Addr:         kafka.TCP(spec.brokers...),
		RequiredAcks: kafka.RequireAll,
		BatchSize:    10000,
		BatchTimeout: time.Millisecond, // a chunk is written at once; do not wait for more
		// Fluent Bit owns retries (FLB_RETRY re-sends the chunk): a writer
		// attempt of its own would multiply them, each able to duplicate
		// the chunk.
		MaxAttempts:     1,
		WriteBackoffMin: 100 * time.Millisecond,
		WriteBackoffMax: time.Second,
		Balancer:        &kafka.RoundRobin{},
	}}
}

func (o *kafkaOutput) Write(ctx context.Context, b *batch) error {
	msgs := make([]kafka.Message, len(b.lines))
	for i, l := range b.lines {
		msgs[i] = kafka.Message{Topic: l.topic, Value: b.buf[l.start:l.end:l.end]}
		if l.topic == "" {
			msgs[i].Topic = o.topic
		}
	}
	ctx, cancel := context.WithTimeout(ctx, kafkaWriteTimeout)
	defer cancel()
	// A write that fails may still be in flight: the flush then drops b
	// rather than reusing it.
	if err := o.w.WriteMessages(ctx, msgs...); err != nil {
		return dataplane.DeliveryError(err, len(msgs))
	}
	return nil
}

func (o *kafkaOutput) Close() error { return o.w.Close() }
