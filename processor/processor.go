// Package processor is paw's Kafka stream processor: a consumer group that
// runs records through a runtime pipeline and produces them to the topics
// the pipeline chooses, committing input offsets only once every output
// derived from them is acknowledged (at-least-once).
package processor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/pawlogs/paw/internal/dataplane"
	"github.com/pawlogs/paw/internal/lifecycle"
	"github.com/pawlogs/paw/internal/yamlconf"
	"github.com/pawlogs/paw/metrics"
	"github.com/pawlogs/paw/runtime"
)

// Options are the processor's collaborators. Zero values take the defaults.
type Options struct {
	// Logger. Default: slog.Default().
	Logger *slog.Logger
	// Registerer receives the Prometheus collectors. Default: none.
	Registerer prometheus.Registerer
	// Store, when set and no report URL is configured, receives the
	// processor's own metrics reports, and Fleet records it; the
	// processor then also checks its programs' drift (paw_drift).
	Store *metrics.Store
	Fleet *metrics.Fleet
}

// Processor consumes, classifies and routes records. Run it once.
type Processor struct {
	cfg      *Config
	pl       *runtime.Pipeline
	conn     connection
	log      *slog.Logger
	m        *collectors
	lat      runtime.Latencies
	jsonRecs bool     // tags go into JSON fields rather than headers
	outputs  []string // every topic the processor may produce to
	review   []string // escalation destinations
	stats    counters
	owned    *runtime.Env // set by Open, released by Close with the pipeline
	lc       *lifecycle.Lifecycle
	drift    *prometheus.GaugeVec // standalone: set when store is
	store    *metrics.Store
	fleet    *metrics.Fleet
}

// counters are totals since the processor started.
type counters struct {
	fetched, output, audited, deadLettered, dropped, rewinds, commits, batches, escalated atomic.Int64
	produceRetries                                                                        atomic.Int64
	backlog, uncommitted, maxUncommitted                                                  atomic.Int64
	firstFetch, lastAck                                                                   atomic.Int64 // unix ns
}

// Stats are the processor's totals since it started.
type Stats struct {
	Fetched      int64 // input records fetched (refetches after a rewind count again)
	Output       int64 // records acknowledged on an output topic
	Audited      int64 // dropped records acknowledged on the audit topic
	DeadLettered int64 // records acknowledged on the DLQ
	Dropped      int64 // dropped records with no audit topic
	Escalated    int64 // review copies acknowledged on escalation topics
	Rewinds      int64 // sessions restarted from the last commit
	// ProduceRetries are produce requests the writer sent again.
	ProduceRetries int64
	Commits        int64 // successful offset commits
	// At the last commit, summed over partitions: records between the
	// commit and the high-water mark (Backlog), and between the commit and
	// the last fetch (Uncommitted: what a crash would replay).
	Backlog, Uncommitted int64
	MaxUncommitted       int64 // the largest Uncommitted seen at any commit
	// Template cache: lookups and hits (runtime.BatchCounts).
	TemplateLookups, TemplateHits int64
	// FirstFetch and LastAck bound the processing: from the first record
	// fetched to the last output acknowledged (or dropped record done).
	FirstFetch, LastAck time.Time
	LatencyP50          time.Duration
	LatencyP99          time.Duration // fetch to output acknowledgement
}

// New prepares a processor around an open pipeline; the caller keeps
// ownership of the pipeline and closes it after Run returns.
func New(cfg *Config, pl *runtime.Pipeline, opts Options) (*Processor, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	pc := pl.Config()
	dests := pc.Destinations()
	if len(dests) == 0 && cfg.OutputTopic == "" {
		return nil, fmt.Errorf("%s: output_topic is required: the pipeline has no route step", cfg.file)
	}
	for _, d := range append(slices.Clone(dests), pc.EscalationDestinations()...) {
		if slices.Contains(cfg.Topics, d) {
			return nil, fmt.Errorf("%s: the pipeline routes to %q, an input topic: the processor would read its own output", cfg.file, d)
		}
	}
	conn, err := cfg.connection()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cfg.file, err)
	}
	p := &Processor{
		cfg: cfg, pl: pl, conn: conn, log: opts.Logger, m: newCollectors(opts.Registerer, pl),
		jsonRecs: !pl.Input().WholeLine(), store: opts.Store, fleet: opts.Fleet,
		lc: lifecycle.New("processor", opts.Logger, "brokers", cfg.Brokers, "group", cfg.GroupID, "topics", cfg.Topics, "programs", shortIDs(pl.ProgramIDs())),
	}
	if p.store != nil {
		p.drift = metrics.NewDriftGauge(opts.Registerer)
	}
	seen := map[string]bool{}
	review := pc.EscalationDestinations()
	p.review = review
	for _, t := range append(append(append([]string{cfg.OutputTopic, cfg.AuditTopic, cfg.DLQTopic}, dests...), review...), cfg.Topics...) {
		if t != "" && !seen[t] {
			seen[t] = true
			p.outputs = append(p.outputs, t)
		}
	}
	for name, id := range pl.ProgramIDs() {
		p.m.programInfo.WithLabelValues(name, id).Set(1)
	}
	return p, nil
}

