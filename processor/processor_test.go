package processor_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pawlogs/paw/internal/devbroker"
	"github.com/pawlogs/paw/metrics"
	"github.com/pawlogs/paw/processor"
	"github.com/pawlogs/paw/runtime"
)

func TestRouteFilterTag100k(t *testing.T) {
	const n = 100_000
	s := newSetup(t, textPipeline, "", devbroker.Config{})
	cl := client(t, s.broker.Addr())
	produce(t, cl, 0, n, 4, textValue)
	start := time.Now()
	r := startProcessor(t, s)
	c := consumeUntil(t, s.broker.Addr(), outputTopics, 2*time.Minute, func(c *consumed) bool { return c.total() >= n })
	t.Logf("%d records routed in %v (%s)", n, time.Since(start).Round(time.Millisecond), c.summary())
	r.shutdown(t)

	if dups := delivery(t, c, n, destFor); dups != 0 {
		t.Fatalf("%d duplicates without any failure", dups)
	}
	want := map[string]int{"alerts": n/3 + 1, "app": n / 3, "dropped": n / 3, "dlq": 0}
	for topic, w := range want {
		if got := c.count(topic); got != w {
			t.Errorf("%s: %d records, want %d", topic, got, w)
		}
	}
	// Order: in every output partition, each input partition's records
	// (seq%4) appear in increasing sequence.
	for topic, rs := range c.byTopic {
		last := map[[2]int]int{}
		for _, rec := range rs {
			seq := seqOf(t, rec)
			k := [2]int{int(rec.Partition), seq % 4}
			if prev, ok := last[k]; ok && seq <= prev {
				t.Fatalf("%s partition %d: record %d after %d", topic, rec.Partition, seq, prev)
			}
			last[k] = seq
			if in := int32(seq % 4); in%int32(map[string]int{"alerts": 4, "app": 2, "dropped": 1}[topic]) != rec.Partition {
				t.Fatalf("%s: record %d from input partition %d is in partition %d", topic, seq, in, rec.Partition)
			}
		}
	}
	// Tags and carried-through headers, key and timestamp.
	for _, rec := range c.byTopic["alerts"][:100] {
		if header(rec, "paw-errs-label") != "error" || header(rec, "paw-errs-score") == "" || len(header(rec, "paw-errs-id")) != 64 {
			t.Fatalf("alert without its tags: %v", rec.Headers)
		}
		if header(rec, "origin") != "test" || rec.Timestamp.IsZero() || string(rec.Value) != lineFor(seqOf(t, rec)) {
			t.Fatalf("record not carried through: %+v", rec)
		}
	}
	for _, rec := range c.byTopic["dropped"][:100] {
		if header(rec, processor.HeaderDroppedBy) != "noise" || header(rec, processor.HeaderSourceTopic) != "in" {
			t.Fatalf("audited record without its reason: %v", rec.Headers)
		}
	}
	st := r.p.Stats()
	t.Logf("stats: %+v", st)
	for topic, kind := range map[string]string{"alerts": "output", "app": "output", "dropped": "audit"} {
		if got := r.metric(t, "paw_processor_records_produced_total", map[string]string{"topic": topic, "kind": kind}); got != float64(want[topic]) {
			t.Errorf("paw_processor_records_produced_total{topic=%q} = %v, want %d", topic, got, want[topic])
		}
	}
	if got := r.metric(t, "paw_decisions_total", map[string]string{"program": "errs", "label": "error"}); got != float64(want["alerts"]) {
		t.Errorf("paw_decisions_total{errs,error} = %v, want %d", got, want["alerts"])
	}
	if st.Output+st.Audited != n || st.Rewinds != 0 {
		t.Fatalf("stats %+v, want %d acknowledged and no rewinds", st, n)
	}
}

const jsonPipeline = `
programs_dir: .
input: log
steps:
  - filter: {program: noise, keep: [signal]}
  - tag: {programs: [errs]}
  - route: {program: errs, routes: {error: alerts}, default: app}
`

// poison kinds, by seq: every fifth record is poison, cycling through the
// reasons the processor must dead-letter.
var poisonKinds = []struct {
	reason string
	value  func(seq int) []byte
}{
	{processor.ReasonNotJSON, func(seq int) []byte { return []byte(fmt.Sprintf("{not json %d", seq)) }},
	{processor.ReasonFieldMissing, func(seq int) []byte { return []byte(fmt.Sprintf(`{"msg": "no log field %d"}`, seq)) }},
	{processor.ReasonNotString, func(seq int) []byte { return []byte(fmt.Sprintf(`{"log": %d}`, seq)) }},
	{processor.ReasonInvalidUTF8, func(seq int) []byte { return []byte(fmt.Sprintf("{\"log\": \"bad \xff\xfe %d\"}", seq)) }},
	{processor.ReasonTooLarge, func(seq int) []byte {
		return []byte(fmt.Sprintf(`{"log": "ERROR %d %s"}`, seq, strings.Repeat("x", 70<<10)))
	}},
}

