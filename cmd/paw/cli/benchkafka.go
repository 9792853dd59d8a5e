package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/pawlogs/paw/internal/devbroker"
	"github.com/pawlogs/paw/runtime"
)

// KafkaBenchResult is one processor run of paw bench-kafka.
type KafkaBenchResult struct {
	Mode          string  `json:"mode"`
	Records       int     `json:"records"`
	RecordsPerSec float64 `json:"records_per_sec"`
	// RoundRecordsPerSec lists every round's RecordsPerSec; the result is
	// the median round.
	RoundRecordsPerSec []float64 `json:"round_records_per_sec,omitempty"`
	// WallRecordsPerSec counts from the processor's start to the commit of
	// the last record.
	WallRecordsPerSec float64 `json:"wall_records_per_sec"`
	Seconds           float64 `json:"seconds"`
	LatencyP50Ms      float64 `json:"latency_p50_ms"`
	LatencyP99Ms      float64 `json:"latency_p99_ms"`
	MaxUncommitted    int64   `json:"max_uncommitted"`
	Output            int64   `json:"output"`
	Audited           int64   `json:"audited"`
	Dropped           int64   `json:"dropped"`
	PeakRSSMiB        float64 `json:"peak_rss_mib"`
	TemplateHitPct    float64 `json:"template_hit_pct"`
	// CPU seconds used by the processor child and by this process (the
	// embedded broker, mostly) while the mode ran.
	ProcessorCPUSeconds float64 `json:"processor_cpu_seconds"`
	BrokerCPUSeconds    float64 `json:"broker_cpu_seconds"`
}

func tvSeconds(tv syscall.Timeval) float64 { return float64(tv.Sec) + float64(tv.Usec)/1e6 }

// benchModes are the pipelines compared: the same processor with no
// steps, with a filter that drops what it rejects, with the same filter
// sending rejected records to an audit topic (every record is produced, as
// in pass-through), and with the filter but no template cache.
// The +json modes read the same lines wrapped in JSON objects (input:
// log), to show what reading a field costs.
var benchModes = []struct{ name, steps, extra, topic string }{
	{"pass-through", "steps: []\n", "", "in"},
	{"filter", filterSteps, "", "in"},
	{"filter+audit", filterSteps, "audit_topic: audit\n", "in"},
	{"filter-nocache", filterSteps, "template_cache: -1\n", "in"},
	{"pass-through+json", "input: log\nsteps: []\n", "", "in-json"},
	{"filter+json", "input: log\n" + filterSteps, "", "in-json"},
}

// stepsFor fills a mode's steps with the program's name and positive label.
func stepsFor(steps string, m runtime.Manifest) string {
	if !strings.Contains(steps, "%") {
		return steps
	}
	return fmt.Sprintf(steps, m.Name, m.Positive)
}

const filterSteps = "steps:\n  - filter: {program: %[1]s, keep: [%[2]s]}\n"

// benchJob is one processor run.
type benchJob struct {
	self, dir, profDir, addr string
	name, steps, extra       string
	round                    int
	topic                    string
	partitions               int
	records                  int // records to wait for; live jobs learn it from feed
	// feed, when set, produces records while the processor runs and
	// returns how many it wrote.
	feed func(ctx context.Context) (int, error)
}

// pawBinary is the paw that bench-kafka runs as its processor: the one
// named, else paw next to the running binary (build/paw beside
// build/pawdev), else paw on $PATH.
func pawBinary(named string) (string, error) {
	if named != "" {
		return named, nil
	}
	if self, err := os.Executable(); err == nil {
		if sib := filepath.Join(filepath.Dir(self), "paw"); sib != self {
			if st, err := os.Stat(sib); err == nil && !st.IsDir() {
				return sib, nil
			}
		}
	}
	if p, err := exec.LookPath("paw"); err == nil {
		return p, nil
	}
	return "", errors.New("no paw binary to run as the processor: build it (make build) or name it with --paw")
}