// ReadyHandler serves GET /readyz: 200 once the brokers have answered,
// 503 before that and from the drain on.
func (p *Processor) ReadyHandler() http.Handler { return p.lc.ReadyHandler() }

// Stats returns totals since the processor started.
func (p *Processor) Stats() Stats {
	bc := p.pl.Stats()
	return Stats{
		Fetched: p.stats.fetched.Load(), Output: p.stats.output.Load(), Audited: p.stats.audited.Load(),
		DeadLettered: p.stats.deadLettered.Load(), Dropped: p.stats.dropped.Load(), Rewinds: p.stats.rewinds.Load(), Escalated: p.stats.escalated.Load(), ProduceRetries: p.stats.produceRetries.Load(),
		Commits: p.stats.commits.Load(), Backlog: p.stats.backlog.Load(), Uncommitted: p.stats.uncommitted.Load(),
		MaxUncommitted: p.stats.maxUncommitted.Load(),
		LatencyP50:     p.lat.Quantile(0.50), LatencyP99: p.lat.Quantile(0.99),
		TemplateLookups: bc.Lookups, TemplateHits: bc.Hits,
		FirstFetch: unixNano(p.stats.firstFetch.Load()), LastAck: unixNano(p.stats.lastAck.Load()),
	}
}

func unixNano(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}

// Run consumes until ctx ends, then stops fetching, drains the records in
// flight, commits and returns. A broker or produce failure ends the current
// session: the processor rewinds to its last commit and starts a new one
// with backoff, so records are repeated, never lost.
func (p *Processor) Run(ctx context.Context) (err error) {
	lc := p.lc
	defer func() { err = lc.Stop(err) }()
	defer context.AfterFunc(ctx, func() { lc.Drain(context.Cause(ctx).Error()) })()
	if *p.cfg.Reload {
		lc.Feed(ctx, func(ctx context.Context) {
			err := runtime.WatchPrograms(ctx, p.pl, runtime.WatchOptions{Logger: p.log, OnReload: p.reloaded, PollInterval: p.cfg.ProgramsPoll})
			if err != nil {
				p.log.Error("program reload is off", "err", err)
			}
		})
	}
	if p.drift != nil {
		lc.Feed(ctx, func(ctx context.Context) {
			metrics.WatchDrift(ctx, p.store, metrics.DriftWatch{Programs: p.driftTargets, Gauge: p.drift, Logger: p.log})
		})
		// Standalone, the processor's pattern board is its own to keep.
		lc.Feed(ctx, func(ctx context.Context) { p.store.SavePatternsEvery(ctx, time.Minute, p.log) })
	}
	if rc := p.cfg.Report; rc.URL != "" || p.store != nil {
		// Built before records flow: dataplane.Patterns starts the
		// pattern sampling the reports carry.
		rcfg := metrics.ReporterConfig{
			URL: rc.URL, Token: os.Getenv(rc.TokenEnv), Name: rc.Name, Kind: "processor", Interval: rc.Interval,
			Programs: p.pl.ProgramIDs, Totals: p.totals, Logger: p.log, Patterns: dataplane.Patterns(p.pl),
		}
		if rc.URL != "" { // the sidecar keeps the answer logs
			rcfg.Answers = dataplane.TeacherAnswers(p.pl)
		}
		if rc.URL == "" { // standalone: keep our own metrics
			rcfg.Send = func(_ context.Context, r *metrics.Report) error {
				if p.fleet != nil {
					p.fleet.Seen(r)
				}
				return p.store.AddReport(r)
			}
		}
		// Reporting stops after the drain, so the last report has the
		// final counts.
		lc.Watch(ctx, func(ctx context.Context) { metrics.RunReporter(ctx, rcfg) })
	}
	if dir := p.answersDir(); dir != "" {
		// Like the reporter, stopped after the drain: the last answers
		// are kept too.
		lc.Watch(ctx, func(ctx context.Context) { p.keepAnswers(ctx, dir) })
	}
	p.log.Info("settings", yamlconf.Settings(p.cfg)...)
	backoff := 500 * time.Millisecond
	for {
		start := time.Now()
		err := p.session(ctx)
		if ctx.Err() != nil {
			// Shutting down: what the cancellation itself caused is not a
			// failure; outputs left unacknowledged past the timeout are.
			if errors.Is(err, errDrainTimeout) {
				p.log.Error("not every output was acknowledged before the shutdown timeout; those records will be read again", "err", err)
				return err
			}
			if err != nil {
				p.log.Info("the last session ended with the shutdown", "err", err)
			}
			return nil
		}
		p.stats.rewinds.Add(1)
		p.m.rewinds.Inc()
		if time.Since(start) > time.Minute {
			backoff = 500 * time.Millisecond
		}
		p.log.Warn("session failed; rewinding to the last committed offsets", "err", err, "retry_in", backoff)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 10*time.Second)
	}
}

