package processor_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pawlogs/paw/internal/devbroker"
	"github.com/pawlogs/paw/processor"
	"github.com/pawlogs/paw/runtime"
	"github.com/pawlogs/paw/runtime/runtimetest"
)

// The test records come in three kinds, by sequence number: errors go to
// alerts, info lines to app, heartbeats are dropped by the noise filter.
func kindOf(seq int) string { return [...]string{"error", "info", "heartbeat"}[seq%3] }

func lineFor(seq int) string {
	switch kindOf(seq) {
	case "error":
		return fmt.Sprintf("ERROR request %d failed with exception timeout after %dms", seq, seq%997)
	case "info":
		return fmt.Sprintf("INFO request %d completed in %dms", seq, seq%89)
	}
	return fmt.Sprintf("DEBUG heartbeat %d from node-%d ok", seq, seq%7)
}

// destFor is where the test pipeline sends a record.
func destFor(seq int) string {
	return map[string]string{"error": "alerts", "info": "app", "heartbeat": "dropped"}[kindOf(seq)]
}

const textPipeline = `
programs_dir: .
steps:
  - filter: {program: noise, keep: [signal]}
  - tag: {programs: [errs]}
  - route: {program: errs, routes: {error: alerts}, default: app}
`

// testPrograms builds the errs and noise programs (runtimetest, no
// compiler); seeds give other IDs with the same behaviour.
func testPrograms(t testing.TB, seed uint64) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for _, sp := range []struct {
		name   string
		labels []string
		label  func(kind string) string
	}{
		{"errs", []string{"error", "ok"}, func(k string) string {
			if k == "error" {
				return "error"
			}
			return "ok"
		}},
		{"noise", []string{"noise", "signal"}, func(k string) string {
			if k == "heartbeat" {
				return "noise"
			}
			return "signal"
		}},
	} {
		spec := runtimetest.Spec{Name: sp.name, Labels: sp.labels, Seed: seed}
		for i := 0; i < 30; i++ {
			seq := i*7 + 3
			spec.Examples = append(spec.Examples, runtimetest.Example{Text: lineFor(seq), Label: sp.label(kindOf(seq))})
		}
		out[sp.name] = runtimetest.Build(t, spec)
	}
	return out
}

// setup is one test's programs folder, pipeline and processor config.
type setup struct {
	dir    string
	broker *devbroker.Broker
	config string // processor.yaml path
}