func runBenchKafka(e *env, args []string) error {
	fs := newFlags(e, "bench-kafka")
	program := fs.String("program", "build/programs/real-error.paw", "the filter's program")
	records := fs.Int("records", 1_000_000, "backlog produced before each processor starts")
	partitions := fs.Int("partitions", 4, "input partitions")
	rounds := fs.Int("rounds", 3, "backlog runs per mode, interleaved; the median is reported")
	liveRate := fs.Int("live-rate", 50_000, "records/s for the live-traffic latency runs (0 skips them)")
	liveFor := fs.Duration("live-for", 5*time.Second, "how long live traffic runs")
	asJSON := fs.Bool("json", false, "print JSON")
	profDir := fs.String("cpuprofile-dir", "", "write each processor's CPU profile here")
	pawBin := fs.String("paw", "", "the paw binary whose `paw process` is measured (default: the paw next to this binary, then $PATH)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 || *records <= 0 || *partitions <= 0 || *liveRate < 0 || *rounds < 1 {
		return usagef("unexpected arguments, or a non-positive count")
	}
	self, err := pawBinary(*pawBin)
	if err != nil {
		return err
	}
	art, err := runtime.ReadArtifactFile(*program)
	if err != nil {
		return err
	}
	prog := art.Manifest
	dir, err := os.MkdirTemp("", "paw-bench-kafka-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	data, err := os.ReadFile(*program)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, prog.Name+".paw"), data, 0o644); err != nil {
		return err
	}
	topics := []string{fmt.Sprintf("in:%d", *partitions), fmt.Sprintf("in-json:%d", *partitions), "dlq:1"}
	for _, m := range benchModes {
		topics = append(topics, fmt.Sprintf("live-%s:%d", slug(m.name), *partitions))
	}
	b, err := devbroker.Start(devbroker.Config{Topics: topics})
	if err != nil {
		return err
	}
	defer b.Close()
	fmt.Fprintf(e.stderr, "producing %d records to an embedded broker ...\n", *records)
	lines := GenerateLogLines(10_000, 7)
	if err := produceBacklog(e.ctx, b.Addr(), "in", lines, *records); err != nil {
		return err
	}
	if err := produceBacklog(e.ctx, b.Addr(), "in-json", jsonRecords(lines), *records); err != nil {
		return err
	}

	var jobs []benchJob
	for r := 0; r < *rounds; r++ {
		for _, m := range benchModes {
			jobs = append(jobs, benchJob{name: m.name, round: r, steps: stepsFor(m.steps, prog), extra: m.extra, topic: m.topic, records: *records})
		}
	}
	if *liveRate > 0 {
		for _, m := range benchModes[:2] {
			topic := "live-" + slug(m.name)
			jobs = append(jobs, benchJob{name: m.name + " @live", steps: stepsFor(m.steps, prog), extra: m.extra, topic: topic,
				feed: func(ctx context.Context) (int, error) {
					return produceAtRate(ctx, b.Addr(), topic, lines, *liveRate, *liveFor)
				}})
		}
	}
	var runs []KafkaBenchResult
	for _, j := range jobs {
		j.self, j.dir, j.profDir, j.addr, j.partitions = self, dir, *profDir, b.Addr(), *partitions
		fmt.Fprintf(e.stderr, "running %s (round %d) ...\n", j.name, j.round+1)
		// Fresh output topics, so the broker's memory does not grow with
		// every run.
		if err := recreateTopics(e.ctx, b.Addr(), *partitions, "out", "audit"); err != nil {
			return err
		}
		var ru0, ru1 syscall.Rusage
		syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
		r, err := benchOne(e.ctx, j)
		if err != nil {
			return fmt.Errorf("%s: %w", j.name, err)
		}
		syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
		r.BrokerCPUSeconds = tvSeconds(ru1.Utime) + tvSeconds(ru1.Stime) - tvSeconds(ru0.Utime) - tvSeconds(ru0.Stime)
		runs = append(runs, r)
	}
	results := medians(runs)
	if *asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(results)
	}
	fmt.Fprintf(e.stdout, "backlog %d records (mean %.0f bytes), %d partitions, program %s, embedded broker, median of %d rounds; live runs at %d records/s for %v\n",
		*records, meanLen(lines), *partitions, prog.Name, *rounds, *liveRate, *liveFor)
	fmt.Fprintf(e.stdout, "%-20s %10s %-22s %8s %8s %15s %10s %10s %14s\n", "mode", "records/s", "(all rounds)", "p50 ms", "p99 ms", "max uncommitted", "peak RSS", "cache hits", "CPU paw/broker")
	for _, r := range results {
		fmt.Fprintf(e.stdout, "%-20s %10.0f %-22s %8.1f %8.1f %15d %6.0f MiB %9.1f%% %6.2fs/%5.2fs\n", r.Mode, r.RecordsPerSec, roundList(r.RoundRecordsPerSec), r.LatencyP50Ms, r.LatencyP99Ms, r.MaxUncommitted, r.PeakRSSMiB, r.TemplateHitPct, r.ProcessorCPUSeconds, r.BrokerCPUSeconds)
	}
	rate := map[string]float64{}
	for _, r := range results {
		rate[r.Mode] = r.RecordsPerSec
	}
	for _, m := range benchModes[1:] {
		base := "pass-through"
		if m.topic == "in-json" {
			base = strings.TrimSuffix(m.name, "+json") // the same mode on text records
		}
		fmt.Fprintf(e.stdout, "%s / %s: %.0f%%\n", m.name, base, 100*rate[m.name]/rate[base])
	}
	fmt.Fprintf(e.stdout, "filter+json / pass-through+json: %.0f%%\n", 100*rate["filter+json"]/rate["pass-through+json"])
	return nil
}