func isPoison(seq int) bool { return seq%5 == 4 }

func poisonOf(seq int) int { return (seq / 5) % len(poisonKinds) }

func TestPoisonRecordsGoToTheDLQ(t *testing.T) {
	const n = 50_000 // 10,000 poison
	s := newSetup(t, jsonPipeline, "max_record_bytes: 65536\n", devbroker.Config{})
	produce(t, client(t, s.broker.Addr()), 0, n, 4, func(seq int) []byte {
		if isPoison(seq) {
			return poisonKinds[poisonOf(seq)].value(seq)
		}
		v, _ := json.Marshal(map[string]any{"log": lineFor(seq), "host": "web-1"})
		return v
	})
	r := startProcessor(t, s)
	c := consumeUntil(t, s.broker.Addr(), outputTopics, 2*time.Minute, func(c *consumed) bool { return c.total() >= n })
	r.shutdown(t)
	dest := func(seq int) string {
		if isPoison(seq) {
			return "dlq"
		}
		return destFor(seq)
	}
	if dups := delivery(t, c, n, dest); dups != 0 {
		t.Fatalf("%d duplicates", dups)
	}
	if got := c.count("dlq"); got != n/5 {
		t.Fatalf("dlq has %d records, want %d", got, n/5)
	}
	reasons := map[string]int{}
	for _, rec := range c.byTopic["dlq"] {
		seq := seqOf(t, rec)
		want := poisonKinds[poisonOf(seq)].reason
		if got := header(rec, processor.HeaderDLQReason); got != want {
			t.Fatalf("record %d: reason %q, want %q (error %q)", seq, got, want, header(rec, processor.HeaderDLQError))
		}
		if header(rec, processor.HeaderDLQError) == "" || header(rec, processor.HeaderSourceTopic) != "in" ||
			header(rec, processor.HeaderSourcePartition) != strconv.Itoa(seq%4) || header(rec, processor.HeaderSourceOffset) == "" {
			t.Fatalf("record %d: incomplete dead-letter headers %v", seq, rec.Headers)
		}
		if !bytes.Equal(rec.Value, poisonKinds[poisonOf(seq)].value(seq)) {
			t.Fatalf("record %d: dead letter does not carry the original value", seq)
		}
		reasons[want]++
	}
	t.Logf("dead letters by reason: %v", reasons)
	for reason, n := range reasons {
		if got := r.metric(t, "paw_processor_dead_letters_total", map[string]string{"reason": reason}); got != float64(n) {
			t.Fatalf("paw_processor_dead_letters_total{reason=%q} = %v, want %d", reason, got, n)
		}
	}
	// JSON records carry their tags as fields, other fields untouched.
	for _, rec := range c.byTopic["alerts"][:50] {
		var v struct {
			Log  string                 `json:"log"`
			Host string                 `json:"host"`
			Paw  map[string]runtime.Tag `json:"paw"`
		}
		if err := json.Unmarshal(rec.Value, &v); err != nil {
			t.Fatalf("tagged record is not JSON: %v: %s", err, rec.Value)
		}
		if v.Host != "web-1" || v.Log != lineFor(seqOf(t, rec)) || v.Paw["errs"].Label != "error" || len(v.Paw["errs"].ID) != 64 {
			t.Fatalf("tagged JSON record: %s", rec.Value)
		}
	}
}

