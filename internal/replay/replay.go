// Package replay measures the learning loop on a labelled stream: each
// record is decided by the program of the moment, the unsure or novel ones
// are escalated to a teacher (once per log pattern), and every so many
// answers the program is compiled again from its spec and the answers. It
// is prequential: a record is scored before anything learns from it.
package replay

import (
	"context"
	"fmt"
	"time"

	"github.com/pawlogs/paw/compiler"
	"github.com/pawlogs/paw/runtime"
	"github.com/pawlogs/paw/runtime/patterns"
	"github.com/pawlogs/paw/teacher"
)

// Record is one labelled line of the stream.
type Record struct {
	Text, Label string
}

// Config is a replay. Zero values take the defaults.
type Config struct {
	// Spec compiles the first program; its Answers grow as the teacher
	// answers.
	Spec *compiler.Spec
	// Positive is the label F1 is measured for. Default: the spec's.
	Positive string
	// Teacher is the endpoint escalations ask. Empty BaseURL: no
	// escalation (the frozen program).
	Teacher teacher.Config
	// MaxCalls bounds the teacher's calls. Default: no bound.
	MaxCalls int
	// Below escalates decisions scoring under it. Default: DefaultBelow.
	Below float64
	// NovelAbove escalates decisions more novel than it. Default:
	// DefaultNovelAbove; negative: off.
	NovelAbove float64
	// LearnEvery recompiles after this many new answers; 0: never (the
	// cascade alone). Default for the CLI: DefaultLearnEvery.
	LearnEvery int
	// Chunk is how many records are decided at once. Default: 64.
	Chunk int
	// Env runs the programs. Required.
	Env *runtime.Env
	// Progress, if set, hears of records done.
	Progress func(done, total, recompiles int)
}

// Defaults, chosen on the held-out halves of the labelled Loghub systems
// (make quality): escalation is cheap next to a wrong decision, and a
// novel line is where the program guesses.
const (
	DefaultBelow      = 0.9
	DefaultNovelAbove = 0.25
	DefaultLearnEvery = 2
)

// Report is what a replay measured.
type Report struct {
	N int `json:"n"`
	// F1 of the positive label over the decisions as emitted (the
	// teacher's answer where one was had), and over the program's own.
	F1        float64 `json:"f1"`
	F1Program float64 `json:"f1_program"`
	// F1ProgramLastQuarter is the program's own F1 over the last quarter
	// of the stream: what it learned, not what the teacher answered.
	F1ProgramLastQuarter float64 `json:"f1_program_last_quarter"`
	TeacherCalls         int     `json:"teacher_calls"`
	Escalated            int     `json:"escalated"`
	Recompiles           int     `json:"recompiles"`
	Templates            int     `json:"templates"`
	// RecompileSeconds is the longest recompile.
	RecompileSeconds float64 `json:"recompile_seconds_max"`
}

