package runtime

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"

	"github.com/pawlogs/paw/internal/yamlconf"
	"github.com/pawlogs/paw/teacher"
)

// The pipeline file: its types, parsing and validation. pipeline.go runs
// one.

// PipelineConfig is a pipeline file: the programs it runs and the steps
// that turn their decisions into keep/drop, tags and a destination. The
// Kafka processor and the Fluent Bit plugin share this format.
type PipelineConfig struct {
	// ProgramsDir holds <program>.paw files; relative to the pipeline file.
	// Default: the pipeline file's folder.
	ProgramsDir string `yaml:"programs_dir,omitempty"`
	// Input overrides the programs' own input selector (see ParseInput).
	Input string `yaml:"input,omitempty"`
	// EncodersDir holds the encoders encoder-v1 programs run on, one
	// folder each; relative to the pipeline file. Default: $PAW_ENCODERS,
	// else ~/.local/share/paw/encoders.
	EncodersDir string `yaml:"encoders_dir,omitempty"`
	// Steps run in order. An explicit empty list passes every record
	// through unclassified: a baseline for measuring what the steps cost.
	Steps []Step `yaml:"steps"`
	// PatternSample groups one record in PatternSample into log patterns,
	// counted by program and label for the dashboard's pattern view.
	// Sampling keeps the miner off most of the hot path. Default: 64;
	// -1 turns it off.
	PatternSample int `yaml:"pattern_sample,omitempty"`

	file string
	doc  *yamlconf.Doc
}

// Step is one pipeline step; exactly one of its fields is set.
type Step struct {
	Filter *FilterStep `yaml:"filter,omitempty"`
	Tag    *TagStep    `yaml:"tag,omitempty"`
	Route  *RouteStep  `yaml:"route,omitempty"`
	Grep   *GrepStep   `yaml:"grep,omitempty"`
}

// GrepStep keeps the records whose text matches Regex, or drops those that
// match Exclude, as Fluent Bit's grep filter does; no program runs. It is
// the rule a program replaces: a cheap pre-filter, and the baseline the
// benchmarks measure paw against. Go's regexp runs in time linear in the
// text, whatever the pattern.
type GrepStep struct {
	Regex   string `yaml:"regex,omitempty"`
	Exclude string `yaml:"exclude,omitempty"`
	re      *regexp.Regexp
}

// DroppedByGrep is an Outcome's DroppedBy when a grep step dropped the
// record; program names cannot contain the colon.
const DroppedByGrep = "step:grep"

// maxGrepPattern bounds a grep step's pattern: its compiled program grows
// with it.
const maxGrepPattern = 4096

// keeps reports whether the step lets text through.
func (g *GrepStep) keeps(text []byte) bool {
	return g.re.Match(text) == (g.Regex != "")
}

// FilterStep keeps a record when the program's probability of one of Keep
// is at least MinScore (or, with MinScore 0, when its decision is in Keep).
type FilterStep struct {
	Program  string    `yaml:"program"`
	Keep     []string  `yaml:"keep"`
	MinScore float64   `yaml:"min_score,omitempty"`
	Escalate *Escalate `yaml:"escalate,omitempty"`
}

// Escalate is a confidence cascade for a step's decisions scoring below
// Below. To is either a review destination (a Kafka topic for paw process,
// file://PATH for out_paw), which gets a copy while the local decision
// stands, or "teacher": the teacher endpoint is asked, within a hard
// budget, and its answer replaces the decision.
type Escalate struct {
	Below float64 `yaml:"below,omitempty"`
	// NovelAbove also escalates decisions whose novelty is above it: a
	// line unlike anything the program was trained on goes to review or
	// to the teacher even when its score is high. 0: off.
	NovelAbove float64            `yaml:"novel_above,omitempty"`
	To         string             `yaml:"to"`
	Teacher    *TeacherEscalation `yaml:"teacher,omitempty"`
}

// Escalation is one low-confidence decision sent for review.
type Escalation struct {
	Program, Label, To string
	Score, Novelty     float32
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
	Escalate *Escalate         `yaml:"escalate,omitempty"`
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
	if c.Steps == nil {
		doc.At("$", "steps: at least one step is required (`steps: []` passes records through unclassified)")
	}
	if err := ValidateInput(c.Input); err != nil {
		doc.At("$.input", "input: %v", err)
	}
	if c.PatternSample < -1 {
		doc.At("$.pattern_sample", "pattern_sample %d: want a count >= 1, 0 for the default or -1 for off", c.PatternSample)
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
			validateEscalate(doc, p+".filter.escalate", s.Filter.Escalate)
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
			validateEscalate(doc, p+".route.escalate", s.Route.Escalate)
			if s.Route.Default == "" {
				doc.At(p+".route", "route.default is required: where records with an unrouted label go")
			}
			if routes > 1 {
				doc.At(p+".route", "only one route step is allowed")
			}
		}
		if s.Grep != nil {
			n++
			validateGrep(doc, p+".grep", s.Grep)
		}
		if n != 1 {
			doc.At(p, "a step has exactly one of filter, tag, route or grep (found %d)", n)
		}
	}
	if err := doc.Err(); err != nil {
		return nil, err
	}
	return &c, nil
}

