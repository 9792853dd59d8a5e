package runtime

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pawlogs/paw/runtime/patterns"
	"github.com/pawlogs/paw/teacher"
)

// EscalateToTeacher as an escalate.to sends low-confidence decisions to the
// teacher endpoint, whose answer replaces them.
const EscalateToTeacher = "teacher"

// TeacherEscalation configures escalate.to: teacher. Endpoint fields left
// empty are taken from the program's manifest when it was compiled with a
// teacher. Zero values take the defaults.
type TeacherEscalation struct {
	teacher.Endpoint `yaml:",inline"`
	// CallsPerSecond is the hard rate; a record over it keeps its local
	// decision instead of waiting. Default: 1.
	CallsPerSecond float64 `yaml:"calls_per_second,omitempty"`
	// MaxCalls is the hard total for the life of the process, reloads
	// included. Default: 1000.
	MaxCalls int `yaml:"max_calls,omitempty"`
	// Concurrency (default 4), timeout (default 10s: records wait for it)
	// and cache_dir, whose default is the folder compile-time labelling
	// uses, so lines labelled then are free now.
	teacher.Calls `yaml:",inline"`
	// Remember is how many template answers each program keeps in memory.
	// Default: 65536.
	Remember int `yaml:"remember,omitempty"`
}

// escalateTimeout is the teacher's default timeout at run time.
const escalateTimeout = 10 * time.Second

func (t TeacherEscalation) withDefaults() TeacherEscalation {
	if t.CallsPerSecond == 0 {
		t.CallsPerSecond = 1
	}
	if t.MaxCalls == 0 {
		t.MaxCalls = teacher.DefaultMaxCalls
	}
	t.Calls = t.Calls.WithDefaults(escalateTimeout)
	if t.Remember == 0 {
		t.Remember = 1 << 16
	}
	return t
}

// TeacherCounts is what escalations to the teacher did, counted in records.
type TeacherCounts struct {
	Escalated  int64 // decisions below the threshold
	Calls      int64 // requests sent, retries included; never over max_calls
	Asked      int64 // answered by a call made for them (one call per pattern)
	Cached     int64 // answered from memory or the disk cache
	OverBudget int64 // no call allowed: the local decision stood
	Failed     int64 // the call failed, or failed lately: the local decision stood
	Dropped    int64 // the answer was not a label: the local decision stood
	Changed    int64 // answers that differ from the local decision
}

// teacherEscalator runs one step's escalate.to: teacher. Its budget spans
// program reloads; its client and remembered answers belong to one program
// version, since a new version may have new labels or a new prompt.
type teacherEscalator struct {
	program string
	esc     *Escalate // below and novel_above
	cfg     TeacherEscalation
	budget  *teacher.Budget

	mu       sync.Mutex
	fresh    []TeacherAnswer // answers not yet taken by the data plane
	clientID string          // program ID the client and answers are for
	client   *teacher.Client
	answers  map[uint64]int // pattern and kind -> label index
	// miner groups the escalated records into log patterns and their kinds,
	// so that the teacher is asked once per kind of pattern, as
	// compile-time labelling asks, not once per exact template key.
	miner *patterns.Miner
	// kept holds the template keys whose answer was kept for learning: a
	// pattern's answer is learned from once for each of its templates.
	kept map[uint64]bool

	escalated, asked, cached, overBudget, failed, dropped, changed atomic.Int64
	lastWarn                                                       atomic.Int64
	// downUntil (unix ns) pauses asking after a failure, so that an
	// endpoint that hangs costs one timeout per pause, not one per batch.
	downUntil atomic.Int64
}

// teacherPause is how long a failed endpoint is left alone.
const teacherPause = 5 * time.Second

func newTeacherEscalator(program string, e *Escalate) *teacherEscalator {
	var cfg TeacherEscalation
	if e.Teacher != nil {
		cfg = *e.Teacher
	}
	cfg = cfg.withDefaults()
	return &teacherEscalator{program: program, esc: e, cfg: cfg, budget: teacher.NewBudget(cfg.MaxCalls, cfg.CallsPerSecond, false)}
}

