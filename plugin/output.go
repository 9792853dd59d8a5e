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

// Line is one output record: a JSON object, and for Kafka the topic the
// pipeline's route chose ("" for the output's own).
type Line struct {
	Topic string
	Data  []byte
}

// output is where records go. Write is called concurrently (Fluent Bit's
// output workers) and must deliver all lines or return an error: the
// chunk is then retried by Fluent Bit.
type output interface {
	Write(ctx context.Context, lines []Line) error
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

func (o *streamOutput) Write(_ context.Context, lines []Line) error {
	n := 0
	for _, l := range lines {
		n += len(l.Data) + 1
	}
	buf := make([]byte, 0, n)
	for _, l := range lines {
		buf = append(append(buf, l.Data...), '\n')
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if _, err := o.w.Write(buf); err != nil {
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

func (o *kafkaOutput) Write(ctx context.Context, lines []Line) error {
	msgs := make([]kafka.Message, len(lines))
	for i, l := range lines {
		msgs[i] = kafka.Message{Topic: l.Topic, Value: l.Data}
		if l.Topic == "" {
			msgs[i].Topic = o.topic
		}
	}
	ctx, cancel := context.WithTimeout(ctx, kafkaWriteTimeout)
	defer cancel()
	if err := o.w.WriteMessages(ctx, msgs...); err != nil {
		return dataplane.DeliveryError(err, len(msgs))
	}
	return nil
}

func (o *kafkaOutput) Close() error { return o.w.Close() }
