package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"
)

// runProduce writes stdin lines to a topic: the demo's and a debugging
// user's way to feed the processor without another Kafka client.
func runProduce(e *env, args []string) error {
	fs := newFlags(e, "produce")
	brokers := fs.String("brokers", "127.0.0.1:9092", "comma-separated bootstrap brokers")
	topic := fs.String("topic", "", "topic to write to")
	field := fs.String("json-field", "", "wrap each line as a JSON object with the line in this field")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if *topic == "" || len(pos) > 0 {
		return usagef("--topic is required and takes no arguments")
	}
	w := &kafka.Writer{Addr: kafka.TCP(strings.Split(*brokers, ",")...), Topic: *topic, RequiredAcks: kafka.RequireAll,
		BatchTimeout: 5 * time.Millisecond, Balancer: &kafka.RoundRobin{}}
	defer w.Close()
	sc := bufio.NewScanner(e.stdin)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	var batch []kafka.Message
	n := 0
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if err := w.WriteMessages(e.ctx, batch...); err != nil {
			return fmt.Errorf("produce to %s: %w", *topic, err)
		}
		n += len(batch)
		batch = batch[:0]
		return nil
	}
	for sc.Scan() {
		v := append([]byte(nil), sc.Bytes()...)
		if *field != "" {
			v, _ = json.Marshal(map[string]string{*field: string(v)})
		}
		batch = append(batch, kafka.Message{Value: v})
		if len(batch) == 1000 {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read stdin: %w", err)
	}
	if err := flush(); err != nil {
		return err
	}
	fmt.Fprintf(e.stderr, "produced %d records to %s\n", n, *topic)
	return nil
}

// runConsume prints every record of the topics, from the first offset to
// the end offsets found at start, with headers: what landed where.
func runConsume(e *env, args []string) error {
	fs := newFlags(e, "consume")
	brokers := fs.String("brokers", "127.0.0.1:9092", "comma-separated bootstrap brokers")
	topics := fs.String("topics", "", "comma-separated topics")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if *topics == "" || len(pos) > 0 {
		return usagef("--topics is required and takes no arguments")
	}
	addrs := strings.Split(*brokers, ",")
	client := &kafka.Client{Addr: kafka.TCP(addrs...), Timeout: 10 * time.Second}
	for _, topic := range strings.Split(*topics, ",") {
		meta, err := client.Metadata(e.ctx, &kafka.MetadataRequest{Topics: []string{topic}})
		if err != nil {
			return fmt.Errorf("metadata: %w", err)
		}
		if len(meta.Topics) != 1 || meta.Topics[0].Error != nil {
			return fmt.Errorf("topic %s: %v", topic, meta.Topics[0].Error)
		}
		var reqs []kafka.OffsetRequest
		for _, p := range meta.Topics[0].Partitions {
			reqs = append(reqs, kafka.FirstOffsetOf(p.ID), kafka.LastOffsetOf(p.ID))
		}
		offs, err := client.ListOffsets(e.ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: reqs}})
		if err != nil {
			return fmt.Errorf("list offsets of %s: %w", topic, err)
		}
		parts := offs.Topics[topic]
		sort.Slice(parts, func(i, j int) bool { return parts[i].Partition < parts[j].Partition })
		total := 0
		for _, p := range parts {
			total += int(p.LastOffset - p.FirstOffset)
		}
		fmt.Fprintf(e.stdout, "== %s: %d records\n", topic, total)
		for _, p := range parts {
			if p.LastOffset <= p.FirstOffset {
				continue
			}
			if err := printPartition(e, addrs, topic, p); err != nil {
				return err
			}
		}
	}
	return nil
}

func printPartition(e *env, brokers []string, topic string, p kafka.PartitionOffsets) error {
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: topic, Partition: p.Partition, MaxWait: 100 * time.Millisecond})
	defer r.Close()
	if err := r.SetOffset(p.FirstOffset); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(e.ctx, 30*time.Second)
	defer cancel()
	for off := p.FirstOffset; off < p.LastOffset; {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			return fmt.Errorf("read %s/%d: %w", topic, p.Partition, err)
		}
		var hs []string
		for _, h := range m.Headers {
			hs = append(hs, h.Key+"="+string(h.Value))
		}
		fmt.Fprintf(e.stdout, "[%d@%d] %s", m.Partition, m.Offset, m.Value)
		if len(hs) > 0 {
			fmt.Fprintf(e.stdout, "  {%s}", strings.Join(hs, ", "))
		}
		fmt.Fprintln(e.stdout)
		off = m.Offset + 1
	}
	return nil
}