// prepare readies the escalator for p: the endpoint comes from the step, or
// from p's compile-time teacher.
func (e *teacherEscalator) prepare(p *Program) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.clientID == p.ID {
		return nil
	}
	cfg := e.cfg.Config(e.cfg.Endpoint, e.budget)
	cfg.Retries = 1
	system := teacher.SystemPrompt(teacher.Task{Description: p.Manifest.Description, Labels: p.Labels()})
	if prov := p.Manifest.Teacher; prov != nil {
		if cfg.BaseURL == "" {
			cfg.BaseURL = prov.BaseURL
		}
		if cfg.Model == "" {
			cfg.Model = prov.Model
		}
		if prov.SystemPrompt != "" {
			system = prov.SystemPrompt
		}
	}
	if cfg.BaseURL == "" || cfg.Model == "" {
		return fmt.Errorf("escalate to teacher: program %s was not compiled with a teacher; set escalate.teacher.base_url and model", p.Name())
	}
	c, err := teacher.NewWithPrompt(cfg, p.Labels(), system)
	if err != nil {
		return fmt.Errorf("escalate to teacher: %w", err)
	}
	e.client, e.clientID, e.answers = c, p.ID, map[uint64]int{}
	e.miner, e.kept = patterns.New(patterns.Config{MaxPatterns: escalatePatterns}), map[uint64]bool{}
	return nil
}

// escalatePatterns bounds the patterns an escalator's miner holds.
const escalatePatterns = 4096

// group files the escalated records wanted[j] of texts under their
// patterns, and returns each one's template key, pattern ID and remembered
// answer (-1 when none), if the program they are for is id: a replaced program's
// batches finishing late must not read the answers (label indexes) of its
// successor, and get no pattern (ok false).
func (e *teacherEscalator) group(p *Program, id string, texts [][]byte, wanted []int) (keys, pats []uint64, known []int, ok bool) {
	keys = make([]uint64, len(wanted))
	for j, i := range wanted {
		keys[j] = p.templateKey(texts[i])
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.clientID != id {
		return nil, nil, nil, false
	}
	pats, known = make([]uint64, len(wanted)), make([]int, len(wanted))
	for j, i := range wanted {
		pat, kind := e.miner.AddKeyed(texts[i], keys[j])
		pats[j] = mix(pat.ID ^ kind)
		k, ok := e.answers[pats[j]]
		if !ok {
			k = -1
		}
		known[j] = k
	}
	return keys, pats, known, true
}

func (e *teacherEscalator) remember(id string, pattern uint64, k int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.clientID != id {
		return // the program was replaced meanwhile
	}
	if len(e.answers) >= e.cfg.Remember {
		clear(e.answers) // simple and bounded; the disk cache still holds them
	}
	e.answers[pattern] = k
}

// learn keeps label as the answer for line, whose template key is key,
// unless one of its template's lines was kept already.
func (e *teacherEscalator) learn(p *Program, id string, key uint64, line []byte, label string) {
	e.mu.Lock()
	if e.clientID != id || e.kept[key] {
		e.mu.Unlock()
		return
	}
	if len(e.kept) >= e.cfg.Remember {
		clear(e.kept)
	}
	e.kept[key] = true
	e.mu.Unlock()
	e.keep(TeacherAnswer{Program: p.Name(), ProgramID: id, Line: string(line), Label: label})
}

// errNotAsked is the error of a template the batch's context ended before
// the teacher was asked about.
var errNotAsked = errors.New("not asked: the batch was cancelled")

// escalate asks the teacher about the records whose decision by program pi
// scores below the threshold, once per log pattern, and puts its answers
// in place of those decisions. Records over budget keep theirs.
func (e *teacherEscalator) escalate(ctx context.Context, p *Program, pi int, texts [][]byte, results []Result) (escalated int64) {
	var wanted []int
	for i := range results {
		if e.esc.wants(results[i].Decisions[pi]) {
			wanted = append(wanted, i)
		}
	}
	if len(wanted) == 0 {
		return 0
	}
	escalated = int64(len(wanted))
	e.escalated.Add(escalated)
	e.mu.Lock()
	client, id := e.client, e.clientID
	e.mu.Unlock()
	// A batch of a program replaced meanwhile: nothing is asked or
	// remembered, the local decisions stand.
	keys, pats, known, ok := e.group(p, id, texts, wanted)
	if !ok || id != p.ID {
		e.failed.Add(escalated)
		return escalated
	}
	labels := p.Labels()
	var (
		pending map[uint64][]int // pattern and kind -> wanted's records waiting on it
		order   []uint64
	)
	for j, i := range wanted {
		if known[j] >= 0 {
			e.cached.Add(1)
			e.overrule(&results[i].Decisions[pi], labels, known[j])
			e.learn(p, id, keys[j], texts[i], labels[known[j]])
			continue
		}
		if pending == nil {
			pending = map[uint64][]int{}
		}
		if pending[pats[j]] == nil {
			order = append(order, pats[j])
		}
		pending[pats[j]] = append(pending[pats[j]], j)
	}
	if len(order) == 0 {
		return escalated
	}
	if time.Now().UnixNano() < e.downUntil.Load() { // failing lately
		for _, pat := range order {
			e.failed.Add(int64(len(pending[pat])))
		}
		return escalated
	}
	answers := make([]teacher.Answer, len(order))
	errs := make([]error, len(order))
	lines := make([]string, len(order))
	for j, pat := range order {
		lines[j] = string(texts[wanted[pending[pat][0]]])
	}
	for j := range errs {
		errs[j] = errNotAsked // until answered: ctx may end first
	}
	client.LabelEach(ctx, lines, e.cfg.Concurrency, func(j int, a teacher.Answer, err error) bool {
		answers[j], errs[j] = a, err
		return true
	})
	for j, pat := range order {
		recs := int64(len(pending[pat]))
		a := answers[j]
		switch {
		case errs[j] != nil:
			e.failed.Add(recs)
			e.downUntil.Store(time.Now().Add(teacherPause).UnixNano())
			e.warn(errs[j])
			continue
		case a.How == teacher.OverBudget:
			e.overBudget.Add(recs)
			continue
		case a.How == teacher.Dropped:
			e.dropped.Add(recs)
			continue
		case a.How == teacher.Cached:
			e.cached.Add(recs)
		default:
			e.asked.Add(recs)
		}
		k := slices.Index(labels, a.Label)
		e.remember(id, pat, k)
		for n, w := range pending[pat] {
			i := wanted[w]
			e.overrule(&results[i].Decisions[pi], labels, k)
			// The line asked about was kept when it was first asked, if
			// its answer came from the disk cache.
			if n > 0 || a.How != teacher.Cached {
				e.learn(p, id, keys[w], texts[i], a.Label)
			}
		}
	}
	return escalated
}

// TeacherAnswer is an answer the teacher gave to an escalation, for the
// program's answer log.
type TeacherAnswer struct {
	Program, ProgramID, Line, Label string
}

// maxFreshAnswers bounds the answers kept until a data plane takes them.
const maxFreshAnswers = 10000

// keep holds a new answer until a data plane passes it on.
func (e *teacherEscalator) keep(a TeacherAnswer) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.fresh) >= maxFreshAnswers {
		e.fresh = e.fresh[1:]
	}
	e.fresh = append(e.fresh, a)
}