// totals are the processor's counts for metrics reports.
func (p *Processor) totals() metrics.Totals {
	t := dataplane.Totals(p.pl, p.stats.fetched.Load(), p.stats.deadLettered.Load(), p.stats.rewinds.Load()+p.stats.produceRetries.Load(), p.stats.batches.Load())
	t.LatencyP50Ms, t.LatencyP99Ms = float64(p.lat.Quantile(0.5))/1e6, float64(p.lat.Quantile(0.99))/1e6
	return t
}

func (p *Processor) reloaded(program, id string, err error) {
	if err != nil {
		p.m.reloads.WithLabelValues(program, "rejected").Inc()
		return
	}
	p.m.reloads.WithLabelValues(program, "ok").Inc()
	p.m.programInfo.DeletePartialMatch(prometheus.Labels{"program": program})
	p.m.programInfo.WithLabelValues(program, id).Set(1)
}

func shortIDs(ids map[string]string) map[string]string {
	out := make(map[string]string, len(ids))
	for k, v := range ids {
		out[k] = runtime.ShortID(v)
	}
	return out
}

// fetched is a record with the time it left the reader.
type fetched struct {
	msg kafka.Message
	at  time.Time
}

// session is one consumer-group membership: it ends on shutdown (nil
// error) or on the first failure the processor cannot ride out.
func (p *Processor) session(ctx context.Context) error {
	if err := p.waitForBrokers(ctx); err != nil {
		return err
	}
	tr := newTracker(p.cfg.Producer.MaxInFlight, p.observe)
	w := p.newWriter(tr)
	r := kafka.NewReader(p.readerConfig())
	p.lc.Ready() // the first session: the brokers answered

	// Records already being processed finish even after ctx ends, within
	// the shutdown timeout.
	drainCtx, cancelDrain := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelDrain()
	stopTimer := context.AfterFunc(ctx, func() {
		t := time.AfterFunc(p.cfg.ShutdownTimeout, cancelDrain)
		context.AfterFunc(drainCtx, func() { t.Stop() })
	})
	defer stopTimer()

	fetchCtx, stopFetch := context.WithCancel(ctx)
	msgs := make(chan fetched, p.cfg.Batch.MaxRecords)
	fetchErr := make(chan error, 1)
	go func() { fetchErr <- p.fetch(fetchCtx, r, msgs) }()

	commitCtx, stopCommits := context.WithCancel(drainCtx)
	commitsDone := make(chan struct{})
	go func() {
		defer close(commitsDone)
		p.commitLoop(commitCtx, r, tr, w)
	}()

	loopErr := p.loop(ctx, drainCtx, msgs, tr, w)
	stopFetch()
	for range msgs { // unprocessed records are not committed: they are read again
	}
	ferr := <-fetchErr
	drainErr := closeWriter(drainCtx, w)
	stopCommits()
	<-commitsDone
	p.countRetries(w)
	commitErr := p.commit(drainCtx, r, tr)
	if n := tr.pending(); n > 0 {
		p.log.Info("records left uncommitted; they will be read again", "records", n)
	}
	if err := r.Close(); err != nil {
		p.log.Warn("close reader", "err", err)
	}
	return errors.Join(loopErr, ferr, tr.err(), drainErr, commitErr)
}

