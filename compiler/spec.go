// Package compiler turns a YAML spec of a fuzzy function into a .paw
// program: it validates the spec, trains a hashnet-v1 model in pure Go,
// calibrates it, checks it against the spec's tests and writes the artifact.
package compiler

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/pawlogs/paw/internal/bounded"
	"github.com/pawlogs/paw/internal/yamlconf"
	"github.com/pawlogs/paw/runtime"
	"github.com/pawlogs/paw/teacher"
)

// Spec is a fuzzy function's definition.
type Spec struct {
	// Name is the program's slug; tags and routes refer to it.
	Name string `yaml:"name" json:"name"`
	// Description is the natural-language task.
	Description string `yaml:"description" json:"description"`
	// Labels are the outputs; at least two. In YAML, labels is a list, or
	// a map from each label to a short description of it.
	Labels []string `yaml:"-" json:"labels"`
	// LabelDescriptions describe labels in words; the compiler turns them,
	// and Description, into weak evidence for each label. Optional.
	LabelDescriptions map[string]string `yaml:"-" json:"label_descriptions,omitempty"`
	// labels is the YAML form of Labels and LabelDescriptions.
	LabelsYAML labelsYAML `yaml:"labels" json:"-"`
	// Positive is, for a binary filter, the label it keeps.
	Positive string `yaml:"positive,omitempty" json:"positive,omitempty"`
	// Input says which part of a record is read: a dotted JSON field path or
	// a Go template. Empty: the whole line.
	Input string `yaml:"input,omitempty" json:"input,omitempty"`
	// Examples train the program.
	Examples []Example `yaml:"examples,omitempty" json:"examples,omitempty"`
	// ExamplesFile is a JSONL file of {text, label}, relative to the spec.
	ExamplesFile string `yaml:"examples_file,omitempty" json:"examples_file,omitempty"`
	// Teacher labels SamplesFile at compile time; the program is trained on
	// its labels and the examples, examples winning where they disagree.
	Teacher *TeacherConfig `yaml:"teacher,omitempty" json:"teacher,omitempty"`
	// SamplesFile holds unlabelled lines (JSONL or plain text), relative to
	// the spec, from where the program will run: a teacher labels them, and
	// without a teacher (or base_rates) they estimate the base rates.
	SamplesFile string `yaml:"samples_file,omitempty" json:"samples_file,omitempty"`
	// BaseRates are each label's share where the program runs. Scores and
	// decisions use them instead of the balanced training mix. Default:
	// estimated from samples_file (without a teacher), else the training
	// mix.
	BaseRates map[string]float64 `yaml:"base_rates,omitempty" json:"base_rates,omitempty"`
	// Samples are unlabelled lines given in code, as samples_file's are
	// (samples_file wins).
	Samples []string `yaml:"-" json:"-"`
	// Answers are labels given after compile time (an answer log); they
	// train the program beside the examples, which win.
	Answers []Answer `yaml:"-" json:"-"`
	// Learn says when the sidecar compiles the program again with its new
	// answers; zero values take the sidecar's settings.
	Learn *LearnConfig `yaml:"learn,omitempty" json:"learn,omitempty"`
	// Tests are never trained on.
	Tests []Example `yaml:"tests,omitempty" json:"tests,omitempty"`
	// MinTestAccuracy fails compilation when tests score below it.
	MinTestAccuracy *float64 `yaml:"min_test_accuracy,omitempty" json:"min_test_accuracy,omitempty"`
	// Interpreter names the program kind: hashnet-v1 (default) or
	// encoder-v1, which needs Encoder.
	Interpreter string `yaml:"interpreter,omitempty" json:"interpreter,omitempty"`
	// Encoder is the frozen encoder of an encoder-v1 program.
	Encoder *EncoderSpec `yaml:"encoder,omitempty" json:"encoder,omitempty"`
	// Options tune training and featurization.
	Options Options `yaml:"options,omitempty" json:"options,omitempty"`

	samplesPath string // samples_file, resolved
	encoderPath string // the encoder's folder, resolved
}

