package plugin

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/pawlogs/paw/internal/dataplane"
	"github.com/pawlogs/paw/internal/lifecycle"
	"github.com/pawlogs/paw/internal/yamlconf"
	"github.com/pawlogs/paw/metrics"
	"github.com/pawlogs/paw/runtime"
)

// Status is a flush result, with Fluent Bit's values.
type Status int

const (
	StatusError Status = 0 // FLB_ERROR: never returned for bad records
	StatusOK    Status = 1 // FLB_OK
	StatusRetry Status = 2 // FLB_RETRY: the destination failed; Fluent Bit re-sends the chunk
)

// Options are an instance's collaborators.
type Options struct {
	// Stdout receives the stdout output. Default: discard.
	Stdout io.Writer
	// Logger. Default: slog.Default().
	Logger *slog.Logger
}

// Instance is one out_paw section of a Fluent Bit configuration.
type Instance struct {
	cfg  Config
	log  *slog.Logger
	env  *runtime.Env
	pl   *runtime.Pipeline
	out  output
	dead output // nil: poison records pass through untagged
	// review outputs take escalated records, by destination (file://PATH).
	review map[string]output
	field  []string
	lc     *lifecycle.Lifecycle
	stats  counters
	// flushes holds the working memory of finished flushes (*flush).
	flushes sync.Pool
}

type counters struct {
	chunks, records, tagged, dropped, poison, deadLettered, retries, badChunks, escalated atomic.Int64
}

// Stats are an instance's totals.
type Stats struct {
	Chunks       int64 // chunks flushed with FLB_OK
	Records      int64 // records decoded (of chunks flushed with FLB_OK)
	Tagged       int64 // records the pipeline kept, sent with their tags
	Dropped      int64 // records a filter dropped
	Poison       int64 // records without the field or with a non-string one
	DeadLettered int64 // poison records written to dead_letter
	Retries      int64 // flushes answered FLB_RETRY
	BadChunks    int64 // chunks that were not valid Fluent Bit msgpack
	// Every count but Retries is of chunks flushed with FLB_OK: a chunk
	// retried twice and then delivered counts once.
	Escalated int64 // records written to review destinations
}

const (
	// openTimeout bounds fetching the programs at start (from a sidecar,
	// say): Fluent Bit waits for FLBPluginInit.
	openTimeout = time.Minute
	// sessionsPerProgram lets two of Fluent Bit's output workers run a
	// program at once.
	sessionsPerProgram = 2
)

// New loads ONNX Runtime, the pipeline and its programs, opens the outputs
// and starts watching programs_dir for new programs.
func New(cfg Config, opts Options) (*Instance, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	opts.Logger = opts.Logger.With("instance", cfg.Name())
	if opts.Stdout == nil {
		opts.Stdout = io.Discard
	}
	pc, err := runtime.LoadPipelineConfig(cfg.Pipeline)
	if err != nil {
		return nil, err
	}
	if cfg.ProgramsDir != "" {
		abs, err := filepath.Abs(cfg.ProgramsDir)
		if err != nil {
			return nil, fmt.Errorf("property programs_dir: %w", err)
		}
		pc.ProgramsDir = abs
	}
	// The plugin reads the text itself, from the field property or the
	// pipeline's input, so the pipeline gets texts.
	if cfg.Field, err = fieldFor(cfg, pc.Input); err != nil {
		return nil, err
	}
	pc.Input = ""
	dev, err := runtime.ParseDevice(cfg.Device)
	if err != nil {
		return nil, err
	}
	env, err := runtime.OpenEnv(cfg.ORTLib)
	if err != nil {
		return nil, err
	}
	in := &Instance{cfg: cfg, log: opts.Logger, env: env, field: strings.Split(cfg.Field, "."),
		lc: lifecycle.New("out_paw", opts.Logger, "pipeline", cfg.Pipeline, "output", cfg.Output)}
	// A flush brings a whole chunk: the batcher splits it for its workers
	// and never waits for more (it held each chunk's last partial batch
	// for 2 ms).
	bc := runtime.BatcherConfig{MaxBatch: cfg.MaxBatch, MaxDelay: -1, TemplateCache: cfg.TemplateCache}
	src := runtime.SourceFor(pc.Dir(), cfg.ProgramsURL, cfg.ProgramsToken)
	octx, cancel := context.WithTimeout(context.Background(), openTimeout)
	defer cancel()
	in.pl, err = runtime.OpenPipelineFrom(octx, env, pc, runtime.PipelineOptions{
		Program: runtime.ProgramOptions{Device: dev, MaxBatch: cfg.MaxBatch, Sessions: sessionsPerProgram},
		Batcher: bc,
	}, src)
	if err != nil {
		env.Close()
		return nil, in.lc.Stop(err)
	}
	if err := in.openOutputs(cfg, pc, opts.Stdout); err != nil {
		in.closeOutputs()
		in.closeRuntime()
		return nil, in.lc.Stop(err)
	}
	ctx := context.Background()
	in.lc.Feed(ctx, func(ctx context.Context) {
		if err := runtime.WatchPrograms(ctx, in.pl, runtime.WatchOptions{Logger: in.log, PollInterval: cfg.ProgramsPoll}); err != nil {
			in.log.Error("program reload is off", "err", err)
		}
	})
	if cfg.ReportURL != "" {
		// Built before records flow: dataplane.Patterns starts the
		// pattern sampling the reports carry.
		rcfg := metrics.ReporterConfig{
			URL: cfg.ReportURL, Token: cfg.ReportToken, Name: cfg.ReportName, Kind: "plugin", Interval: cfg.ReportInterval,
			Programs: in.pl.ProgramIDs, Totals: in.totals, Logger: in.log, Answers: dataplane.TeacherAnswers(in.pl),
			Patterns: dataplane.Patterns(in.pl),
		}
		// Reporting stops after the drain, so the last report has the
		// final counts.
		in.lc.Watch(ctx, func(ctx context.Context) { metrics.RunReporter(ctx, rcfg) })
	}
	// Loading programs (decompressing, checking and trial-running each)
	// leaves garbage many times their size; give it back now rather than
	// when the scavenger gets to it, so Fluent Bit's RSS is the plugin's.
	debug.FreeOSMemory()
	in.log.Info("settings", yamlconf.Settings(cfg)...)
	in.lc.Ready("programs", in.pl.ProgramIDs())
	return in, nil
}