// Run replays records.
func Run(ctx context.Context, cfg Config, records []Record) (*Report, error) {
	if cfg.Below == 0 {
		cfg.Below = DefaultBelow
	}
	if cfg.NovelAbove == 0 {
		cfg.NovelAbove = DefaultNovelAbove
	}
	if cfg.Chunk <= 0 {
		cfg.Chunk = 64
	}
	if cfg.Positive == "" {
		cfg.Positive = cfg.Spec.Positive
	}
	spec := *cfg.Spec
	var client *teacher.Client
	if cfg.Teacher.BaseURL != "" {
		tc := cfg.Teacher
		if cfg.MaxCalls <= 0 {
			cfg.MaxCalls = 1 << 30
		}
		tc.Budget = teacher.NewBudget(cfg.MaxCalls, 0, true)
		var err error
		if client, err = teacher.New(tc, teacher.Task{Description: spec.Description, Labels: spec.Labels}); err != nil {
			return nil, err
		}
	}
	pl, err := compileProgram(ctx, cfg.Env, &spec)
	if err != nil {
		return nil, err
	}
	defer func() { pl.Close() }()
	maxBytes := runtime.DefaultMaxBytes
	// The teacher is asked once per log pattern, as a pipeline's escalation
	// asks: the miner is fed the featurizer's template keys.
	feat, err := runtime.NewFeaturizer(runtime.DefaultFeaturizerConfig())
	if err != nil {
		return nil, err
	}
	toks, miner := feat.NewTokens(), patterns.New(patterns.Config{MaxLineBytes: maxBytes})
	answered := map[[2]uint64]string{} // pattern ID and kind -> the teacher's label
	learned := map[string]bool{}       // masked templates answered
	templates := map[string]bool{}
	var emitted, own, last f1count
	rep := &Report{N: len(records)}
	newAnswers := 0
	for lo := 0; lo < len(records); lo += cfg.Chunk {
		chunk := records[lo:min(lo+cfg.Chunk, len(records))]
		texts := make([][]byte, len(chunk))
		for i, r := range chunk {
			texts[i] = []byte(r.Text)
		}
		outs, err := pl.ProcessTexts(ctx, texts)
		if err != nil {
			return nil, err
		}
		for i, r := range chunk {
			t := outs[i].Tags[0]
			key := runtime.Normalize(texts[i], maxBytes)
			templates[key] = true
			label := t.Label
			if client != nil && (float64(t.Score) < cfg.Below || (cfg.NovelAbove > 0 && float64(t.Novelty) > cfg.NovelAbove)) {
				rep.Escalated++
				p, kind := miner.AddKeyed(texts[i], feat.Scan(texts[i], toks))
				pat := [2]uint64{p.ID, kind}
				a, ok := answered[pat]
				if !ok {
					ans, err := client.Label(ctx, r.Text)
					if err != nil {
						return nil, fmt.Errorf("teacher: %w", err)
					}
					if ans.How == teacher.Asked {
						rep.TeacherCalls++
					}
					if ans.Label != "" {
						a, ok = ans.Label, true
						answered[pat] = a
					}
				}
				if ok {
					label = a
					// Each template of an answered pattern is learned from,
					// as compile-time labelling labels every line of one.
					if !learned[key] {
						learned[key] = true
						spec.Answers = append(spec.Answers, compiler.Answer{Template: key, Line: r.Text, Label: a, By: compiler.ByModel, Time: time.Unix(int64(lo+i), 0)})
						newAnswers++
					}
				}
			}
			gold := r.Label == cfg.Positive
			emitted.add(label == cfg.Positive, gold)
			own.add(t.Label == cfg.Positive, gold)
			if lo+i >= len(records)*3/4 {
				last.add(t.Label == cfg.Positive, gold)
			}
		}
		if cfg.LearnEvery > 0 && newAnswers >= cfg.LearnEvery {
			start := time.Now()
			next, err := compileProgram(ctx, cfg.Env, &spec)
			if err != nil {
				return nil, fmt.Errorf("recompile with %d answers: %w", len(spec.Answers), err)
			}
			rep.RecompileSeconds = max(rep.RecompileSeconds, time.Since(start).Seconds())
			pl.Close()
			pl, newAnswers = next, 0
			rep.Recompiles++
		}
		if cfg.Progress != nil {
			cfg.Progress(min(lo+cfg.Chunk, len(records)), len(records), rep.Recompiles)
		}
	}
	rep.Templates = len(templates)
	rep.F1, rep.F1Program, rep.F1ProgramLastQuarter = emitted.f1(), own.f1(), last.f1()
	return rep, nil
}

// f1count is the positive label's true and false positives and misses.
type f1count struct{ tp, fp, fn int }

func (c *f1count) add(pred, gold bool) {
	switch {
	case pred && gold:
		c.tp++
	case pred:
		c.fp++
	case gold:
		c.fn++
	}
}

// f1 is 1 when there was nothing to find and nothing was claimed.
func (c f1count) f1() float64 {
	if 2*c.tp+c.fp+c.fn == 0 {
		return 1
	}
	return 2 * float64(c.tp) / float64(2*c.tp+c.fp+c.fn)
}

// compileProgram compiles spec and opens a one-program, tag-only pipeline.
func compileProgram(ctx context.Context, env *runtime.Env, spec *compiler.Spec) (*runtime.Pipeline, error) {
	res, err := compiler.Compile(ctx, spec, nil)
	if err != nil {
		return nil, err
	}
	a, err := runtime.DecodeArtifact(res.Artifact)
	if err != nil {
		return nil, err
	}
	p, err := runtime.NewProgram(env, a, runtime.ProgramOptions{})
	if err != nil {
		return nil, err
	}
	cfg := &runtime.PipelineConfig{Steps: []runtime.Step{{Tag: &runtime.TagStep{Programs: []string{p.Name()}}}}}
	pl, err := runtime.NewPipeline(cfg, []*runtime.Program{p}, runtime.BatcherConfig{})
	if err != nil {
		p.Close()
		return nil, err
	}
	return pl, nil
}