// TestStandaloneProcessorKeepsItsOwnMetrics: with no sidecar, the
// processor's reports go into its own store and fleet.
func TestStandaloneProcessorKeepsItsOwnMetrics(t *testing.T) {
	const n = 3000
	s := newSetup(t, textPipeline, "report: {interval: 100ms, name: solo}\n", devbroker.Config{})
	store, err := metrics.Open(t.TempDir(), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	fleet := metrics.NewFleet()
	p, err := processor.Open(s.config, "", processor.Options{Logger: testLogger(t), Store: store, Fleet: fleet})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	produce(t, client(t, s.broker.Addr()), 0, n, 4, textValue)
	consumeUntil(t, s.broker.Addr(), outputTopics, time.Minute, func(c *consumed) bool { return c.total() >= n })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	series, err := store.Query(metrics.Query{Metric: metrics.MetricDecisions, Match: map[string]string{"program": "noise", "reporter": "solo"}, From: time.Now().Add(-time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	total := 0.0
	for _, sr := range series {
		for _, smp := range sr.Samples {
			total += smp.V
		}
	}
	members := fleet.List(nil)
	if total != n || len(members) != 1 || members[0].Name != "solo" || members[0].Programs["noise"] == "" {
		t.Fatalf("stored %v noise decisions for %d records; fleet %+v", total, n, members)
	}
	// The pattern view: one record in 64 (records 0, 64, ...) sampled,
	// each counted 64 times.
	var sampled int64
	for _, p := range store.Patterns().Top(time.Now().Add(-time.Hour), time.Now(), 100, "noise")["noise"] {
		sampled += p.Count
		if p.Template == "" || p.Label == "" {
			t.Fatalf("pattern %+v", p)
		}
	}
	if want := int64(64 * ((n + 63) / 64)); sampled != want {
		t.Fatalf("patterns count %d records, want %d", sampled, want)
	}
}

// TestEscalationToAReviewTopic: low-confidence route decisions also go to
// the review topic; every record still goes where its decision sends it,
// and its offset is committed only once both copies are acknowledged.
func TestEscalationToAReviewTopic(t *testing.T) {
	const n = 6000
	pipeline := `
programs_dir: .
steps:
  - tag: {programs: [errs]}
  - route: {program: errs, routes: {error: alerts}, default: app, escalate: {below: 0.9, to: review}}
`
	// Every fifth line is of a kind the program never saw: it is unsure.
	value := func(seq int) []byte {
		if seq%5 == 4 {
			return []byte(fmt.Sprintf("NOTICE maintenance window %d opened on rack %d", seq, seq%13))
		}
		return textValue(seq)
	}
	s := newSetup(t, pipeline, "", devbroker.Config{Topics: []string{"in:4", "alerts:4", "app:2", "dropped:1", "dlq:1", "review:2"}})
	// Which records escalate, and where each goes: the same programs,
	// in-process.
	env, err := runtime.OpenEnv("")
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()
	cfg, err := processor.LoadConfig(s.config)
	if err != nil {
		t.Fatal(err)
	}
	oracle, err := cfg.OpenPipeline(env)
	if err != nil {
		t.Fatal(err)
	}
	texts := make([][]byte, n)
	for i := range texts {
		texts[i] = value(i)
	}
	outs, err := oracle.ProcessTexts(context.Background(), texts)
	oracle.Close()
	if err != nil {
		t.Fatal(err)
	}
	want := map[int]bool{}
	for i, o := range outs {
		if len(o.Escalations) > 0 {
			want[i] = true
		}
	}
	if len(want) == 0 || len(want) == n {
		t.Fatalf("%d of %d escalate: the test wants some of each", len(want), n)
	}
	escalated := len(want)
	produce(t, client(t, s.broker.Addr()), 0, n, 4, value)
	r := startProcessor(t, s)
	c := consumeUntil(t, s.broker.Addr(), []string{"alerts", "app", "review"}, time.Minute, func(c *consumed) bool {
		return c.count("alerts")+c.count("app") >= n && c.count("review") >= escalated
	})
	time.Sleep(300 * time.Millisecond)
	st := r.p.Stats()
	r.shutdown(t)
	for _, topic := range []string{"alerts", "app"} {
		for _, rec := range c.byTopic[topic] {
			if seq := seqOf(t, rec); outs[seq].Destination != topic {
				t.Fatalf("record %d in %s, want %s", seq, topic, outs[seq].Destination)
			}
		}
	}
	for _, rec := range c.byTopic["review"] {
		seq := seqOf(t, rec)
		if !want[seq] || header(rec, processor.HeaderEscalatedBy) != "errs" || header(rec, processor.HeaderEscalationScore) == "" {
			t.Fatalf("review record %d: %v", seq, rec.Headers)
		}
		delete(want, seq)
	}
	if len(want) != 0 || c.count("alerts")+c.count("app") != n || c.count("review") != escalated || st.Escalated != int64(escalated) {
		t.Fatalf("%d escalations missing; %d routed, %d reviewed; stats %+v", len(want), c.count("alerts")+c.count("app"), c.count("review"), st)
	}
	if got := r.metric(t, "paw_escalations_total", map[string]string{"program": "errs"}); got != float64(escalated) {
		t.Fatalf("paw_escalations_total = %v, want %d", got, escalated)
	}
	t.Logf("%d of %d records escalated to review, every one also routed", escalated, n)
}