// openOutputs opens the output, the review files of the pipeline's
// escalations and the dead-letter file; on error, closeOutputs closes
// those already open.
func (in *Instance) openOutputs(cfg Config, pc *runtime.PipelineConfig, stdout io.Writer) error {
	spec, _ := parseOutput(cfg.Output) // validated by ParseConfig
	out, err := openOutput(spec, stdout)
	if err != nil {
		return err
	}
	in.out = out
	in.review = map[string]output{}
	for _, to := range pc.EscalationDestinations() {
		spec, err := parseOutput(to)
		if err != nil || spec.kind != "file" {
			return fmt.Errorf("pipeline escalate.to %q: out_paw writes escalated records to file://PATH", to)
		}
		o, err := openFileOutput(spec.path)
		if err != nil {
			return fmt.Errorf("pipeline escalate.to: %w", err)
		}
		in.review[to] = o
	}
	if cfg.DeadLetter != "" {
		dead, err := openFileOutput(cfg.DeadLetter)
		if err != nil {
			return fmt.Errorf("property dead_letter: %w", err)
		}
		in.dead = dead
	}
	return nil
}

// closeOutputs closes the outputs opened so far.
func (in *Instance) closeOutputs() error {
	var errs []error
	if in.out != nil {
		errs = append(errs, in.out.Close())
	}
	if in.dead != nil {
		errs = append(errs, in.dead.Close())
	}
	for _, o := range in.review {
		errs = append(errs, o.Close())
	}
	return errors.Join(errs...)
}

func (in *Instance) closeRuntime() {
	in.pl.Close()
	in.env.Close()
}

// Stats returns the instance's totals.
func (in *Instance) Stats() Stats {
	s := &in.stats
	return Stats{Chunks: s.chunks.Load(), Records: s.records.Load(), Tagged: s.tagged.Load(), Dropped: s.dropped.Load(),
		Poison: s.poison.Load(), DeadLettered: s.deadLettered.Load(), Retries: s.retries.Load(), BadChunks: s.badChunks.Load(), Escalated: s.escalated.Load()}
}

// totals are the instance's counts for metrics reports.
func (in *Instance) totals() metrics.Totals {
	s := &in.stats
	return dataplane.Totals(in.pl, s.records.Load(), s.deadLettered.Load(), s.retries.Load(), s.chunks.Load())
}

// ProgramIDs maps the programs running now to their IDs.
func (in *Instance) ProgramIDs() map[string]string { return in.pl.ProgramIDs() }

// outLine is the JSON line of a record sent on; appendLine writes it
// without reflection, and the tests compare the two.
type outLine struct {
	Timestamp   string                 `json:"timestamp"`
	Tag         string                 `json:"tag"`
	Record      map[string]interface{} `json:"record"`
	Paw         map[string]runtime.Tag `json:"paw,omitempty"`
	Destination string                 `json:"destination,omitempty"`
}

