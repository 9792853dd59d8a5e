package runtime

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"

	"github.com/pawlogs/paw/internal/yamlconf"
)

// PipelineConfig is a pipeline file: the programs it runs and the steps
// that turn their decisions into keep/drop, tags and a destination. The
// Kafka processor and the Fluent Bit plugin share this format.
type PipelineConfig struct {
	// ProgramsDir holds <program>.paw files; relative to the pipeline file.
	// Default: the pipeline file's folder.
	ProgramsDir string `yaml:"programs_dir,omitempty"`
	// Input overrides the programs' own input selector (see ParseInput).
	Input string `yaml:"input,omitempty"`
	// Steps run in order.
	Steps []Step `yaml:"steps"`

	file string
	doc  *yamlconf.Doc
}

// Step is one pipeline step; exactly one of its fields is set.
type Step struct {
	Filter *FilterStep `yaml:"filter,omitempty"`
	Tag    *TagStep    `yaml:"tag,omitempty"`
	Route  *RouteStep  `yaml:"route,omitempty"`
}

// FilterStep keeps a record when the program's probability of one of Keep
// is at least MinScore (or, with MinScore 0, when its decision is in Keep).
type FilterStep struct {
	Program  string   `yaml:"program"`
	Keep     []string `yaml:"keep"`
	MinScore float64  `yaml:"min_score,omitempty"`
}

// TagStep adds <program>.label and <program>.score for each program.
type TagStep struct {
	Programs []string `yaml:"programs"`
}

// RouteStep maps the program's label to a destination name. A decision
// scoring below MinScore, or with a label not in Routes, goes to Default.
type RouteStep struct {
	Program  string            `yaml:"program"`
	Routes   map[string]string `yaml:"routes"`
	Default  string            `yaml:"default"`
	MinScore float64           `yaml:"min_score,omitempty"`
}

// LoadPipelineConfig reads and validates a pipeline file's syntax. Program
// labels are checked when the programs are loaded (Open).
func LoadPipelineConfig(path string) (*PipelineConfig, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read pipeline: %w", err)
	}
	return ParsePipelineConfig(path, data)
}

// ParsePipelineConfig validates pipeline bytes; file names them in errors.
func ParsePipelineConfig(file string, data []byte) (*PipelineConfig, error) {
	var c PipelineConfig
	doc, err := yamlconf.Decode(file, data, &c)
	if err != nil {
		return nil, err
	}
	c.file, c.doc = file, doc
	if len(c.Steps) == 0 {
		doc.At("$", "steps: at least one step is required")
	}
	if err := ValidateInput(c.Input); err != nil {
		doc.At("$.input", "input: %v", err)
	}
	routes := 0
	for i, s := range c.Steps {
		p := fmt.Sprintf("$.steps[%d]", i)
		n := 0
		if s.Filter != nil {
			n++
			if s.Filter.Program == "" {
				doc.At(p+".filter", "filter.program is required")
			}
			if len(s.Filter.Keep) == 0 {
				doc.At(p+".filter", "filter.keep needs at least one label")
			}
			if s.Filter.MinScore < 0 || s.Filter.MinScore > 1 {
				doc.At(p+".filter.min_score", "filter.min_score %v must be between 0 and 1", s.Filter.MinScore)
			}
		}
		if s.Tag != nil {
			n++
			if len(s.Tag.Programs) == 0 {
				doc.At(p+".tag", "tag.programs needs at least one program")
			}
		}
		if s.Route != nil {
			n++
			routes++
			if s.Route.Program == "" {
				doc.At(p+".route", "route.program is required")
			}
			if s.Route.MinScore < 0 || s.Route.MinScore > 1 {
				doc.At(p+".route.min_score", "route.min_score %v must be between 0 and 1", s.Route.MinScore)
			}
			if s.Route.Default == "" {
				doc.At(p+".route", "route.default is required: where records with an unrouted label go")
			}
			if routes > 1 {
				doc.At(p+".route", "only one route step is allowed")
			}
		}
		if n != 1 {
			doc.At(p, "a step has exactly one of filter, tag or route (found %d)", n)
		}
	}
	if err := doc.Err(); err != nil {
		return nil, err
	}
	return &c, nil
}