// jsonRecords wraps lines as the JSON records a log shipper sends: the
// line in "log", beside the fields a Kubernetes record carries.
func jsonRecords(lines [][]byte) [][]byte {
	out := make([][]byte, len(lines))
	for i, l := range lines {
		text, _ := json.Marshal(string(l))
		out[i] = fmt.Appendf(nil, `{"log":%s,"stream":"stdout","time":"2026-12-01T10:00:00.%09dZ","kubernetes":{"pod":"api-%d","namespace":"shop","labels":{"app":"orders"}}}`, text, i, i%3)
	}
	return out
}

// medians keeps, per mode in first-seen order, the run with the median
// throughput, and lists every run's throughput on it.
func medians(runs []KafkaBenchResult) []KafkaBenchResult {
	var order []string
	by := map[string][]KafkaBenchResult{}
	for _, r := range runs {
		if _, ok := by[r.Mode]; !ok {
			order = append(order, r.Mode)
		}
		by[r.Mode] = append(by[r.Mode], r)
	}
	var out []KafkaBenchResult
	for _, m := range order {
		rs := by[m]
		var all []float64
		for _, r := range rs {
			all = append(all, r.RecordsPerSec)
		}
		sort.Slice(rs, func(i, j int) bool { return rs[i].RecordsPerSec < rs[j].RecordsPerSec })
		med := rs[len(rs)/2]
		if len(all) > 1 {
			med.RoundRecordsPerSec = all
		}
		out = append(out, med)
	}
	return out
}

func roundList(v []float64) string {
	var parts []string
	for _, x := range v {
		parts = append(parts, fmt.Sprintf("%.0fk", x/1000))
	}
	return strings.Join(parts, " ")
}