// deadLine is the JSON line of a dead-lettered record or chunk.
type deadLine struct {
	Timestamp string                 `json:"timestamp,omitempty"`
	Tag       string                 `json:"tag"`
	Reason    string                 `json:"reason"`
	Error     string                 `json:"error"`
	Record    map[string]interface{} `json:"record,omitempty"`
	Chunk     string                 `json:"chunk_base64,omitempty"`
}

// Flush handles one chunk. It is safe for concurrent use (Fluent Bit's
// output workers). Bad records never fail a chunk; only an output that
// cannot take the records does, with StatusRetry. A chunk's records are
// counted once, when it succeeds: a retried chunk is not counted again.
func (in *Instance) Flush(ctx context.Context, tag string, data []byte) Status {
	f, _ := in.flushes.Get().(*flush)
	if f == nil {
		f = new(flush)
	}
	st := in.flush(ctx, tag, data, f)
	// An output that failed may still hold the batches (a Kafka write in
	// flight); so may a flush that grew them past what is worth keeping.
	if st == StatusOK && cap(f.out.buf) <= maxPooledBytes {
		f.reset()
		in.flushes.Put(f)
	}
	return st
}

// maxPooledBytes bounds the output buffer a finished flush keeps for the
// next: a huge chunk's buffer is left to the collector.
const maxPooledBytes = 8 << 20

// flush is one Flush's working memory, reused by the next.
type flush struct {
	evs   []event
	texts [][]byte
	idx   []int // evs[idx[i]] has texts[i]
	out   batch
	dead  batch
	x     transcoder
}

func (f *flush) reset() {
	clear(f.evs) // drop the references to the chunk
	clear(f.texts)
	clear(f.x.kvs[:cap(f.x.kvs)])
	f.evs, f.texts, f.idx = f.evs[:0], f.texts[:0], f.idx[:0]
	f.out.reset()
	f.dead.reset()
}

func (in *Instance) flush(ctx context.Context, tag string, data []byte, f *flush) Status {
	var n counts
	var decErr error
	var ok bool
	if f.evs, ok = scanChunk(data, f.evs); !ok {
		var events []Event
		events, decErr = DecodeChunk(data)
		f.evs = f.evs[:0]
		for _, e := range events {
			f.evs = append(f.evs, event{time: e.Time, rec: e.Record})
		}
		n.badChunks = 1
		in.log.Error("malformed chunk; records before the damage are processed", "tag", tag, "bytes", len(data), "err", decErr)
		f.appendDead(deadLine{Tag: tag, Reason: "malformed_chunk", Error: decErr.Error(), Chunk: base64.StdEncoding.EncodeToString(data)})
	}
	n.records = int64(len(f.evs))
	for i := range f.evs {
		ev := &f.evs[i]
		text, ok := []byte(nil), false
		if ev.raw != nil {
			text, ok = rawLookup(ev.raw, in.field)
		}
		if !ok {
			var err error
			if text, err = in.text(ev.record()); err != nil {
				n.poison++
				if in.dead != nil {
					f.appendDead(deadLine{Timestamp: stamp(ev.time), Tag: tag, Reason: dataplane.Reason(err), Error: err.Error(), Record: jsonMap(ev.rec)})
				} else {
					f.appendEvent(&f.out, tag, ev, nil)
				}
				continue
			}
		}
		f.texts = append(f.texts, text)
		f.idx = append(f.idx, i)
	}
	outs, err := in.pl.ProcessTexts(ctx, f.texts)
	if err != nil {
		return in.retry("pipeline unavailable; chunk will be retried", tag, err)
	}
	var reviews map[string]*batch
	for j := range outs {
		o := &outs[j]
		ev := &f.evs[f.idx[j]]
		for _, e := range o.Reviews() {
			if reviews == nil {
				reviews = map[string]*batch{}
			}
			if reviews[e.To] == nil {
				reviews[e.To] = new(batch)
			}
			f.appendEvent(reviews[e.To], tag, ev, o)
		}
		if !o.Keep {
			n.dropped++
			continue
		}
		n.tagged++
		f.appendEvent(&f.out, tag, ev, o)
	}
	for _, to := range slices.Sorted(maps.Keys(reviews)) {
		b := reviews[to]
		if err := in.review[to].Write(ctx, b); err != nil {
			return in.retry("review destination refused the records; chunk will be retried", tag, err, "to", to)
		}
		n.escalated += int64(len(b.lines))
	}
	if in.dead != nil && len(f.dead.lines) > 0 {
		if err := in.dead.Write(ctx, &f.dead); err != nil {
			return in.retry("dead_letter refused the records; chunk will be retried", tag, err)
		}
		n.deadLettered = int64(len(f.dead.lines))
	}
	if len(f.out.lines) > 0 {
		if err := in.out.Write(ctx, &f.out); err != nil {
			return in.retry("output refused the records; chunk will be retried", tag, err, "output", in.cfg.Output)
		}
	}
	in.stats.add(n)
	return StatusOK
}