// ProgramNames lists the programs the steps use, sorted.
func (c *PipelineConfig) ProgramNames() []string {
	set := map[string]bool{}
	for _, s := range c.Steps {
		switch {
		case s.Filter != nil:
			set[s.Filter.Program] = true
		case s.Tag != nil:
			for _, p := range s.Tag.Programs {
				set[p] = true
			}
		case s.Route != nil:
			set[s.Route.Program] = true
		}
	}
	names := make([]string, 0, len(set))
	for n := range set {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Dir resolves the programs folder.
func (c *PipelineConfig) Dir() string {
	base := filepath.Dir(c.file)
	switch {
	case c.ProgramsDir == "":
		return base
	case filepath.IsAbs(c.ProgramsDir):
		return c.ProgramsDir
	}
	return filepath.Join(base, c.ProgramsDir)
}

// CheckLabels validates every label the steps name against the loaded
// programs' labels.
func (c *PipelineConfig) CheckLabels(labels map[string][]string) error {
	doc := c.doc
	if doc == nil {
		doc = &yamlconf.Doc{File: c.file}
	}
	doc.Errs = nil
	known := func(path, prog string) bool {
		if _, ok := labels[prog]; !ok {
			doc.At(path, "program %q is not loaded", prog)
			return false
		}
		return true
	}
	for i, s := range c.Steps {
		p := fmt.Sprintf("$.steps[%d]", i)
		switch {
		case s.Filter != nil:
			if known(p+".filter.program", s.Filter.Program) {
				for j, l := range s.Filter.Keep {
					if !slices.Contains(labels[s.Filter.Program], l) {
						doc.At(fmt.Sprintf("%s.filter.keep[%d]", p, j), "program %s has no label %q (labels: %v)", s.Filter.Program, l, labels[s.Filter.Program])
					}
				}
			}
		case s.Tag != nil:
			for j, prog := range s.Tag.Programs {
				known(fmt.Sprintf("%s.tag.programs[%d]", p, j), prog)
			}
		case s.Route != nil:
			if known(p+".route.program", s.Route.Program) {
				for _, l := range sortedKeys(s.Route.Routes) {
					if !slices.Contains(labels[s.Route.Program], l) {
						doc.At(p+".route.routes."+l, "program %s has no label %q (labels: %v)", s.Route.Program, l, labels[s.Route.Program])
					}
				}
			}
		}
	}
	return doc.Err()
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Tag is one program's decision attached to a record.
type Tag struct {
	Program string
	ID      string
	Label   string
	Score   float32
}

// Outcome is what a pipeline decided for one record.
type Outcome struct {
	// Err is set when the record could not be classified (its input could
	// not be extracted); such records belong in a dead-letter destination.
	Err error
	// Keep is false when a filter dropped the record.
	Keep bool
	// DroppedBy names the filtering program when Keep is false.
	DroppedBy string
	// Tags are the tag steps' decisions, in step order.
	Tags []Tag
	// Destination is the route step's choice ("" without a route step).
	Destination string
}

// Pipeline runs a PipelineConfig's steps over records.
type Pipeline struct {
	cfg     *PipelineConfig
	set     *ProgramSet
	batcher *Batcher
	input   *Input
	index   map[string]int // program name -> position in results
}

// PipelineOptions are the run-time settings of a pipeline.
type PipelineOptions struct {
	Program ProgramOptions
	Batcher BatcherConfig
}

// OpenPipeline loads the config's programs from its programs folder and
// starts a batcher for them.
func OpenPipeline(env *Env, cfg *PipelineConfig, opts PipelineOptions) (*Pipeline, error) {
	var progs []*Program
	closeAll := func() {
		for _, p := range progs {
			p.Close()
		}
	}
	for _, name := range cfg.ProgramNames() {
		p, err := LoadProgram(env, filepath.Join(cfg.Dir(), name+".paw"), opts.Program)
		if err != nil {
			closeAll()
			return nil, err
		}
		if p.Name() != name {
			closeAll()
			p.Close()
			return nil, fmt.Errorf("program file %s.paw holds program %q", name, p.Name())
		}
		progs = append(progs, p)
	}
	pl, err := NewPipeline(cfg, progs, opts.Batcher)
	if err != nil {
		closeAll()
		return nil, err
	}
	return pl, nil
}

// NewPipeline runs cfg's steps with already loaded programs. The pipeline
// takes ownership of them: Close closes them.
func NewPipeline(cfg *PipelineConfig, progs []*Program, bc BatcherConfig) (*Pipeline, error) {
	labels := map[string][]string{}
	for _, p := range progs {
		labels[p.Name()] = p.Labels()
	}
	if err := cfg.CheckLabels(labels); err != nil {
		return nil, err
	}
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
	set, err := NewProgramSet(progs...)
	if err != nil {
		return nil, err
	}
	b, err := NewBatcher(set, bc)
	if err != nil {
		return nil, err
	}
	pl := &Pipeline{cfg: cfg, set: set, batcher: b, input: in, index: map[string]int{}}
	for i, p := range progs {
		pl.index[p.Name()] = i
	}
	return pl, nil
}

// Input is the selector records are read with.
func (pl *Pipeline) Input() *Input { return pl.input }

// Programs returns the loaded programs.
func (pl *Pipeline) Programs() []*Program { return pl.set.Programs() }

// Process classifies raw records and applies the steps. Records whose input
// cannot be extracted get an Outcome with Err set; the others are scored.
func (pl *Pipeline) Process(ctx context.Context, records [][]byte) ([]Outcome, error) {
	texts := make([][]byte, 0, len(records))
	outs := make([]Outcome, len(records))
	for i, r := range records {
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
	results, err := pl.batcher.Classify(ctx, texts...)
	if err != nil {
		return err
	}
	j := 0
	for i := range outs {
		if outs[i].Err != nil {
			continue
		}
		outs[i] = pl.Apply(&results[j])
		j++
	}
	return nil
}

// Apply runs the steps over one record's decisions.
func (pl *Pipeline) Apply(r *Result) Outcome {
	o := Outcome{Keep: true}
	for _, s := range pl.cfg.Steps {
		switch {
		case s.Filter != nil:
			d := r.Decisions[pl.index[s.Filter.Program]]
			if !pl.keeps(s.Filter, d) {
				return Outcome{Keep: false, DroppedBy: s.Filter.Program, Tags: o.Tags}
			}
		case s.Tag != nil:
			for _, name := range s.Tag.Programs {
				d := r.Decisions[pl.index[name]]
				o.Tags = append(o.Tags, Tag{Program: name, ID: d.ID, Label: d.Label, Score: d.Score})
			}
		case s.Route != nil:
			d := r.Decisions[pl.index[s.Route.Program]]
			if dest, ok := s.Route.Routes[d.Label]; ok && float64(d.Score) >= s.Route.MinScore {
				o.Destination = dest
			} else {
				o.Destination = s.Route.Default
			}
		}
	}
	return o
}

func (pl *Pipeline) keeps(f *FilterStep, d Decision) bool {
	if f.MinScore == 0 {
		return slices.Contains(f.Keep, d.Label)
	}
	p := pl.set.programs[pl.index[f.Program]]
	for _, l := range f.Keep {
		if i := slices.Index(p.Labels(), l); i >= 0 && float64(d.Probs[i]) >= f.MinScore {
			return true
		}
	}
	return false
}

// Close stops the batcher. Programs opened by OpenPipeline are closed too.
func (pl *Pipeline) Close() error {
	pl.batcher.Close()
	var errs []error
	for _, p := range pl.set.programs {
		errs = append(errs, p.Close())
	}
	return errors.Join(errs...)
}
