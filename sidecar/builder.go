// Package sidecar is paw's compiler sidecar (paw serve): it watches a
// folder of specs, compiles each on change, publishes programs atomically
// for processors and plugins to hot-reload, and serves them over HTTP.
package sidecar

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pawlogs/paw/compiler"
	"github.com/pawlogs/paw/internal/atomicfile"
	"github.com/pawlogs/paw/internal/dirwatch"
	"github.com/pawlogs/paw/internal/yamlconf"
	"github.com/pawlogs/paw/metrics"
	"github.com/pawlogs/paw/runtime"
)

// APIError is how the API reports an error, located when it comes from a
// YAML file.
type APIError struct {
	Error  string `json:"error"`
	File   string `json:"file,omitempty"`
	Line   int    `json:"line,omitempty"`
	Column int    `json:"column,omitempty"`
}

// apiErrors turns an error into API errors, one per located problem.
func apiErrors(err error) []APIError {
	var ye yamlconf.Errors
	if errors.As(err, &ye) {
		out := make([]APIError, len(ye))
		for i, e := range ye {
			out[i] = APIError{Error: e.Msg, File: e.File, Line: e.Line, Column: e.Column}
		}
		return out
	}
	return []APIError{{Error: err.Error()}}
}

// Program is what the sidecar knows of one spec.
type Program struct {
	// ProgramInfo is the shape a standalone processor serves too; its ID
	// is the published (last good) artifact's, and Status says whether
	// that is the spec's (ok), the spec is broken (error) or pending.
	runtime.ProgramInfo
	Spec       string     `json:"spec"`
	LastError  []APIError `json:"last_error,omitempty"`
	CompiledAt time.Time  `json:"compiled_at,omitempty"`
	// Drift is the last drift check of the reported decisions.
	Drift *metrics.Drift `json:"drift,omitempty"`
	// Learned is how many answers (one per template) the published
	// program was compiled with.
	Learned int `json:"learned,omitempty"`

	artifact []byte
	labels   []string
}

// builder compiles specs, at most Concurrency at a time and never one spec
// twice at once; an edit during a compile queues exactly one more.
type builder struct {
	cfg     Config
	log     *slog.Logger
	sem     chan struct{}
	wg      sync.WaitGroup
	hook    func(spec string, start bool) // tests watch compiles start and end
	onReady func()                        // the first scan queued every spec

	mu       sync.Mutex
	programs map[string]*Program // by spec file name
	running  map[string]bool
	dirty    map[string]bool

	learn  *learner
	runCtx context.Context // run's, for compiles answers start

	compiles *prometheus.CounterVec
	broken   *prometheus.GaugeVec
	took     prometheus.Histogram
}

func newBuilder(cfg Config, log *slog.Logger, reg prometheus.Registerer) *builder {
	b := &builder{
		cfg: cfg, log: log, sem: make(chan struct{}, cfg.Concurrency),
		programs: map[string]*Program{}, running: map[string]bool{}, dirty: map[string]bool{}, learn: newLearner(cfg), runCtx: context.Background(),
		compiles: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "paw_sidecar_compiles_total", Help: "Spec compilations, by spec file and result (ok, error)."}, []string{"spec", "result"}),
		broken:   prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "paw_sidecar_spec_broken", Help: "1 while a spec fails to compile and its last good program stays published."}, []string{"spec"}),
		took:     prometheus.NewHistogram(prometheus.HistogramOpts{Name: "paw_sidecar_compile_seconds", Help: "Compile time per spec.", Buckets: prometheus.ExponentialBuckets(0.05, 2, 10)}),
	}
	if reg != nil {
		reg.MustRegister(b.compiles, b.broken, b.took)
	}
	return b
}

func isSpec(name string) bool {
	base := filepath.Base(name)
	return !strings.HasPrefix(base, ".") && (strings.HasSuffix(base, ".yaml") || strings.HasSuffix(base, ".yml"))
}

// run compiles every spec, then recompiles specs as they change, until ctx
// ends; it waits for compiles in progress before returning.
func (b *builder) run(ctx context.Context) error {
	defer b.wg.Wait()
	b.mu.Lock()
	b.runCtx = ctx
	b.mu.Unlock()
	err := dirwatch.Watch(ctx, b.cfg.SpecsDir, dirwatch.Options{
		Debounce: b.cfg.Debounce,
		Match:    isSpec,
		Ready: func() error {
			entries, err := os.ReadDir(b.cfg.SpecsDir)
			if err != nil {
				return fmt.Errorf("read specs: %w", err)
			}
			for _, e := range entries {
				if !e.IsDir() && isSpec(e.Name()) {
					b.trigger(ctx, e.Name())
				}
			}
			if b.onReady != nil {
				b.onReady()
			}
			return nil
		},
		Changed: func(name string) { b.trigger(ctx, name) },
		Logger:  b.log,
	})
	if err != nil {
		return fmt.Errorf("specs: %w", err)
	}
	return nil
}

// trigger compiles the spec file now, or once more after the compile in
// progress.
func (b *builder) trigger(ctx context.Context, file string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.running[file] {
		b.dirty[file] = true
		return
	}
	b.running[file] = true
	if _, ok := b.programs[file]; !ok {
		b.programs[file] = &Program{ProgramInfo: runtime.ProgramInfo{Name: strings.TrimSuffix(strings.TrimSuffix(file, ".yaml"), ".yml"), Status: "pending"}, Spec: file}
	}
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		for {
			b.compile(ctx, file)
			b.mu.Lock()
			if !b.dirty[file] || ctx.Err() != nil {
				b.running[file] = false
				b.mu.Unlock()
				return
			}
			b.dirty[file] = false
			b.mu.Unlock()
		}
	}()
}