// recreateTopics deletes and creates topics; a missing topic is fine.
func recreateTopics(ctx context.Context, addr string, partitions int, topics ...string) error {
	client := &kafka.Client{Addr: kafka.TCP(addr), Timeout: 10 * time.Second}
	if _, err := client.DeleteTopics(ctx, &kafka.DeleteTopicsRequest{Topics: topics}); err != nil {
		return fmt.Errorf("delete topics: %w", err)
	}
	var cfgs []kafka.TopicConfig
	for _, t := range topics {
		cfgs = append(cfgs, kafka.TopicConfig{Topic: t, NumPartitions: partitions, ReplicationFactor: 1})
	}
	for attempt := 0; ; attempt++ {
		res, err := client.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: cfgs})
		if err != nil {
			return fmt.Errorf("create topics: %w", err)
		}
		var errs []error
		for t, e := range res.Errors {
			if e != nil {
				errs = append(errs, fmt.Errorf("%s: %w", t, e))
			}
		}
		if len(errs) == 0 {
			return nil
		}
		if attempt == 20 { // deletion may still be in progress
			return fmt.Errorf("create topics: %w", errors.Join(errs...))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func meanLen(lines [][]byte) float64 {
	n := 0
	for _, l := range lines {
		n += len(l)
	}
	return float64(n) / float64(len(lines))
}

func slug(s string) string { return strings.ReplaceAll(s, "+", "-") }

func benchWriter(addr, topic string) *kafka.Writer {
	return &kafka.Writer{Addr: kafka.TCP(addr), Topic: topic, BatchSize: 5000, BatchTimeout: time.Millisecond,
		RequiredAcks: kafka.RequireAll, Balancer: &kafka.RoundRobin{}}
}

// writeCycling writes n records, lines[from], lines[from+1], ... cycling
// over lines, in chunks.
func writeCycling(ctx context.Context, w *kafka.Writer, lines [][]byte, from, n int) error {
	const chunk = 20_000
	msgs := make([]kafka.Message, 0, min(n, chunk))
	for i := 0; i < n; i++ {
		msgs = append(msgs, kafka.Message{Value: lines[(from+i)%len(lines)]})
		if len(msgs) == chunk || i == n-1 {
			if err := w.WriteMessages(ctx, msgs...); err != nil {
				return fmt.Errorf("produce to %s: %w", w.Topic, err)
			}
			msgs = msgs[:0]
		}
	}
	return nil
}

// produceBacklog writes n records cycling over lines, round-robin over
// partitions.
func produceBacklog(ctx context.Context, addr, topic string, lines [][]byte, n int) error {
	w := benchWriter(addr, topic)
	defer w.Close()
	return writeCycling(ctx, w, lines, 0, n)
}

// produceAtRate writes rate records/s for d, in 10 ms ticks, through one
// writer, and returns how many it wrote.
func produceAtRate(ctx context.Context, addr, topic string, lines [][]byte, rate int, d time.Duration) (int, error) {
	w := benchWriter(addr, topic)
	defer w.Close()
	per := max(1, rate/100)
	ticks := int(d / (10 * time.Millisecond))
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	n := 0
	for i := 0; i < ticks; i++ {
		select {
		case <-ctx.Done():
			return n, ctx.Err()
		case <-t.C:
		}
		if err := writeCycling(ctx, w, lines, n, per); err != nil {
			return n, err
		}
		n += per
	}
	return n, nil
}

// benchOne runs `paw process` as a child with its own consumer group, and
// stops it once the group has committed every record.
func benchOne(ctx context.Context, j benchJob) (KafkaBenchResult, error) {
	res := KafkaBenchResult{Mode: j.name, Records: j.records}
	name := fmt.Sprintf("%s-%d", slug(strings.ReplaceAll(j.name, " @", "-")), j.round)
	pipeline := filepath.Join(j.dir, "pipeline-"+name+".yaml")
	if err := os.WriteFile(pipeline, []byte("programs_dir: .\n"+j.steps), 0o644); err != nil {
		return res, err
	}
	config := filepath.Join(j.dir, "processor-"+name+".yaml")
	cfg := fmt.Sprintf("brokers: [%s]\ngroup_id: bench-%s\ntopics: [%s]\npipeline: %s\noutput_topic: out\ndlq_topic: dlq\nreload: false\n%s",
		j.addr, name, j.topic, filepath.Base(pipeline), j.extra)
	if err := os.WriteFile(config, []byte(cfg), 0o644); err != nil {
		return res, err
	}
	statsFile := filepath.Join(j.dir, "stats-"+name+".json")
	args := []string{"process", "--config", config, "--stats", statsFile, "--log-level", "warn"}
	if j.profDir != "" {
		args = append(args, "--cpuprofile", filepath.Join(j.profDir, name+".pprof"))
	}
	cmd := exec.CommandContext(ctx, j.self, args...)
	cmd.Stderr = os.Stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return res, err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	if j.feed != nil {
		n, err := j.feed(ctx)
		if err != nil {
			cmd.Process.Kill()
			return res, err
		}
		j.records, res.Records = n, n
	}
	client := &kafka.Client{Addr: kafka.TCP(j.addr), Timeout: 5 * time.Second}
	parts := make([]int, j.partitions)
	for i := range parts {
		parts[i] = i
	}
	for done := false; !done; {
		select {
		case err := <-exited:
			return res, fmt.Errorf("processor exited early: %v", err)
		case <-ctx.Done():
			cmd.Process.Kill()
			return res, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		resp, err := client.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: "bench-" + name, Topics: map[string][]int{j.topic: parts}})
		if err != nil {
			continue
		}
		var committed int64
		for _, p := range resp.Topics[j.topic] {
			committed += max(0, p.CommittedOffset)
		}
		done = committed >= int64(j.records)
	}
	elapsed := time.Since(start)
	cmd.Process.Signal(syscall.SIGTERM)
	if err := <-exited; err != nil {
		return res, fmt.Errorf("processor exit: %w", err)
	}
	data, err := os.ReadFile(statsFile)
	if err != nil {
		return res, err
	}
	var st processStats
	if err := json.Unmarshal(data, &st); err != nil {
		return res, err
	}
	// Throughput is over the processing span, first fetch to last
	// acknowledgement: the wall time to the final commit adds start-up and
	// up to one commit interval, noise at this scale.
	res.Seconds = elapsed.Seconds()
	if span := st.LastAck.Sub(st.FirstFetch); span > 0 {
		res.RecordsPerSec = float64(j.records) / span.Seconds()
	}
	res.WallRecordsPerSec = float64(j.records) / elapsed.Seconds()
	res.LatencyP50Ms = float64(st.LatencyP50) / 1e6
	res.LatencyP99Ms = float64(st.LatencyP99) / 1e6
	res.MaxUncommitted = st.MaxUncommitted
	res.Output, res.Audited, res.Dropped = st.Output, st.Audited, st.Dropped
	if st.TemplateLookups > 0 {
		res.TemplateHitPct = 100 * float64(st.TemplateHits) / float64(st.TemplateLookups)
	}
	res.PeakRSSMiB = float64(st.PeakRSSBytes) / (1 << 20)
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		res.ProcessorCPUSeconds = tvSeconds(ru.Utime) + tvSeconds(ru.Stime)
	}
	return res, nil
}
