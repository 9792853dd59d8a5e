package compiler

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"time"

	"github.com/pawlogs/paw/internal/bounded"
	"github.com/pawlogs/paw/runtime"
	"github.com/pawlogs/paw/runtime/patterns"
	"github.com/pawlogs/paw/teacher"
)

// TeacherConfig names a large model that labels samples_file once, at
// compile time: an OpenAI-compatible chat-completions endpoint (Ollama,
// vLLM, llama.cpp's server, hosted APIs), asked at temperature 0.
type TeacherConfig struct {
	teacher.Endpoint `yaml:",inline"`
	// SampleSize lines are drawn (seeded) from samples_file. Default: 2000.
	SampleSize int `yaml:"sample_size,omitempty" json:"sample_size,omitempty"`
	// Holdout is the share of the sample kept out of training to measure
	// fidelity. Default: 0.2.
	Holdout float64 `yaml:"holdout,omitempty" json:"holdout,omitempty"`
	// MaxCalls is a budget the compile never exceeds. Default: 1000.
	MaxCalls int `yaml:"max_teacher_calls,omitempty" json:"max_teacher_calls,omitempty"`
	// RatePerSecond bounds call starts; 0: unlimited.
	RatePerSecond float64 `yaml:"rate_per_second,omitempty" json:"rate_per_second,omitempty"`
	// Concurrency (default 4), timeout (default 60s) and cache_dir.
	teacher.Calls `yaml:",inline"`
}

// compileTimeout is the teacher's default timeout at compile time.
const compileTimeout = 60 * time.Second

func (t TeacherConfig) withDefaults() TeacherConfig {
	if t.SampleSize == 0 {
		t.SampleSize = 2000
	}
	if t.Holdout == 0 {
		t.Holdout = 0.2
	}
	if t.MaxCalls == 0 {
		t.MaxCalls = teacher.DefaultMaxCalls
	}
	t.Calls = t.Calls.WithDefaults(compileTimeout)
	return t
}

// task is what the teacher is asked, the examples serving as few-shot
// demonstrations.
func (s *Spec) task() teacher.Task {
	task := teacher.Task{Description: s.Description, Labels: s.Labels}
	for _, e := range s.Examples {
		task.Examples = append(task.Examples, teacher.Example{Text: e.Text, Label: e.Label})
	}
	return task
}

// TeacherStats is what labelling cost; it is reported, not stored in the
// artifact, so a warm-cache recompile gives the same bytes.
type TeacherStats struct {
	Sampled    int // lines drawn from samples_file
	Clusters   int // distinct log patterns among them
	Calls      int // requests sent, re-asks included
	CacheHits  int // clusters answered from the cache
	Overridden int // clusters whose pattern is an example's: the example's label wins
	Dropped    int // clusters whose answer stayed outside the labels
	OverBudget int // clusters left unlabelled by max_teacher_calls
	Labelled   int // sampled lines with a label
	Saved      int // calls saved by asking once per pattern
}

// teaching is the labelled sample split for training and fidelity.
type teaching struct {
	train, holdout []Example
	stats          TeacherStats
	digest         string // SHA-256 over the cache keys used
}