func (b *builder) compile(ctx context.Context, file string) {
	select {
	case b.sem <- struct{}{}:
	case <-ctx.Done():
		return
	}
	defer func() { <-b.sem }()
	if b.hook != nil {
		b.hook(file, true)
		defer b.hook(file, false)
	}
	path := filepath.Join(b.cfg.SpecsDir, file)
	start := time.Now()
	b.mu.Lock()
	current := b.programs[file].artifact
	b.mu.Unlock()
	res, name, err := compileFile(ctx, path, b.learn, current)
	b.took.Observe(time.Since(start).Seconds())
	if err == nil {
		err = atomicfile.WriteFile(filepath.Join(b.cfg.ProgramsDir, name+".paw"), res.Artifact)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	p := b.programs[file]
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			p.Status, p.LastError = "error", []APIError{{Error: "spec file removed; the last good program stays published"}}
		} else {
			p.Status, p.LastError = "error", apiErrors(err)
		}
		if p.artifact == nil {
			p.artifact, p.ID = b.published(p.Name)
		}
		b.compiles.WithLabelValues(file, "error").Inc()
		b.broken.WithLabelValues(file).Set(1)
		b.log.Error("spec does not compile; the last good program stays published", "spec", file, "published", runtime.ShortID(p.ID), "err", err)
		return
	}
	changed := p.ID != res.ID
	p.Name, p.ID, p.Status, p.LastError, p.artifact = name, res.ID, "ok", nil, res.Artifact
	p.labels, p.Learned = res.Manifest.Labels, 0
	if l := res.Manifest.Learned; l != nil {
		p.Learned = l.Answers
	}
	m := res.Manifest.Metrics
	p.Metrics, p.CompiledAt, p.Positive = &m, time.Now().UTC(), res.Manifest.Positive
	b.compiles.WithLabelValues(file, "ok").Inc()
	b.broken.WithLabelValues(file).Set(0)
	if changed {
		b.log.Info("program published", "spec", file, "program", name, "id", runtime.ShortID(res.ID), "took", time.Since(start).Round(time.Millisecond))
	}
}

// ctx is the context compiles run under.
func (b *builder) ctx() context.Context {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.runCtx
}

// publishedProgram finds a published program by name: its spec file,
// labels and ID.
func (b *builder) publishedProgram(name string) (file string, labels []string, id string, ok bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for f, p := range b.programs {
		if p.Name == name && p.artifact != nil {
			labels = p.labels
			if labels == nil {
				if a, err := runtime.DecodeArtifact(p.artifact); err == nil {
					labels = a.Manifest.Labels
				}
			}
			return f, labels, p.ID, true
		}
	}
	return "", nil, "", false
}

// published reads a program a previous run left in the programs folder.
func (b *builder) published(name string) ([]byte, string) {
	data, err := os.ReadFile(filepath.Join(b.cfg.ProgramsDir, name+".paw"))
	if err != nil {
		return nil, ""
	}
	if _, err := runtime.DecodeArtifact(data); err != nil {
		return nil, ""
	}
	return data, runtime.ArtifactID(data)
}

// compileFile compiles a spec with its answers, less a held-out share
// that the learned program must not do worse on than the published one.
func compileFile(ctx context.Context, path string, learn *learner, published []byte) (*compiler.Result, string, error) {
	spec, err := compiler.LoadSpec(path, compiler.LoadOptions{})
	if err != nil {
		return nil, "", err
	}
	learn.setSpec(spec.Name, spec.Learn)
	var held []compiler.Answer
	spec.Answers, held = holdoutAnswers(learn.answers(spec.Name))
	res, err := compiler.Compile(ctx, spec, nil)
	if err != nil {
		return nil, spec.Name, err
	}
	if err := checkLearned(res, published, held, spec.EncodersDir()); err != nil {
		return nil, spec.Name, err
	}
	return res, spec.Name, nil
}

// list returns every program, sorted by name.
func (b *builder) list() []Program {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]Program, 0, len(b.programs))
	for _, p := range b.programs {
		out = append(out, *p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// publishedIDs maps each published program to its ID.
func (b *builder) publishedIDs() map[string]string {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := map[string]string{}
	for _, p := range b.programs {
		if p.ID != "" {
			out[p.Name] = p.ID
		}
	}
	return out
}

// driftTargets lists the published programs and their positive labels.
func (b *builder) driftTargets() map[string]string {
	out := map[string]string{}
	for _, p := range b.list() {
		if p.ID != "" && p.Positive != "" {
			out[p.Name] = p.Positive
		}
	}
	return out
}

// setDrift records a program's last drift check.
func (b *builder) setDrift(name string, d metrics.Drift) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, p := range b.programs {
		if p.Name == name {
			p.Drift = &d
		}
	}
}

// artifact returns the published artifact of the named program.
func (b *builder) artifact(name string) ([]byte, string, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, p := range b.programs {
		if p.Name == name && p.artifact != nil {
			return p.artifact, p.ID, true
		}
	}
	return nil, "", false
}
