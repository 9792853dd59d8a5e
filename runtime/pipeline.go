package runtime

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Tag is one program's decision attached to a record. Its JSON form is how
// JSON outputs carry it: {"<program>": {"label", "score", "id"}}.
type Tag struct {
	Program string  `json:"-"`
	Label   string  `json:"label"`
	Score   float32 `json:"score"`
	ID      string  `json:"id"`
	// By is "teacher" when an escalation's answer replaced the program's
	// decision; empty for the program's own.
	By string `json:"by,omitempty"`
	// Novelty is how unlike the program's training data the record is.
	Novelty float32 `json:"novelty"`
	// Probs are the program's probabilities, in label order (not
	// written out; for evaluation).
	Probs []float32 `json:"-"`
}

// TagByTeacher is Tag.By for decisions the teacher made.
const TagByTeacher = "teacher"

// TagMap keys tags by program, for JSON outputs.
func TagMap(tags []Tag) map[string]Tag {
	m := make(map[string]Tag, len(tags))
	for _, t := range tags {
		m[t.Program] = t
	}
	return m
}

// Outcome is what a pipeline decided for one record.
type Outcome struct {
	// Err is set when the record could not be classified (its input could
	// not be extracted); such records belong in a dead-letter destination.
	Err error
	// Keep is false when a filter dropped the record.
	Keep bool
	// DroppedBy names the filtering program when Keep is false, or is
	// DroppedByGrep.
	DroppedBy string
	// Tags are the tag steps' decisions, in step order.
	Tags []Tag
	// Destination is the route step's choice ("" without a route step).
	Destination string
	// Escalations are the low-confidence decisions of steps that escalate.
	Escalations []Escalation
}

// Reviews are the escalations a data plane sends on: one per review
// destination, the first that names it, since a record goes to each
// destination once however many of its steps escalated it there.
func (o *Outcome) Reviews() []Escalation {
	if len(o.Escalations) < 2 {
		return o.Escalations
	}
	out := make([]Escalation, 0, len(o.Escalations))
	for _, e := range o.Escalations {
		if !slices.ContainsFunc(out, func(p Escalation) bool { return p.To == e.To }) {
			out = append(out, e)
		}
	}
	return out
}

// Pipeline runs a PipelineConfig's steps over records. Its programs can be
// replaced while it runs (Replace, Reload): each Process call sees one
// consistent set of programs, and a replaced set is closed once the calls
// using it return.
type Pipeline struct {
	cfg   *PipelineConfig
	input *Input
	bc    BatcherConfig
	src   ProgramSource // nil unless opened with OpenPipeline(From)
	env   *Env
	popts ProgramOptions
	// maxRecord sets larger records aside in Process; 0: no limit.
	maxRecord int

	stats     BatchStats // shared by every generation's batcher
	decisions decisionCounts
	patterns  *patternTally       // nil when sampling is off
	teachers  []*teacherEscalator // one per step escalating to the teacher
	swap      sync.Mutex          // serializes Replace and Close
	state     atomic.Pointer[pipelineState]
	closed    atomic.Bool
}

// pipelineState is one generation of programs with its batcher.
type pipelineState struct {
	progs   []*Program
	set     *ProgramSet
	batcher *Batcher
	index   map[string]int // program name -> position in results

	// Every Process call holds mu shared; retiring the state takes it
	// exclusively, so the batcher closes only after its last caller.
	mu      sync.RWMutex
	retired bool
}

// PipelineOptions are the run-time settings of a pipeline.
type PipelineOptions struct {
	Program ProgramOptions
	Batcher BatcherConfig
	// MaxRecordBytes sets Process's larger records aside unread, with
	// ErrTooLarge. 0: no limit.
	MaxRecordBytes int
}

// OpenPipeline loads the config's programs from its programs folder and
// starts a batcher for them. The pipeline can Reload them from there.
func OpenPipeline(env *Env, cfg *PipelineConfig, opts PipelineOptions) (*Pipeline, error) {
	return OpenPipelineFrom(context.Background(), env, cfg, opts, DirSource{Dir: cfg.Dir()})
}