// LearnConfig is a spec's learn key.
type LearnConfig struct {
	// MinNewAnswers new answers start a recompile.
	MinNewAnswers int `yaml:"min_new_answers,omitempty" json:"min_new_answers,omitempty"`
	// Interval is the least time between two learned recompiles.
	Interval time.Duration `yaml:"interval,omitempty" json:"interval,omitempty"`
}

// Example is one labelled text.
type Example struct {
	Text  string `yaml:"text" json:"text"`
	Label string `yaml:"label" json:"label"`
}

// Options tune compilation. Zero values take the defaults named in
// TrainOptions and runtime.FeaturizerConfig.
type Options struct {
	Seed             uint64  `yaml:"seed,omitempty" json:"seed,omitempty"`
	Epochs           int     `yaml:"epochs,omitempty" json:"epochs,omitempty"`
	Dim              int     `yaml:"dim,omitempty" json:"dim,omitempty"`
	LearningRate     float64 `yaml:"learning_rate,omitempty" json:"learning_rate,omitempty"`
	L2               float64 `yaml:"l2,omitempty" json:"l2,omitempty"`
	BatchSize        int     `yaml:"batch_size,omitempty" json:"batch_size,omitempty"`
	CalibrationFolds int     `yaml:"calibration_folds,omitempty" json:"calibration_folds,omitempty"`
	BucketBits       int     `yaml:"bucket_bits,omitempty" json:"bucket_bits,omitempty"`
	MaxBytes         int     `yaml:"max_bytes,omitempty" json:"max_bytes,omitempty"`
	MaxFeatures      int     `yaml:"max_features,omitempty" json:"max_features,omitempty"`
	WordNgrams       int     `yaml:"word_ngrams,omitempty" json:"word_ngrams,omitempty"`
	// CharNgrams: 0 takes the default; -1 disables character n-grams.
	CharNgrams int `yaml:"char_ngrams,omitempty" json:"char_ngrams,omitempty"`
	// DescriptionWeight is a label description's pseudo-examples' weight,
	// against 1 for a real example. Default: DefaultDescriptionWeight.
	DescriptionWeight float64 `yaml:"description_weight,omitempty" json:"description_weight,omitempty"`
}

// DefaultCalibrationFolds is how many held-out folds fit the temperature.
const DefaultCalibrationFolds = 5

// Limits on spec size, so a spec cannot make the compiler allocate without
// bound.
const (
	MaxSpecBytes = 8 << 20
	// MaxEmbeddingValues caps a hashnet's table (2^bucket_bits × dim
	// float32s, 64 MiB): the compiler holds it dense, with Adam's moments
	// for the touched rows only, and every interpreter loads it.
	MaxEmbeddingValues = 1 << 24
	MaxExamples        = 200000
	maxExampleLength   = 64 << 10
)

// LoadOptions control how a spec may reach other files.
type LoadOptions struct {
	// AllowOutside lets examples_file leave the spec's folder.
	AllowOutside bool
	// NoFiles refuses examples_file entirely (specs received over a network).
	NoFiles bool
}

// LoadSpec reads and validates a spec file. Validation errors come back as
// yamlconf.Errors with file:line:column.
func LoadSpec(path string, opts LoadOptions) (*Spec, error) {
	data, err := bounded.ReadFile(path, MaxSpecBytes)
	if err != nil {
		return nil, fmt.Errorf("read spec: %w", err)
	}
	return ParseSpec(path, data, opts)
}

// ParseSpec validates spec bytes; file names the source in errors and
// anchors examples_file. Problems come back as yamlconf.Errors.
func ParseSpec(file string, data []byte, opts LoadOptions) (*Spec, error) {
	if len(data) > MaxSpecBytes {
		return nil, yamlconf.Errors{{File: file, Line: 1, Column: 1, Msg: fmt.Sprintf("spec is larger than %d bytes", MaxSpecBytes)}}
	}
	var s Spec
	doc, err := yamlconf.Decode(file, data, &s)
	if err != nil {
		return nil, err
	}
	s.Labels, s.LabelDescriptions = s.LabelsYAML.names, s.LabelsYAML.descriptions
	s.validate(doc, opts)
	if err := doc.Err(); err != nil {
		return nil, err
	}
	return &s, nil
}

var slugRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)
var labelRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$`)

func (s *Spec) validate(v *yamlconf.Doc, opts LoadOptions) {
	switch {
	case s.Name == "":
		v.At("$", "name is required")
	case !slugRE.MatchString(s.Name):
		v.At("$.name", "name %q must be a slug: lower-case letters, digits, '-' and '_', at most 63", s.Name)
	}
	if strings.TrimSpace(s.Description) == "" {
		v.At("$", "description is required: it says, in words, what the function decides")
	}
	if len(s.Labels) < 2 {
		v.At("$", "labels needs at least 2 entries")
	}
	if len(s.Labels) > runtime.MaxLabels {
		v.At("$.labels", "%d labels: at most %d", len(s.Labels), runtime.MaxLabels)
	}
	for _, l := range s.Labels {
		if d, ok := s.LabelDescriptions[l]; ok && strings.TrimSpace(d) == "" {
			v.At("$.labels."+l, "label %q has an empty description: describe it in words, or use the list form", l)
		}
	}
	declared := map[string]bool{}
	for i, l := range s.Labels {
		p := fmt.Sprintf("$.labels[%d]", i)
		switch {
		case !labelRE.MatchString(l):
			v.At(p, "label %q must be letters, digits, '_', '.' or '-'", l)
		case declared[l]:
			v.At(p, "label %q is declared twice", l)
		}
		declared[l] = true
	}
	if s.Positive != "" && !declared[s.Positive] {
		v.At("$.positive", "positive label %q is not one of the labels %v", s.Positive, s.Labels)
	}
	if err := runtime.ValidateInput(s.Input); err != nil {
		v.At("$.input", "input: %v", err)
	}
	if s.Interpreter == "" {
		s.Interpreter = runtime.InterpreterHashnetV1
	}
	s.validateEncoder(v, opts)
	if s.MinTestAccuracy != nil {
		if a := *s.MinTestAccuracy; a < 0 || a > 1 {
			v.At("$.min_test_accuracy", "min_test_accuracy %v must be between 0 and 1", a)
		} else if len(s.Tests) == 0 {
			v.At("$.min_test_accuracy", "min_test_accuracy is set but there are no tests")
		}
	}
	s.Options.validate(v)
	s.validateTeacher(v, opts)
	s.validateBaseRates(v)
	if l := s.Learn; l != nil && (l.MinNewAnswers < 0 || l.MinNewAnswers > 1_000_000 || l.Interval < 0) {
		v.At("$.learn", "learn: min_new_answers 0..1000000 and a non-negative interval")
	}

	// Inline examples, then the file's; every one gets a location for
	// later messages.
	type located struct {
		Example
		file       string
		line, col  int
		path, what string
	}
	var all []located
	fileErrs := 0
	for i, e := range s.Examples {
		all = append(all, located{Example: e, file: v.File, path: fmt.Sprintf("$.examples[%d]", i), what: "example"})
	}
	if s.ExamplesFile != "" {
		exs, errs := s.readExamplesFile(v, opts)
		fileErrs = len(errs)
		for _, e := range errs {
			v.Add(e)
		}
		for _, e := range exs {
			all = append(all, located{Example: e.Example, file: e.file, line: e.line, col: 1, what: "example"})
		}
		s.Examples = append(s.Examples, exampleValues(exs)...)
		s.ExamplesFile = ""
	}
	if len(all) == 0 && fileErrs == 0 && !s.describesEveryLabel() { // an unreadable examples_file says so already
		v.At("$", "no examples: give examples or examples_file, or describe every label (labels: {label: description, ...})")
	}
	if len(all) > MaxExamples {
		v.At("$", "%d examples: at most %d", len(all), MaxExamples)
	}
	for i, e := range s.Tests {
		all = append(all, located{Example: e, file: v.File, path: fmt.Sprintf("$.tests[%d]", i), what: "test"})
	}
	report := func(l located, field, format string, args ...any) {
		if l.path != "" {
			v.At(l.path+field, format, args...)
			return
		}
		v.Add(&yamlconf.Error{File: l.file, Line: l.line, Column: l.col, Msg: fmt.Sprintf(format, args...)})
	}
	counts := map[string]int{}
	trainLabel := map[string]string{}
	for _, l := range all {
		switch {
		case strings.TrimSpace(l.Text) == "":
			report(l, ".text", "%s text is empty", l.what)
			continue
		case len(l.Text) > maxExampleLength:
			report(l, ".text", "%s text is %d bytes, at most %d", l.what, len(l.Text), maxExampleLength)
			continue
		case l.Label == "":
			report(l, "", "%s has no label", l.what)
			continue
		case !declared[l.Label]:
			report(l, ".label", "label %q is not declared in labels %v", l.Label, s.Labels)
			continue
		}
		if l.what == "example" {
			counts[l.Label]++
			if prev, ok := trainLabel[l.Text]; ok && prev != l.Label {
				report(l, ".label", "example text appears with two labels, %q and %q", prev, l.Label)
			}
			trainLabel[l.Text] = l.Label
		} else if _, ok := trainLabel[l.Text]; ok {
			report(l, ".text", "test text is also an example; tests must be unseen")
		}
	}
	for i, l := range s.Labels {
		if declared[l] && len(all) > 0 && counts[l] < 2 && s.LabelDescriptions[l] == "" {
			v.At(fmt.Sprintf("$.labels[%d]", i), "label %q has %d example%s, needs at least 2", l, counts[l], plural(counts[l]))
		}
	}
}

func (o *Options) validate(v *yamlconf.Doc) {
	check := func(key string, val, lo, hi int) {
		if val != 0 && (val < lo || val > hi) {
			v.At("$.options."+key, "options.%s %d: want %d..%d", key, val, lo, hi)
		}
	}
	check("epochs", o.Epochs, 1, 10000)
	check("dim", o.Dim, 1, 256)
	check("batch_size", o.BatchSize, 1, 1<<16)
	check("calibration_folds", o.CalibrationFolds, 2, 20)
	check("bucket_bits", o.BucketBits, 8, 22)
	check("max_bytes", o.MaxBytes, 16, 1<<20)
	check("max_features", o.MaxFeatures, 1, 4096)
	check("word_ngrams", o.WordNgrams, 1, 4)
	check("char_ngrams", o.CharNgrams, -1, 8)
	bits, dim := o.BucketBits, o.Dim
	if bits == 0 {
		bits = runtime.DefaultBucketBits
	}
	if dim == 0 {
		dim = DefaultDim
	}
	if bits >= 8 && bits <= 22 && dim >= 1 && dim <= 256 && (1<<bits)*dim > MaxEmbeddingValues {
		v.At("$.options", "options: 2^bucket_bits × dim = %d embedding values, more than the %d allowed (%d MiB); lower bucket_bits or dim", (1<<bits)*dim, MaxEmbeddingValues, MaxEmbeddingValues*4>>20)
	}
	if o.LearningRate < 0 || o.LearningRate > 10 {
		v.At("$.options.learning_rate", "options.learning_rate %v: want 0..10", o.LearningRate)
	}
	if o.DescriptionWeight < 0 || o.DescriptionWeight > 10 {
		v.At("$.options.description_weight", "options.description_weight %v: want 0..10", o.DescriptionWeight)
	}
	if o.L2 < 0 || o.L2 > 1 {
		v.At("$.options.l2", "options.l2 %v: want 0..1", o.L2)
	}
}

type fileExample struct {
	Example
	file string
	line int
}

func exampleValues(es []fileExample) []Example {
	out := make([]Example, len(es))
	for i, e := range es {
		out[i] = e.Example
	}
	return out
}

// resolveSpecFile resolves a file a spec names, refusing paths that leave
// the spec's folder (symlinks included) unless allowed; msg says why not.
func resolveSpecFile(specFile, key, rel string, opts LoadOptions) (path, msg string) {
	if opts.NoFiles {
		return "", key + " is not allowed here: inline the data"
	}
	if filepath.IsAbs(rel) && !opts.AllowOutside {
		return "", fmt.Sprintf("%s %q is absolute: give a path inside the spec's folder (or allow outside paths)", key, rel)
	}
	dir := filepath.Dir(specFile)
	path = rel
	if !filepath.IsAbs(rel) {
		path = filepath.Join(dir, rel)
	}
	if !opts.AllowOutside {
		r, err := filepath.Rel(dir, path)
		if err != nil || r == ".." || strings.HasPrefix(r, ".."+string(filepath.Separator)) {
			return "", fmt.Sprintf("%s %q leaves the spec's folder (use --allow-outside to permit)", key, rel)
		}
		// A symlink could still lead out; resolve and check again.
		if real, err := filepath.EvalSymlinks(path); err == nil {
			if realDir, err := filepath.EvalSymlinks(dir); err == nil {
				if r, err := filepath.Rel(realDir, real); err != nil || r == ".." || strings.HasPrefix(r, ".."+string(filepath.Separator)) {
					return "", fmt.Sprintf("%s %q resolves outside the spec's folder (use --allow-outside to permit)", key, rel)
				}
			}
		}
	}
	return path, ""
}

func (s *Spec) validateTeacher(v *yamlconf.Doc, opts LoadOptions) {
	t := s.Teacher
	switch {
	case t == nil && s.SamplesFile != "":
		s.resolveSamples(v, opts) // for base-rate estimation
		return
	case t == nil:
		return
	case s.SamplesFile == "":
		v.At("$.teacher", "teacher needs samples_file: the unlabelled lines it labels")
	}
	if msg := t.CheckURL(); msg != "" {
		v.At("$.teacher.base_url", "teacher.base_url %s", msg)
	}
	if t.Model == "" {
		v.At("$.teacher", "teacher.model is required")
	}
	for _, key := range t.Calls.OutOfRange(
		teacher.Check{Key: "sample_size", Bad: t.SampleSize < 0 || t.SampleSize > 1_000_000},
		teacher.Check{Key: "holdout", Bad: t.Holdout < 0 || t.Holdout >= 1},
		teacher.Check{Key: "max_teacher_calls", Bad: t.MaxCalls < 0},
		teacher.Check{Key: "rate_per_second", Bad: t.RatePerSecond < 0},
	) {
		v.At("$.teacher."+key, "teacher.%s is out of range", key)
	}
	s.resolveSamples(v, opts)
}

// resolveSamples checks samples_file and records its path.
func (s *Spec) resolveSamples(v *yamlconf.Doc, opts LoadOptions) {
	if s.SamplesFile == "" {
		return
	}
	path, msg := resolveSpecFile(v.File, "samples_file", s.SamplesFile, opts)
	if msg != "" {
		v.At("$.samples_file", "%s", msg)
		return
	}
	if _, err := os.Stat(path); err != nil {
		v.At("$.samples_file", "samples_file %q cannot be read: %v", s.SamplesFile, err)
	}
	s.samplesPath = path
}

// validateBaseRates: every label once, each in (0, 1), summing to 1.
func (s *Spec) validateBaseRates(v *yamlconf.Doc) {
	if s.BaseRates == nil {
		return
	}
	sum := 0.0
	for _, l := range slices.Sorted(maps.Keys(s.BaseRates)) {
		r := s.BaseRates[l]
		if !slices.Contains(s.Labels, l) {
			v.At("$.base_rates."+l, "base_rates names %q, which is not one of the labels %v", l, s.Labels)
			continue
		}
		if !(r > 0 && r < 1) {
			v.At("$.base_rates."+l, "base_rates.%s %v: want a share between 0 and 1 (exclusive)", l, r)
		}
		sum += r
	}
	for _, l := range s.Labels {
		if _, ok := s.BaseRates[l]; !ok {
			v.At("$.base_rates", "base_rates has no rate for label %q: give every label one", l)
		}
	}
	if math.Abs(sum-1) > 1e-3 {
		v.At("$.base_rates", "base_rates sum to %.4g: they are shares and must sum to 1", sum)
	}
}

func (s *Spec) validateEncoder(v *yamlconf.Doc, opts LoadOptions) {
	e := s.Encoder
	switch s.Interpreter {
	case runtime.InterpreterHashnetV1:
		if e != nil {
			v.At("$.encoder", "encoder is for interpreter: %s", runtime.InterpreterEncoderV1)
		}
		return
	case runtime.InterpreterEncoderV1:
	default:
		v.At("$.interpreter", "unknown interpreter %q: want %q or %q", s.Interpreter, runtime.InterpreterHashnetV1, runtime.InterpreterEncoderV1)
		return
	}
	if e == nil {
		v.At("$.interpreter", "interpreter %s needs an encoder: {name: ...}", runtime.InterpreterEncoderV1)
		return
	}
	if e.Name == "" || e.Name != filepath.Base(e.Name) || e.Name == "." || e.Name == ".." {
		v.At("$.encoder.name", "encoder.name %q: want the encoder's folder name, e.g. minilm", e.Name)
	}
	if e.MaxTokens != 0 && (e.MaxTokens < 2 || e.MaxTokens > 1<<14) {
		v.At("$.encoder.max_tokens", "encoder.max_tokens %d: want 2 to 16384", e.MaxTokens)
	}
	if e.Pooling != "" && e.Pooling != runtime.PoolMean && e.Pooling != runtime.PoolCLS && e.Pooling != runtime.PoolNone {
		v.At("$.encoder.pooling", "encoder.pooling %q: want mean, cls or none", e.Pooling)
	}
	dir := e.Dir
	switch {
	case dir == "":
		dir = runtime.DefaultEncoderDir()
	case opts.NoFiles:
		v.At("$.encoder.dir", "encoder.dir is not allowed here: install the encoder in the encoders folder")
		return
	case !filepath.IsAbs(dir):
		dir = filepath.Join(filepath.Dir(v.File), dir)
	}
	s.encoderPath = filepath.Join(dir, e.Name)
}

// readExamplesFile loads the JSONL examples_file, refusing paths that leave
// the spec's folder unless allowed.
func (s *Spec) readExamplesFile(v *yamlconf.Doc, opts LoadOptions) ([]fileExample, yamlconf.Errors) {
	fail := func(format string, args ...any) ([]fileExample, yamlconf.Errors) {
		v.At("$.examples_file", format, args...)
		return nil, nil
	}
	path, msg := resolveSpecFile(v.File, "examples_file", s.ExamplesFile, opts)
	if msg != "" {
		return fail("%s", msg)
	}
	rel := s.ExamplesFile
	data, err := bounded.ReadFile(path, MaxSpecBytes*8)
	if err != nil {
		return fail("examples_file %q cannot be read: %v", rel, err)
	}
	var out []fileExample
	var errs yamlconf.Errors
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64<<10), maxExampleLength*2)
	line := 0
	for sc.Scan() {
		line++
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		var e Example
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&e); err != nil {
			col := 1
			var se *json.SyntaxError
			if errors.As(err, &se) {
				col = int(se.Offset)
			}
			errs = append(errs, &yamlconf.Error{File: path, Line: line, Column: col, Msg: "examples_file: " + err.Error()})
			continue
		}
		out = append(out, fileExample{Example: e, file: path, line: line})
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, &yamlconf.Error{File: path, Line: line + 1, Column: 1, Msg: "examples_file: " + err.Error()})
	}
	return out, errs
}

// plural is "s" unless n is 1.
func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