// counts are one chunk's, added to the totals when it succeeds.
type counts struct {
	records, tagged, dropped, poison, deadLettered, badChunks, escalated int64
}

func (c *counters) add(n counts) {
	c.chunks.Add(1)
	c.records.Add(n.records)
	c.tagged.Add(n.tagged)
	c.dropped.Add(n.dropped)
	c.poison.Add(n.poison)
	c.deadLettered.Add(n.deadLettered)
	c.badChunks.Add(n.badChunks)
	c.escalated.Add(n.escalated)
}

// retry counts and logs a flush answered FLB_RETRY.
func (in *Instance) retry(msg, tag string, err error, attrs ...any) Status {
	in.stats.retries.Add(1)
	in.log.Warn(msg, append([]any{"tag", tag, "err", err}, attrs...)...)
	return StatusRetry
}

// appendEvent writes a record's line to b, tagged when o is set.
func (f *flush) appendEvent(b *batch, tag string, ev *event, o *runtime.Outcome) {
	var tags []runtime.Tag
	var dest string
	if o != nil {
		tags, dest = o.Tags, o.Destination
	}
	start := len(b.buf)
	b.buf = appendLineHead(b.buf, ev.time, tag)
	if ev.rec != nil {
		b.buf = appendMap(b.buf, ev.rec)
	} else {
		b.buf = f.x.appendRecord(b.buf, ev.raw)
	}
	b.buf = appendLineTail(b.buf, tags, dest)
	b.add(dest, start)
}

// appendDead writes a dead-letter line.
func (f *flush) appendDead(l deadLine) {
	start := len(f.dead.buf)
	data, _ := json.Marshal(l) // cannot fail: strings and plain values
	f.dead.buf = append(f.dead.buf, data...)
	f.dead.add("", start)
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// text reads the configured field; Fluent Bit sends strings as []byte.
func (in *Instance) text(rec map[interface{}]interface{}) ([]byte, error) {
	v, err := runtime.Lookup(rec, in.field)
	if err != nil {
		return nil, err
	}
	var text []byte
	switch s := v.(type) {
	case []byte:
		text = s
	case string:
		text = []byte(s)
	default:
		return nil, fmt.Errorf("%w: %s is %T", runtime.ErrNotString, in.cfg.Field, v)
	}
	// As in the processor, whose JSON records must be UTF-8: a record with
	// bad bytes anywhere is set aside as invalid_utf8 rather than sent on
	// with U+FFFD in their place.
	if !validUTF8(rec) {
		return nil, runtime.ErrInvalidUTF8
	}
	return text, nil
}

// validUTF8 reports whether every string key and value of a record is
// UTF-8. The decoder bounds the nesting.
func validUTF8(v interface{}) bool {
	switch t := v.(type) {
	case []byte:
		return utf8.Valid(t)
	case string:
		return utf8.ValidString(t)
	case map[interface{}]interface{}:
		for k, x := range t {
			if !validUTF8(k) || !validUTF8(x) {
				return false
			}
		}
	case []interface{}:
		for _, x := range t {
			if !validUTF8(x) {
				return false
			}
		}
	}
	return true
}

// jsonMap converts a decoded record for encoding/json: byte strings become
// strings and map keys become strings.
func jsonMap(m map[interface{}]interface{}) map[string]interface{} {
	out := make(map[string]interface{}, len(m))
	for k, v := range m {
		out[keyString(k)] = jsonValue(v)
	}
	return out
}

func jsonValue(v interface{}) interface{} {
	switch t := v.(type) {
	case []byte:
		return string(t)
	case map[interface{}]interface{}:
		return jsonMap(t)
	case []interface{}:
		out := make([]interface{}, len(t))
		for i, x := range t {
			out[i] = jsonValue(x)
		}
		return out
	case eventTime:
		return stamp(t.Time)
	}
	return v
}

func keyString(k interface{}) string {
	switch t := k.(type) {
	case string:
		return t
	case []byte:
		return string(t)
	}
	return fmt.Sprint(k)
}

// Close drains (stops the reload watcher, flushes and closes the
// outputs), sends the last report, and releases the programs.
func (in *Instance) Close() error {
	in.lc.Drain("fluent bit exit")
	err := in.closeOutputs()
	st := in.Stats()
	err = in.lc.Stop(err, "chunks", st.Chunks, "records", st.Records, "tagged", st.Tagged, "dropped", st.Dropped,
		"poison", st.Poison, "dead_lettered", st.DeadLettered, "retries", st.Retries, "bad_chunks", st.BadChunks)
	return errors.Join(err, in.pl.Close(), in.env.Close())
}