// OpenPipelineFrom loads the config's programs from src; Reload and
// WatchPrograms fetch new versions from there.
func OpenPipelineFrom(ctx context.Context, env *Env, cfg *PipelineConfig, opts PipelineOptions, src ProgramSource) (*Pipeline, error) {
	if opts.Program.EncoderDir == "" && cfg.EncodersDir != "" {
		opts.Program.EncoderDir = cfg.EncodersDir
		if !filepath.IsAbs(cfg.EncodersDir) && cfg.file != "" {
			opts.Program.EncoderDir = filepath.Join(filepath.Dir(cfg.file), cfg.EncodersDir)
		}
	}
	var progs []*Program
	closeAll := func() {
		for _, p := range progs {
			p.Close()
		}
	}
	for _, name := range cfg.ProgramNames() {
		a, err := src.Fetch(ctx, name, "")
		if err != nil {
			closeAll()
			return nil, err
		}
		p, err := newNamed(env, a, name, opts.Program)
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("program %s from %s: %w", name, src, err)
		}
		progs = append(progs, p)
	}
	pl, err := NewPipeline(cfg, progs, opts.Batcher)
	if pl != nil {
		pl.maxRecord = opts.MaxRecordBytes
	}
	if err != nil {
		closeAll()
		return nil, err
	}
	pl.src, pl.env, pl.popts = src, env, opts.Program
	return pl, nil
}

func newNamed(env *Env, a *Artifact, name string, opts ProgramOptions) (*Program, error) {
	if a.Manifest.Name != name {
		return nil, fmt.Errorf("the artifact for %s holds program %q", name, a.Manifest.Name)
	}
	return NewProgram(env, a, opts)
}

// NewPipeline runs cfg's steps with already loaded programs. The pipeline
// takes ownership of them: Close closes them.
func NewPipeline(cfg *PipelineConfig, progs []*Program, bc BatcherConfig) (*Pipeline, error) {
	expr := cfg.Input
	if expr == "" && len(progs) > 0 {
		expr = progs[0].Manifest.Input
		for _, p := range progs[1:] {
			if p.Manifest.Input != expr {
				return nil, fmt.Errorf("programs read different inputs (%q, %q): set input in the pipeline", expr, p.Manifest.Input)
			}
		}
	}
	in, err := ParseInput(expr)
	if err != nil {
		return nil, fmt.Errorf("input: %w", err)
	}
	pl := &Pipeline{cfg: cfg, input: in, bc: bc, patterns: newPatternTally(cfg.PatternSample)}
	pl.bc.Stats = &pl.stats
	for _, s := range cfg.Steps {
		if e := s.escalate(); e != nil && e.To == EscalateToTeacher {
			pl.teachers = append(pl.teachers, newTeacherEscalator(s.program(), e))
		}
	}
	st, err := pl.newState(progs)
	if err != nil {
		return nil, err
	}
	pl.state.Store(st)
	return pl, nil
}

func (pl *Pipeline) newState(progs []*Program) (*pipelineState, error) {
	labels := map[string][]string{}
	for _, p := range progs {
		labels[p.Name()] = p.Labels()
	}
	if err := pl.cfg.checkLabels(labels); err != nil {
		return nil, err
	}
	set, err := NewProgramSet(progs...)
	if err != nil {
		return nil, err
	}
	st := &pipelineState{progs: progs, set: set, index: map[string]int{}}
	for i, p := range progs {
		st.index[p.Name()] = i
	}
	for _, e := range pl.teachers {
		if err := e.prepare(progs[st.index[e.program]]); err != nil {
			return nil, err
		}
	}
	if len(progs) > 0 { // a pass-through pipeline has nothing to batch
		if st.batcher, err = NewBatcher(set, pl.bc); err != nil {
			return nil, err
		}
	}
	return st, nil
}

// Config is the pipeline's configuration.
func (pl *Pipeline) Config() *PipelineConfig { return pl.cfg }

// Input is the selector records are read with.
func (pl *Pipeline) Input() *Input { return pl.input }

// Programs returns the programs loaded now.
func (pl *Pipeline) Programs() []*Program { return pl.state.Load().progs }

// Stats returns the batchers' totals since the pipeline opened.
func (pl *Pipeline) Stats() BatchCounts { return pl.stats.Counts() }

// ProgramIDs maps each program name to the ID of the artifact running now.
func (pl *Pipeline) ProgramIDs() map[string]string {
	ids := map[string]string{}
	for _, p := range pl.Programs() {
		ids[p.Name()] = p.ID
	}
	return ids
}