// teach labels a seeded sample of samples_file, one question per masked
// template, with the spec's examples as few-shot demonstrations.
func (s *Spec) teach(ctx context.Context, progress Progress) (*teaching, error) {
	cfg := s.Teacher.withDefaults()
	lines, err := s.readSamples()
	if err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(s.Options.Seed, 0x7eac4e7))
	if len(lines) > cfg.SampleSize {
		idx := rng.Perm(len(lines))[:cfg.SampleSize]
		sort.Ints(idx)
		picked := make([]string, len(idx))
		for i, j := range idx {
			picked[i] = lines[j]
		}
		lines = picked
	}
	holdout := make([]bool, len(lines))
	for i := range holdout {
		holdout[i] = rng.Float64() < cfg.Holdout
	}
	maxBytes := s.featurizerConfig().MaxBytes
	type cluster struct {
		key, rep string
		lines    []int
		label    string
	}
	// Lines are grouped by mined pattern (runtime/patterns) and kind
	// within it, read once all are mined: one question per kind of
	// pattern, not per exact masked template.
	miner := patterns.New(patterns.Config{MaxLineBytes: maxBytes})
	mined := make([]*patterns.Pattern, len(lines))
	for i, l := range lines {
		mined[i] = miner.Add(l)
	}
	byKey := map[string]*cluster{}
	var clusters []*cluster
	for i, l := range lines {
		k := miner.KindKey(mined[i], l)
		c := byKey[k]
		if c == nil {
			c = &cluster{key: k, rep: l}
			byKey[k] = c
			clusters = append(clusters, c)
		}
		c.lines = append(c.lines, i)
	}
	sort.Slice(clusters, func(i, j int) bool { return clusters[i].key < clusters[j].key })
	exampleLabel := map[string]string{}
	for _, e := range s.Examples {
		p := miner.Add(e.Text)
		k := miner.KindKey(p, e.Text)
		if _, ok := exampleLabel[k]; !ok {
			exampleLabel[k] = e.Label
		}
	}
	// Compile-time labelling waits for the rate rather than skipping lines.
	budget := teacher.NewBudget(cfg.MaxCalls, cfg.RatePerSecond, true)
	t, err := teacher.New(cfg.Config(cfg.Endpoint, budget), s.task())
	if err != nil {
		return nil, err
	}
	st := TeacherStats{Sampled: len(lines), Clusters: len(clusters), Saved: len(lines) - len(clusters)}
	// Clusters an example speaks for take its label; the teacher is asked
	// about the others' representatives.
	var ask []*cluster
	done := 0
	for _, c := range clusters {
		if l, ok := exampleLabel[c.key]; ok {
			c.label = l
			st.Overridden++
			done++
			progress("label", done, len(clusters))
			continue
		}
		ask = append(ask, c)
	}
	reps := make([]string, len(ask))
	for i, c := range ask {
		reps[i] = c.rep
	}
	var (
		keys     []string
		firstErr error
	)
	t.LabelEach(ctx, reps, cfg.Concurrency, func(i int, a teacher.Answer, err error) bool {
		switch {
		case err != nil:
			if firstErr == nil {
				firstErr = err
			}
		case a.How == teacher.OverBudget:
			st.OverBudget++
		case a.How == teacher.Dropped:
			st.Dropped++
		default:
			if a.How == teacher.Cached {
				st.CacheHits++
			}
			ask[i].label = a.Label
			keys = append(keys, a.Key)
		}
		done++
		progress("label", done, len(clusters))
		return firstErr == nil
	})
	if firstErr != nil {
		return nil, firstErr
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	st.Calls = int(budget.Used())
	out := &teaching{stats: st}
	for _, c := range clusters {
		if c.label == "" {
			continue
		}
		for _, i := range c.lines {
			e := Example{Text: lines[i], Label: c.label}
			if holdout[i] {
				out.holdout = append(out.holdout, e)
			} else {
				out.train = append(out.train, e)
			}
			out.stats.Labelled++
		}
	}
	sort.Strings(keys)
	sum := sha256.Sum256([]byte(strings.Join(keys, "\n")))
	out.digest = hex.EncodeToString(sum[:])
	return out, nil
}

// readSamples reads samples_file: JSONL records (the spec's input
// selector, else "text") or plain lines.
func (s *Spec) readSamples() ([]string, error) {
	data, err := bounded.ReadFile(s.samplesPath, 256<<20)
	if err != nil {
		return nil, fmt.Errorf("samples_file: %w", err)
	}
	in, err := runtime.ParseInput(s.Input)
	if err != nil {
		return nil, err
	}
	if in.WholeLine() {
		in, _ = runtime.ParseInput("text")
	}
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64<<10), maxExampleLength*4)
	for sc.Scan() {
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		if b[0] == '{' {
			if t, err := in.Extract(b); err == nil {
				b = t
			}
		}
		if len(b) > maxExampleLength {
			b = b[:maxExampleLength]
		}
		lines = append(lines, string(b))
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("samples_file: %w", err)
	}
	if len(lines) == 0 {
		return nil, errors.New("samples_file holds no lines")
	}
	return lines, nil
}