// newSetup starts a broker with the test topics and writes the programs,
// a pipeline and a processor config (extra YAML appended) into a folder.
func newSetup(t *testing.T, pipeline, extra string, brokerCfg devbroker.Config) *setup {
	t.Helper()
	dir := t.TempDir()
	for name, data := range testPrograms(t, 0) {
		writeFile(t, filepath.Join(dir, name+".paw"), data)
	}
	writeFile(t, filepath.Join(dir, "pipeline.yaml"), []byte(pipeline))
	if len(brokerCfg.Topics) == 0 {
		brokerCfg.Topics = []string{"in:4", "alerts:4", "app:2", "dropped:1", "dlq:1"}
	}
	b, err := devbroker.Start(brokerCfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	s := &setup{dir: dir, broker: b, config: filepath.Join(dir, "processor.yaml")}
	s.writeConfig(t, extra)
	return s
}

func (s *setup) writeConfig(t *testing.T, extra string) {
	t.Helper()
	cfg := fmt.Sprintf(`brokers: [%s]
group_id: test
topics: [in]
pipeline: pipeline.yaml
audit_topic: dropped
dlq_topic: dlq
commit_interval: 100ms
shutdown_timeout: 10s
batch: {max_records: 512, max_wait: 2ms}
producer: {batch_timeout: 2ms}
group: {session_timeout: 6s, heartbeat_interval: 500ms, rebalance_timeout: 6s}
`, s.broker.Addr()) + extra
	writeFile(t, s.config, []byte(cfg))
}

func writeFile(t testing.TB, path string, data []byte) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// running is a processor running in this test process.
type running struct {
	p    *processor.Processor
	reg  *prometheus.Registry
	pl   *runtime.Pipeline
	stop context.CancelFunc
	done chan error
}

func startProcessor(t *testing.T, s *setup) *running {
	return startProcessorWith(t, s, testLogger(t))
}

func startProcessorWith(t *testing.T, s *setup, log *slog.Logger) *running {
	t.Helper()
	reg := prometheus.NewRegistry()
	p, err := processor.Open(s.config, "", processor.Options{Logger: log, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{p: p, reg: reg, pl: p.Pipeline(), stop: cancel, done: make(chan error, 1)}
	go func() { r.done <- p.Run(ctx) }()
	t.Cleanup(func() { r.shutdown(t) })
	return r
}

// metric returns the value of the series of name whose labels include
// all of want, or -1.
func (r *running) metric(t testing.TB, name string, want map[string]string) float64 {
	t.Helper()
	mfs, err := r.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			for k, v := range want {
				if labels[k] != v {
					continue series
				}
			}
			switch {
			case m.GetCounter() != nil:
				return m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				return m.GetGauge().GetValue()
			case m.GetHistogram() != nil:
				return float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return -1
}

// shutdown stops the processor and waits for Run; it is idempotent.
func (r *running) shutdown(t *testing.T) {
	t.Helper()
	r.stop()
	if r.done == nil {
		return
	}
	select {
	case err := <-r.done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("processor did not stop within 30s")
	}
	r.done = nil
	if err := r.p.Close(); err != nil {
		t.Error(err)
	}
}

func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// client is an independent franz-go client for producing and reading back.
func client(t testing.TB, addr string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerLinger(time.Millisecond)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// produce writes records seq in [from, to) to topic "in", record seq to
// partition seq%partitions, keyed by seq. value renders the record.
func produce(t testing.TB, cl *kgo.Client, from, to, partitions int, value func(seq int) []byte) {
	t.Helper()
	const chunk = 5000
	for lo := from; lo < to; lo += chunk {
		var rs []*kgo.Record
		for seq := lo; seq < min(lo+chunk, to); seq++ {
			rs = append(rs, &kgo.Record{Topic: "in", Partition: int32(seq % partitions), Key: []byte(strconv.Itoa(seq)), Value: value(seq),
				Headers: []kgo.RecordHeader{{Key: "origin", Value: []byte("test")}}})
		}
		if err := cl.ProduceSync(context.Background(), rs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
}

func textValue(seq int) []byte { return []byte(lineFor(seq)) }

// consumed is everything read back from the output topics.
type consumed struct {
	byTopic map[string][]*kgo.Record
}

// consumeUntil reads the topics from the start until want(records) holds
// or the timeout passes.
func consumeUntil(t testing.TB, addr string, topics []string, timeout time.Duration, want func(c *consumed) bool, opts ...kgo.Opt) *consumed {
	t.Helper()
	opts = append(opts, kgo.ConsumeTopics(topics...), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100*time.Millisecond))
	cl := client(t, addr, opts...)
	c := &consumed{byTopic: map[string][]*kgo.Record{}}
	deadline := time.Now().Add(timeout)
	for !want(c) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v: %s", timeout, c.summary())
		}
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		fs := cl.PollFetches(ctx)
		cancel()
		fs.EachRecord(func(r *kgo.Record) { c.byTopic[r.Topic] = append(c.byTopic[r.Topic], r) })
	}
	return c
}

// readAll reads the topics from the start until nothing new arrives for
// quiet.
func readAll(t testing.TB, addr string, topics []string, quiet time.Duration) *consumed {
	t.Helper()
	last, lastChange := -1, time.Now()
	return consumeUntil(t, addr, topics, time.Minute, func(c *consumed) bool {
		if n := c.total(); n != last {
			last, lastChange = n, time.Now()
		}
		return time.Since(lastChange) >= quiet
	})
}

func (c *consumed) count(topic string) int { return len(c.byTopic[topic]) }

func (c *consumed) summary() string {
	var parts []string
	for _, t := range sortedTopics(c.byTopic) {
		parts = append(parts, fmt.Sprintf("%s=%d", t, len(c.byTopic[t])))
	}
	return strings.Join(parts, " ")
}

func sortedTopics(m map[string][]*kgo.Record) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func header(r *kgo.Record, key string) string {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// seqOf reads a record's sequence number from its key.
func seqOf(t testing.TB, r *kgo.Record) int {
	n, err := strconv.Atoi(string(r.Key))
	if err != nil {
		t.Fatalf("record key %q: %v", r.Key, err)
	}
	return n
}

// delivery checks that every seq in [0, n) reached its destination at
// least once and returns how many extra copies arrived.
func delivery(t testing.TB, c *consumed, n int, dest func(int) string) (duplicates int) {
	t.Helper()
	seen := make([]int, n)
	for topic, rs := range c.byTopic {
		for _, r := range rs {
			seq := seqOf(t, r)
			if want := dest(seq); want != topic {
				t.Fatalf("record %d landed in %s, want %s", seq, topic, want)
			}
			seen[seq]++
		}
	}
	for seq, k := range seen {
		if k == 0 {
			t.Fatalf("record %d never arrived (%s)", seq, c.summary())
		}
		duplicates += k - 1
	}
	return duplicates
}

// total is how many records arrived on all topics.
func (c *consumed) total() int {
	n := 0
	for _, rs := range c.byTopic {
		n += len(rs)
	}
	return n
}

// distinct is how many different keys arrived.
func (c *consumed) distinct() int {
	keys := map[string]bool{}
	for _, rs := range c.byTopic {
		for _, r := range rs {
			keys[string(r.Key)] = true
		}
	}
	return len(keys)
}

var outputTopics = []string{"alerts", "app", "dropped", "dlq"}