// Replace swaps p in for the loaded program of the same name, without
// pausing Process calls. p must keep the labels the steps name and read the
// pipeline's input. On success the pipeline owns p; on error the caller
// still does, and the old program keeps running.
func (pl *Pipeline) Replace(p *Program) error {
	pl.swap.Lock()
	defer pl.swap.Unlock()
	if pl.closed.Load() {
		return ErrClosed
	}
	old := pl.state.Load()
	i, ok := old.index[p.Name()]
	if !ok {
		return fmt.Errorf("pipeline does not run a program named %q", p.Name())
	}
	if pl.cfg.Input == "" && p.Manifest.Input != pl.input.String() {
		return fmt.Errorf("program %s reads input %q, the pipeline reads %q: set input in the pipeline", p.Name(), p.Manifest.Input, pl.input.String())
	}
	progs := slices.Clone(old.progs)
	progs[i] = p
	st, err := pl.newState(progs)
	if err != nil {
		return fmt.Errorf("program %s: %w", p.Name(), err)
	}
	pl.state.Store(st)
	old.retire()
	return old.progs[i].Close()
}

// Reload fetches the named program again from the pipeline's source and
// Replaces it. It returns the running ID; changed is false when the source
// holds the program already running. Only pipelines opened from a source
// can reload.
func (pl *Pipeline) Reload(ctx context.Context, name string) (id string, changed bool, err error) {
	if pl.src == nil {
		return "", false, errors.New("pipeline was not opened from a program source")
	}
	cur, ok := pl.ProgramIDs()[name]
	if !ok {
		return "", false, fmt.Errorf("pipeline does not run a program named %q", name)
	}
	a, err := pl.src.Fetch(ctx, name, cur)
	if err != nil {
		return cur, false, err
	}
	if a == nil || a.ID == cur {
		return cur, false, nil
	}
	p, err := newNamed(pl.env, a, name, pl.popts)
	if err != nil {
		return cur, false, fmt.Errorf("program %s from %s: %w", name, pl.src, err)
	}
	if err := pl.Replace(p); err != nil {
		p.Close()
		return cur, false, err
	}
	return p.ID, true, nil
}

// Source is where the pipeline's programs come from (nil for NewPipeline).
func (pl *Pipeline) Source() ProgramSource { return pl.src }

// acquire returns the current state, held shared until release.
func (pl *Pipeline) acquire() (*pipelineState, error) {
	for {
		if pl.closed.Load() {
			return nil, ErrClosed
		}
		st := pl.state.Load()
		st.mu.RLock()
		if !st.retired {
			return st, nil
		}
		st.mu.RUnlock() // replaced meanwhile: take the new one
	}
}

// retire waits for the state's callers and stops its batcher. It does not
// close the programs, which the next state may share.
func (st *pipelineState) retire() {
	st.mu.Lock()
	st.retired = true
	st.mu.Unlock()
	if st.batcher != nil {
		st.batcher.Close()
	}
}

// Process classifies raw records and applies the steps. Records whose input
// cannot be extracted, or over MaxRecordBytes, get an Outcome with Err set;
// the others are scored.
func (pl *Pipeline) Process(ctx context.Context, records [][]byte) ([]Outcome, error) {
	texts := make([][]byte, 0, len(records))
	outs := make([]Outcome, len(records))
	for i, r := range records {
		if pl.maxRecord > 0 && len(r) > pl.maxRecord {
			outs[i].Err = fmt.Errorf("%w: %d bytes, max_record_bytes is %d", ErrTooLarge, len(r), pl.maxRecord)
			continue
		}
		t, err := pl.input.Extract(r)
		if err != nil {
			outs[i].Err = err
			continue
		}
		texts = append(texts, t)
	}
	return outs, pl.classifyInto(ctx, texts, outs)
}

// ProcessTexts applies the steps to texts that were already extracted.
func (pl *Pipeline) ProcessTexts(ctx context.Context, texts [][]byte) ([]Outcome, error) {
	outs := make([]Outcome, len(texts))
	return outs, pl.classifyInto(ctx, texts, outs)
}