// errDrainTimeout ends a shutdown whose outputs were not all acknowledged
// within shutdown_timeout.
var errDrainTimeout = errors.New("drain: outputs not acknowledged within the shutdown timeout")

// closeWriter flushes the writer and waits for its acknowledgements,
// giving up when ctx ends.
func closeWriter(ctx context.Context, w *kafka.Writer) error {
	done := make(chan error, 1)
	go func() { done <- w.Close() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return errDrainTimeout
	}
}

// fetch moves records from the reader to the batching loop until ctx ends.
func (p *Processor) fetch(ctx context.Context, r *kafka.Reader, out chan<- fetched) error {
	defer close(out)
	for {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("fetch: %w", err)
		}
		select {
		case out <- fetched{m, time.Now()}:
		case <-ctx.Done():
			return nil
		}
	}
}

// loop batches fetched records and hands each batch to the writer. It
// returns nil when ctx ends, or the error that ends the session.
func (p *Processor) loop(ctx, drainCtx context.Context, msgs <-chan fetched, tr *tracker, w *kafka.Writer) error {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		batch := make([]fetched, 0, p.cfg.Batch.MaxRecords)
		select {
		case <-ctx.Done():
			return nil
		case <-tr.failedCh:
			return tr.err()
		case f, ok := <-msgs:
			if !ok {
				return nil
			}
			batch = append(batch, f)
		}
		timer.Reset(p.cfg.Batch.MaxWait)
	fill:
		for len(batch) < cap(batch) {
			select {
			case f, ok := <-msgs:
				if !ok {
					break fill
				}
				batch = append(batch, f)
			case <-timer.C:
				break fill
			}
		}
		if err := p.handle(drainCtx, batch, tr, w); err != nil {
			return err
		}
	}
}

// handle runs one batch through the pipeline and hands its outputs to the
// writer.
func (p *Processor) handle(ctx context.Context, batch []fetched, tr *tracker, w *kafka.Writer) error {
	n := len(batch)
	if p.stats.fetched.Add(int64(n)) == int64(n) {
		p.stats.firstFetch.Store(batch[0].at.UnixNano())
	}
	p.m.fetched.Add(float64(n))
	p.m.batchSize.Observe(float64(n))
	p.stats.batches.Add(1)
	msgs := make([]kafka.Message, n)
	times := make([]time.Time, n)
	for i := range batch {
		msgs[i], times[i] = batch[i].msg, batch[i].at
	}
	entries := make([]entry, n)
	tr.add(msgs, entries, times)

	// The pipeline sets oversized records aside unread (max_record_bytes)
	// with the ones it cannot read: one pass, and outs line up with msgs.
	values := make([][]byte, n)
	for i := range msgs {
		values[i] = msgs[i].Value
	}
	outs, err := p.pl.Process(ctx, values)
	if err != nil {
		return fmt.Errorf("pipeline: %w", err)
	}
	out := make([]kafka.Message, 0, n)
	var silent []*entry
	for i := range msgs {
		m, o := &msgs[i], &outs[i]
		before := len(out)
		if msg, ok := p.output(m, o); ok {
			out = append(out, msg)
		}
		out = p.escalations(out, m, o)
		n := len(out) - before
		if n == 0 {
			silent = append(silent, &entries[i])
			continue
		}
		entries[i].pending = n
		for k := before; k < len(out); k++ {
			out[k].WriterData = &entries[i]
		}
	}
	tr.markDone(silent...)
	p.stats.dropped.Add(int64(len(silent)))
	if len(out) == 0 {
		return nil
	}
	if err := tr.reserve(ctx, len(out)); err != nil {
		return err
	}
	if err := w.WriteMessages(ctx, out...); err != nil {
		tr.unreserve(len(out))
		return fmt.Errorf("produce: %w", err)
	}
	return nil
}