// take hands over the answers kept since the last call.
func (e *teacherEscalator) take() []TeacherAnswer {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := e.fresh
	e.fresh = nil
	return out
}

// overrule replaces a decision with the teacher's label k.
func (e *teacherEscalator) overrule(d *Decision, labels []string, k int) {
	if d.Label != labels[k] {
		e.changed.Add(1)
	}
	clear(d.Probs)
	d.Probs[k] = 1
	d.Label, d.Score, d.Teacher = labels[k], 1, true
}

// warn logs a failing teacher at most every 10 seconds: a down endpoint
// must not flood the logs at the record rate.
func (e *teacherEscalator) warn(err error) {
	now := time.Now().UnixNano()
	last := e.lastWarn.Load()
	if now-last < int64(10*time.Second) || !e.lastWarn.CompareAndSwap(last, now) {
		return
	}
	slog.Warn("teacher escalation failed; local decisions stand", "program", e.program, "err", err)
}

func (e *teacherEscalator) counts() TeacherCounts {
	return TeacherCounts{
		Escalated: e.escalated.Load(), Calls: e.budget.Used(), Asked: e.asked.Load(), Cached: e.cached.Load(), OverBudget: e.overBudget.Load(),
		Failed: e.failed.Load(), Dropped: e.dropped.Load(), Changed: e.changed.Load(),
	}
}

func (c *TeacherCounts) add(o TeacherCounts) {
	c.Escalated += o.Escalated
	c.Calls += o.Calls
	c.Asked += o.Asked
	c.Cached += o.Cached
	c.OverBudget += o.OverBudget
	c.Failed += o.Failed
	c.Dropped += o.Dropped
	c.Changed += o.Changed
}