func (pl *Pipeline) classifyInto(ctx context.Context, texts [][]byte, outs []Outcome) error {
	if len(texts) == 0 {
		return nil
	}
	st, err := pl.acquire()
	if err != nil {
		return err
	}
	if st.batcher == nil { // no program to run: pass-through or grep steps
		st.mu.RUnlock()
		j := 0
		for i := range outs {
			if outs[i].Err == nil {
				outs[i] = pl.apply(st, nil, texts[j], nil)
				j++
			}
		}
		return nil
	}
	results, err := st.batcher.Classify(ctx, texts...)
	// The state is held only while its programs run. Asking the teacher
	// can take seconds, and holding the state through that would stall a
	// reload, and behind the reload's waiting writer every other batch.
	// What follows reads programs' labels and templates, which stay
	// usable once a program is closed.
	st.mu.RUnlock()
	if err != nil {
		return err
	}
	for _, e := range pl.teachers {
		pi := st.index[e.program]
		if n := e.escalate(ctx, st.progs[pi], pi, texts, results); n > 0 {
			pl.decisions.addEscalated(e.program, n)
		}
	}
	// The records' tags share one allocation.
	nt := pl.tagsPerRecord()
	tags := make([]Tag, len(texts)*nt)
	j := 0
	for i := range outs {
		if outs[i].Err != nil {
			continue
		}
		outs[i] = pl.apply(st, &results[j], texts[j], tags[j*nt:j*nt:(j+1)*nt])
		j++
	}
	pl.decisions.add(st, results)
	pl.patterns.add(st, texts, results)
	pl.countEscalations(outs)
	return nil
}

func (pl *Pipeline) countEscalations(outs []Outcome) {
	var local map[string]int64
	for i := range outs {
		for _, e := range outs[i].Escalations {
			if local == nil {
				local = map[string]int64{}
			}
			local[e.Program]++
		}
	}
	for p, n := range local {
		pl.decisions.addEscalated(p, n)
	}
}

func (d *decisionCounts) addEscalated(program string, n int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.escalated == nil {
		d.escalated = map[string]int64{}
	}
	d.escalated[program] += n
}

// TeacherCounts reports the escalations to the teacher by program.
func (pl *Pipeline) TeacherCounts() map[string]TeacherCounts {
	out := make(map[string]TeacherCounts, len(pl.teachers))
	for _, e := range pl.teachers {
		c := e.counts()
		if prev, ok := out[e.program]; ok { // two steps of one program
			c.add(prev)
		}
		out[e.program] = c
	}
	return out
}

// TakeTeacherAnswers hands over the teacher's answers to escalations since
// the last call, for the programs' answer logs.
func (pl *Pipeline) TakeTeacherAnswers() []TeacherAnswer {
	var out []TeacherAnswer
	for _, e := range pl.teachers {
		out = append(out, e.take()...)
	}
	return out
}

// Novel counts each program's decisions with novelty above
// NovelThreshold since the pipeline opened.
func (pl *Pipeline) Novel() map[string]int64 {
	pl.decisions.mu.Lock()
	defer pl.decisions.mu.Unlock()
	return maps.Clone(pl.decisions.novel)
}

// Escalations returns how many decisions of each program escalated since
// the pipeline opened (a copy).
func (pl *Pipeline) Escalations() map[string]int64 {
	pl.decisions.mu.Lock()
	defer pl.decisions.mu.Unlock()
	return maps.Clone(pl.decisions.escalated)
}

// decisionCounts counts decisions by program and label: what the metrics
// report, for every program of the pipeline whatever its step.
type decisionCounts struct {
	mu        sync.Mutex
	m         map[string]map[string]int64
	escalated map[string]int64
	novel     map[string]int64 // decisions with novelty above NovelThreshold
}