// output builds the message a record's outcome produces; ok is false when
// it produces none (dropped, no audit topic).
func (p *Processor) output(m *kafka.Message, o *runtime.Outcome) (kafka.Message, bool) {
	out := kafka.Message{Key: m.Key, Value: m.Value, Time: m.Time}
	switch {
	case o.Err != nil:
		reason := reasonOf(o.Err)
		p.m.deadLetters.WithLabelValues(reason).Inc()
		out.Topic = p.cfg.DLQTopic
		hs := append(sourceHeaders(m),
			kafka.Header{Key: HeaderDLQReason, Value: []byte(reason)},
			kafka.Header{Key: HeaderDLQError, Value: []byte(o.Err.Error())})
		if limit := p.cfg.Producer.MaxMessageBytes - tagRoom; len(out.Value) > limit {
			// The writer cannot carry it with headers added: keep the head
			// and say how long it was.
			out.Value = out.Value[:limit]
			hs = append(hs, kafka.Header{Key: HeaderOriginalBytes, Value: strconv.AppendInt(nil, int64(len(m.Value)), 10)})
		}
		out.Headers = withHeaders(m.Headers, hs)
		return out, true
	case !o.Keep:
		p.m.dropped.WithLabelValues(o.DroppedBy).Inc()
		if p.cfg.AuditTopic == "" {
			return out, false
		}
		out.Topic = p.cfg.AuditTopic
		hs := append(sourceHeaders(m), kafka.Header{Key: HeaderDroppedBy, Value: []byte(o.DroppedBy)})
		out.Headers = withHeaders(m.Headers, append(hs, tagHeaders(o.Tags)...))
		return out, true
	}
	out.Topic = o.Destination
	if out.Topic == "" {
		out.Topic = p.cfg.OutputTopic
	}
	out.Headers = m.Headers
	if len(o.Tags) > 0 {
		if p.jsonRecs {
			v, err := tagJSON(m.Value, p.cfg.TagsField, o.Tags)
			if err != nil { // the pipeline parsed it, so this is a defect; keep the record
				o.Err = err
				return p.output(m, o)
			}
			out.Value = v
		} else {
			out.Headers = withHeaders(m.Headers, tagHeaders(o.Tags))
		}
	}
	return out, true
}

// escalations appends a review copy of the record for each of its
// low-confidence decisions (at most one per destination).
func (p *Processor) escalations(out []kafka.Message, m *kafka.Message, o *runtime.Outcome) []kafka.Message {
	for _, e := range o.Reviews() {
		hs := append(sourceHeaders(m),
			kafka.Header{Key: HeaderEscalatedBy, Value: []byte(e.Program)},
			kafka.Header{Key: HeaderEscalationLabel, Value: []byte(e.Label)},
			kafka.Header{Key: HeaderEscalationScore, Value: strconv.AppendFloat(nil, float64(e.Score), 'f', 4, 32)})
		out = append(out, kafka.Message{Topic: e.To, Key: m.Key, Value: m.Value, Time: m.Time, Headers: withHeaders(m.Headers, hs)})
	}
	return out
}

// observe records one record's fetch-to-ack latency.
func (p *Processor) observe(d time.Duration) {
	p.stats.lastAck.Store(time.Now().UnixNano())
	p.lat.Observe(d)
	p.m.latency.Observe(d.Seconds())
}

// commitLoop commits acknowledged offsets every commit interval.
func (p *Processor) commitLoop(ctx context.Context, r *kafka.Reader, tr *tracker, w *kafka.Writer) {
	lifecycle.Every(ctx, p.cfg.CommitInterval, func() {
		p.countRetries(w)
		if err := p.commit(ctx, r, tr); err != nil && ctx.Err() == nil {
			p.log.Warn("commit failed; will retry", "err", err)
		}
	})
}

// countRetries adds the writer's retries since the last call (kafka-go's
// Stats resets its counters on every call).
func (p *Processor) countRetries(w *kafka.Writer) {
	if n := w.Stats().Retries; n > 0 {
		p.stats.produceRetries.Add(n)
		p.m.produceRetries.Add(float64(n))
	}
}

func (p *Processor) commit(ctx context.Context, r *kafka.Reader, tr *tracker) error {
	cs := tr.commits()
	if len(cs) == 0 {
		return nil
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := r.CommitMessages(cctx, cs...); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	tr.committed(cs)
	backlog, uncommitted := tr.lag()
	p.stats.commits.Add(1)
	p.stats.backlog.Store(backlog)
	p.stats.uncommitted.Store(uncommitted)
	if uncommitted > p.stats.maxUncommitted.Load() {
		p.stats.maxUncommitted.Store(uncommitted) // only the commit loop writes it
	}
	p.m.backlog.Set(float64(backlog))
	p.m.uncommitted.Set(float64(uncommitted))
	return nil
}