func validateGrep(doc *yamlconf.Doc, path string, g *GrepStep) {
	pattern, key := g.Regex, "regex"
	if g.Exclude != "" {
		pattern, key = g.Exclude, "exclude"
	}
	var err error
	switch {
	case (g.Regex == "") == (g.Exclude == ""):
		doc.At(path, "grep needs one of regex (keep what matches) or exclude (drop what matches)")
	case len(pattern) > maxGrepPattern:
		doc.At(path+"."+key, "grep.%s is %d bytes; the limit is %d", key, len(pattern), maxGrepPattern)
	default:
		if g.re, err = regexp.Compile(pattern); err != nil {
			doc.At(path+"."+key, "grep.%s: %v", key, err)
		}
	}
}

func validateEscalate(doc *yamlconf.Doc, path string, e *Escalate) {
	if e == nil {
		return
	}
	switch {
	case e.Below == 0 && e.NovelAbove == 0:
		doc.At(path, "escalate needs below (a score) or novel_above (a novelty), or both")
	case e.Below < 0 || e.Below > 1:
		doc.At(path+".below", "escalate.below %v must be in (0, 1]", e.Below)
	case e.NovelAbove < 0 || e.NovelAbove >= 1:
		doc.At(path+".novel_above", "escalate.novel_above %v must be in [0, 1)", e.NovelAbove)
	}
	if e.To == "" {
		doc.At(path, "escalate.to is required: where low-confidence records go for review, or teacher")
	}
	t := e.Teacher
	if t == nil {
		return
	}
	if e.To != EscalateToTeacher {
		doc.At(path+".teacher", "escalate.teacher configures to: teacher, but to is %q", e.To)
	}
	if msg := t.CheckURL(); t.BaseURL != "" && msg != "" {
		doc.At(path+".teacher.base_url", "escalate.teacher.base_url %s", msg)
	}
	for _, key := range t.Calls.OutOfRange(
		teacher.Check{Key: "calls_per_second", Bad: t.CallsPerSecond < 0},
		teacher.Check{Key: "max_calls", Bad: t.MaxCalls < 0},
		teacher.Check{Key: "remember", Bad: t.Remember < 0},
	) {
		doc.At(path+".teacher."+key, "escalate.teacher.%s is out of range", key)
	}
}

// EscalationDestinations lists the review destinations, sorted; the
// teacher is not one.
func (c *PipelineConfig) EscalationDestinations() []string {
	set := map[string]bool{}
	for _, s := range c.Steps {
		if e := s.escalate(); e != nil && e.To != EscalateToTeacher {
			set[e.To] = true
		}
	}
	return slices.Sorted(maps.Keys(set))
}

// escalate returns the step's cascade, if it has one.
func (s Step) escalate() *Escalate {
	switch {
	case s.Filter != nil:
		return s.Filter.Escalate
	case s.Route != nil:
		return s.Route.Escalate
	}
	return nil
}

// program is the program a filter or route step decides with.
func (s Step) program() string {
	switch {
	case s.Filter != nil:
		return s.Filter.Program
	case s.Route != nil:
		return s.Route.Program
	}
	return ""
}

// ProgramNames lists the programs the steps use, sorted.
func (c *PipelineConfig) ProgramNames() []string {
	set := map[string]bool{}
	for _, s := range c.Steps {
		if s.Tag != nil {
			for _, p := range s.Tag.Programs {
				set[p] = true
			}
		} else if p := s.program(); p != "" {
			set[p] = true
		}
	}
	return slices.Sorted(maps.Keys(set))
}

// Destinations lists every destination the route step can choose, sorted;
// empty without a route step.
func (c *PipelineConfig) Destinations() []string {
	set := map[string]bool{}
	for _, s := range c.Steps {
		if s.Route == nil {
			continue
		}
		set[s.Route.Default] = true
		for _, d := range s.Route.Routes {
			set[d] = true
		}
	}
	return slices.Sorted(maps.Keys(set))
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

// checkLabels validates every label the steps name against the loaded
// programs' labels.
func (c *PipelineConfig) checkLabels(labels map[string][]string) error {
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
				for _, l := range slices.Sorted(maps.Keys(s.Route.Routes)) {
					if !slices.Contains(labels[s.Route.Program], l) {
						doc.At(p+".route.routes."+l, "program %s has no label %q (labels: %v)", s.Route.Program, l, labels[s.Route.Program])
					}
				}
			}
		}
	}
	return doc.Err()
}

// programPath is where a pipeline reads the named program from.
func (c *PipelineConfig) programPath(name string) string {
	return filepath.Join(c.Dir(), name+".paw")
}

// newNamed prepares an artifact that must hold the named program.