func (d *decisionCounts) add(st *pipelineState, results []Result) {
	// Count per batch locally, then take the lock once.
	local := make([][]int64, len(st.progs))
	novel := make([]int64, len(st.progs))
	for pi, p := range st.progs {
		local[pi] = make([]int64, len(p.Labels()))
	}
	for i := range results {
		for pi, dec := range results[i].Decisions {
			if k := slices.Index(st.progs[pi].Labels(), dec.Label); k >= 0 {
				local[pi][k]++
			}
			if dec.Novelty > NovelThreshold {
				novel[pi]++
			}
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.m == nil {
		d.m = map[string]map[string]int64{}
		d.novel = map[string]int64{}
	}
	for pi, p := range st.progs {
		d.novel[p.Name()] += novel[pi]
	}
	for pi, p := range st.progs {
		byLabel := d.m[p.Name()]
		if byLabel == nil {
			byLabel = map[string]int64{}
			d.m[p.Name()] = byLabel
		}
		for k, n := range local[pi] {
			byLabel[p.Labels()[k]] += n
		}
	}
}

// Decisions returns how many records each program has decided each label
// for since the pipeline opened (a copy).
func (pl *Pipeline) Decisions() map[string]map[string]int64 {
	pl.decisions.mu.Lock()
	defer pl.decisions.mu.Unlock()
	out := make(map[string]map[string]int64, len(pl.decisions.m))
	for p, byLabel := range pl.decisions.m {
		c := make(map[string]int64, len(byLabel))
		for l, n := range byLabel {
			c[l] = n
		}
		out[p] = c
	}
	return out
}

// apply runs the steps over one record's decisions.
// tagsPerRecord is how many tags the steps give a record at most.
func (pl *Pipeline) tagsPerRecord() int {
	n := 0
	for _, s := range pl.cfg.Steps {
		if s.Tag != nil {
			n += len(s.Tag.Programs)
		}
	}
	return n
}

// apply runs the steps on one record's decisions; its tags go in tags
// (empty, with room for them).
func (pl *Pipeline) apply(st *pipelineState, r *Result, text []byte, tags []Tag) Outcome {
	o := Outcome{Keep: true, Tags: tags}
	for _, s := range pl.cfg.Steps {
		switch {
		case s.Grep != nil:
			if !s.Grep.keeps(text) {
				return Outcome{Keep: false, DroppedBy: DroppedByGrep, Tags: o.Tags, Escalations: o.Escalations}
			}
		case s.Filter != nil:
			i := st.index[s.Filter.Program]
			escalate(&o, s.Filter.Escalate, r.Decisions[i])
			if !keeps(s.Filter, st.progs[i], r.Decisions[i]) {
				return Outcome{Keep: false, DroppedBy: s.Filter.Program, Tags: o.Tags, Escalations: o.Escalations}
			}
		case s.Tag != nil:
			for _, name := range s.Tag.Programs {
				d := r.Decisions[st.index[name]]
				t := Tag{Program: name, ID: d.ID, Label: d.Label, Score: d.Score, Novelty: d.Novelty, Probs: d.Probs}
				if d.Teacher {
					t.By = TagByTeacher
				}
				o.Tags = append(o.Tags, t)
			}
		case s.Route != nil:
			d := r.Decisions[st.index[s.Route.Program]]
			escalate(&o, s.Route.Escalate, d)
			if dest, ok := s.Route.Routes[d.Label]; ok && float64(d.Score) >= s.Route.MinScore {
				o.Destination = dest
			} else {
				o.Destination = s.Route.Default
			}
		}
	}
	return o
}

// escalate records d for review when it scores below the step's threshold
// or is more novel than it allows. Escalations to the teacher were settled
// before the steps ran.
func escalate(o *Outcome, e *Escalate, d Decision) {
	if e != nil && e.To != EscalateToTeacher && e.wants(d) {
		o.Escalations = append(o.Escalations, Escalation{Program: d.Program, Label: d.Label, To: e.To, Score: d.Score, Novelty: d.Novelty})
	}
}

// wants reports whether d is escalated: unsure or novel.
func (e *Escalate) wants(d Decision) bool {
	return float64(d.Score) < e.Below || (e.NovelAbove > 0 && float64(d.Novelty) > e.NovelAbove)
}

func keeps(f *FilterStep, p *Program, d Decision) bool {
	if f.MinScore == 0 {
		return slices.Contains(f.Keep, d.Label)
	}
	for _, l := range f.Keep {
		if i := slices.Index(p.Labels(), l); i >= 0 && float64(d.Probs[i]) >= f.MinScore {
			return true
		}
	}
	return false
}

// Close stops the batcher and closes the programs. Process calls after
// Close return ErrClosed.
func (pl *Pipeline) Close() error {
	pl.swap.Lock()
	defer pl.swap.Unlock()
	if pl.closed.Swap(true) {
		return nil
	}
	st := pl.state.Load()
	retired := make(chan struct{})
	go func() { st.retire(); close(retired) }()
	grace := time.NewTimer(closeGrace)
	defer grace.Stop()
	select {
	case <-retired:
	case <-grace.C:
		// A batch still runs: abort it rather than let shutdown wait on
		// inference (its records fail, and their callers see the error).
		slog.Warn("inference still running at close; aborting it", "after", closeGrace)
		for _, p := range st.progs {
			p.Abort()
		}
		<-retired
	}
	var errs []error
	for _, p := range st.progs {
		errs = append(errs, p.Close())
	}
	return errors.Join(errs...)
}

// closeGrace is how long Close lets batches in flight finish. paw's graphs
// score a batch in milliseconds.
const closeGrace = 5 * time.Second
