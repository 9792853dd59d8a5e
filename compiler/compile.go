package compiler

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/goccy/go-yaml"

	"github.com/pawlogs/paw/evaluate"
	"github.com/pawlogs/paw/runtime"
	"github.com/pawlogs/paw/teacher"
)

// Version is the compiler version recorded in every artifact. Equal specs
// and equal versions give byte-identical artifacts.
const Version = "0.1.0"

// Progress receives compile stages: stage names the step, done of total its
// advance.
type Progress func(stage string, done, total int)

// Result is a compiled program and what was measured on the way.
type Result struct {
	Artifact []byte
	ID       string
	Manifest runtime.Manifest
	Weights  *HashnetWeights
	// Teacher is what teacher labelling cost (nil without a teacher).
	Teacher *TeacherStats
	// Failing lists the tests the program gets wrong.
	Failing []TestFailure
	// Warnings are what the user should know of the compile.
	Warnings []string
}

// TestFailure is one test the compiled program gets wrong.
type TestFailure struct {
	Text      string
	Want, Got string
	Score     float32
}

// TestAccuracyError is returned (wrapped) when tests score below
// min_test_accuracy. The Result is returned alongside it for the report.
type TestAccuracyError struct {
	Accuracy, Min float64
	Failing       []TestFailure
}

func (e *TestAccuracyError) Error() string {
	return fmt.Sprintf("test accuracy %.4f is below min_test_accuracy %.4f (%d failing tests)", e.Accuracy, e.Min, len(e.Failing))
}

// Compile trains spec into an artifact. On a test accuracy below the spec's
// minimum it returns the result together with *TestAccuracyError.
func Compile(ctx context.Context, spec *Spec, progress Progress) (*Result, error) {
	if progress == nil {
		progress = func(string, int, int) {}
	}
	train := spec.Examples
	learned, answersDigest := spec.learned()
	train = append(slices.Clip(train), learned...)
	var tch *teaching
	if spec.Teacher != nil {
		var err error
		if tch, err = spec.teach(ctx, progress); err != nil {
			return nil, err
		}
		train = append(slices.Clip(train), tch.train...)
	}
	var (
		m   *trained
		err error
	)
	interp := spec.interpreter()
	if interp == runtime.InterpreterEncoderV1 {
		m, err = trainEncoderHead(ctx, spec, train, progress)
	} else {
		m, err = trainHashnet(ctx, spec, train, progress)
	}
	if err != nil {
		return nil, err
	}
	defer m.close()

	norm, err := spec.normalized()
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(norm)
	man := runtime.Manifest{
		FormatVersion:   runtime.FormatVersion,
		Name:            spec.Name,
		Description:     spec.Description,
		Labels:          spec.Labels,
		Positive:        spec.Positive,
		Input:           spec.Input,
		Interpreter:     interp,
		Featurizer:      m.featurizer,
		Model:           m.shape,
		SpecSHA256:      hex.EncodeToString(sum[:]),
		CompilerVersion: Version,
		Encoder:         m.encoder,
		BaseRates:       m.rates.byLabel(spec.Labels),
		BaseRatesSource: m.rates.describe(),
		Templates:       m.templates,
		Patterns:        m.patterns,
	}
	man.Keywords, man.KeywordRates = m.keywords, m.keywordRates
	// Tests and fidelity are decided as records will be: with the
	// keywords, where the program has them.
	if m.judge, err = runtime.NewJudge(&runtime.Artifact{Manifest: man, Model: m.model}); err != nil {
		return nil, fmt.Errorf("keywords: %w", err)
	}

	progress("evaluate", 0, 1)
	res := &Result{Weights: m.hashnet, Warnings: m.warnings}
	probs := make([]float32, len(spec.Labels))
	metrics := runtime.CompileMetrics{Examples: len(train), Tests: len(spec.Tests), TrainAccuracy: m.trainAccuracy, CalibrationECE: m.cvECE}
	if len(spec.Tests) > 0 {
		conf := evaluate.NewConfusion(spec.Labels)
		for _, t := range spec.Tests {
			if err := m.predict(t.Text, probs); err != nil {
				return nil, err
			}
			best, score := runtime.Decide(probs)
			got := spec.Labels[best]
			if err := conf.Add(t.Label, got); err != nil {
				return nil, err
			}
			if got != t.Label {
				res.Failing = append(res.Failing, TestFailure{Text: t.Text, Want: t.Label, Got: got, Score: score})
			}
		}
		r := conf.Report()
		metrics.Test = &r
	}
	if tch != nil {
		if man.Teacher, err = fidelity(spec, tch, m.predict); err != nil {
			return nil, err
		}
		st := tch.stats
		res.Teacher = &st
	}
	progress("evaluate", 1, 1)
	man.Metrics = metrics
	if len(learned) > 0 {
		man.Learned = &runtime.Learned{Answers: len(learned), Digest: answersDigest}
	}
	art, err := runtime.EncodeArtifact(&man, norm, m.model)
	if err != nil {
		return nil, err
	}
	res.Artifact, res.ID, res.Manifest = art, runtime.ArtifactID(art), man
	if spec.MinTestAccuracy != nil && metrics.Test != nil && metrics.Test.Accuracy < *spec.MinTestAccuracy {
		return res, &TestAccuracyError{Accuracy: metrics.Test.Accuracy, Min: *spec.MinTestAccuracy, Failing: res.Failing}
	}
	return res, nil
}

// trained is a compiled model, whichever the interpreter: how it predicts
// (for the metrics) and what goes into the artifact.
type trained struct {
	predict func(text string, probs []float32) error
	// trainAccuracy is measured on the training data as the trainer
	// featurized (or embedded) it, not by predicting each text again.
	trainAccuracy float64
	model         []byte // model.onnx
	shape         runtime.ModelShape
	featurizer    runtime.FeaturizerConfig // hashnet-v1
	encoder       *runtime.EncoderRef      // encoder-v1
	hashnet       *HashnetWeights          // hashnet-v1
	judge         *runtime.Judge           // hashnet-v1 with keywords: set by Compile, read by predict
	keywords      map[string][]string      // hashnet-v1 with label descriptions
	keywordRates  map[string]runtime.KeywordRates
	close         func()
	rates         BaseRates // the base rates folded into the bias
	warnings      []string
	cvECE         float64  // calibration error of the out-of-fold predictions
	templates     string   // encoder-v1: the training examples' template keys, for novelty
	patterns      []string // encoder-v1: their log patterns, for novelty
}

// trainHashnet trains hashed n-gram embeddings and a head, with a
// cross-validated temperature folded into the head.
func trainHashnet(ctx context.Context, spec *Spec, train []Example, progress Progress) (*trained, error) {
	fcfg := spec.featurizerConfig()
	feat, err := runtime.NewFeaturizer(fcfg)
	if err != nil {
		return nil, fmt.Errorf("featurizer: %w", err)
	}
	index := map[string]int{}
	for i, l := range spec.Labels {
		index[l] = i
	}
	data := make([]sample, len(train))
	counts := make([]int, len(spec.Labels))
	keys := make([]uint64, len(train))
	toks := feat.NewTokens()
	for i, e := range train {
		data[i] = sample{feat: feat.NewFeatures(), label: index[e.Label]}
		feat.Featurize([]byte(e.Text), &data[i].feat)
		keys[i] = feat.Scan([]byte(e.Text), toks)
		counts[data[i].label]++
	}
	weighByTemplate(data, keys, counts)
	keywords, keywordRates, err := spec.hashnetKeywords(fcfg, train)
	if err != nil {
		return nil, err
	}
	// Label descriptions' pseudo-examples train every model, the folds'
	// too, and are never held out: they are not data to calibrate on.
	// A spec with no examples has only them, and its keywords read the
	// same words as phrases, as the pseudo-examples cannot ("lost
	// connection" is no evidence that "connection" is an error): its
	// model learns nothing, every record is novel to it, and the keywords
	// decide.
	var described []Example
	if len(train) > 0 || keywords == nil {
		described = spec.pseudoExamples()
	}
	var pseudo []sample
	classCounts := slices.Clone(counts)
	for _, e := range described {
		ps := sample{feat: feat.NewFeatures(), label: index[e.Label], weight: spec.descriptionWeight()}
		feat.Featurize([]byte(e.Text), &ps.feat)
		pseudo = append(pseudo, ps)
		classCounts[ps.label]++
	}
	topt := spec.trainOptions()
	folds := spec.calibrationFolds(counts)
	totalSteps := (folds + 1) * topt.Epochs
	step := 0
	tick := func(int) { step++; progress("train", step, totalSteps) }
	labelOf := make([]int, len(data))
	for i, s := range data {
		labelOf[i] = s.label
	}
	temperature, ece, err := calibrate(labelOf, counts, folds, topt.Seed, func(k int, train, held []int) ([][]float32, error) {
		c := make([]int, len(counts))
		part := make([]sample, len(train), len(train)+len(pseudo))
		for j, i := range train {
			part[j] = data[i]
			c[data[i].label]++
		}
		for _, ps := range pseudo {
			part = append(part, ps)
			c[ps.label]++
		}
		o := topt
		o.Seed = topt.Seed + uint64(k) + 1
		tr := newTrainer(fcfg.Buckets(), len(counts), c, o)
		if err := tr.fit(ctx, part, tick); err != nil {
			return nil, err
		}
		z := make([][]float32, len(held))
		for j, i := range held {
			z[j] = make([]float32, len(counts))
			tr.logits(&data[i].feat, z[j])
		}
		return z, nil
	})
	if err != nil {
		return nil, err
	}
	tr := newTrainer(fcfg.Buckets(), len(spec.Labels), classCounts, topt)
	if err := tr.fit(ctx, append(slices.Clip(data), pseudo...), tick); err != nil {
		return nil, err
	}
	w := tr.w
	inv := float32(1 / temperature)
	for i := range w.Head {
		w.Head[i] *= inv
	}
	for i := range w.Bias {
		w.Bias[i] *= inv
	}
	decisions, err := keywordDecisions(spec, fcfg, &w, keywords, keywordRates)
	if err != nil {
		return nil, err
	}
	pf := feat.NewFeatures()
	p32 := make([]float32, len(counts))
	rates, warnings, err := spec.applyBaseRates(w.Bias, func(text string, probs []float64) {
		feat.Featurize([]byte(text), &pf)
		w.Forward(&pf, p32)
		for k, v := range p32 {
			probs[k] = float64(v)
		}
	}, decisions)
	if err != nil {
		return nil, err
	}
	model, err := w.encode()
	if err != nil {
		return nil, fmt.Errorf("build onnx: %w", err)
	}
	f := feat.NewFeatures()
	probs := make([]float32, len(counts))
	acc := accuracy(labelOf, func(i int) []float32 { w.Forward(&data[i].feat, probs); return probs })
	out := &trained{
		keywords: keywords, keywordRates: keywordRates,
		model: model, featurizer: fcfg, hashnet: &w, close: func() {}, trainAccuracy: acc, rates: rates, warnings: warnings, cvECE: ece,
		shape: runtime.ModelShape{Buckets: w.Buckets, Dim: w.Dim, Temperature: round6(temperature)},
	}
	out.predict = func(text string, probs []float32) error {
		feat.Featurize([]byte(text), &f)
		w.Forward(&f, probs)
		if out.judge != nil {
			out.judge.Judge([]byte(text), &f, probs)
		}
		return nil
	}
	return out, nil
}

// keywordDecisions scores a text as the program will decide it, its
// keywords included, at the training mix (w's bias before any base rates):
// what a base-rate estimate is checked against. Nil without keywords.
func keywordDecisions(spec *Spec, fcfg runtime.FeaturizerConfig, w *HashnetWeights, keywords map[string][]string, rates map[string]runtime.KeywordRates) (func(string, []float64), error) {
	if keywords == nil {
		return nil, nil
	}
	model, err := w.encode()
	if err != nil {
		return nil, fmt.Errorf("build onnx: %w", err)
	}
	m := runtime.Manifest{Labels: spec.Labels, Interpreter: runtime.InterpreterHashnetV1, Featurizer: fcfg, Keywords: keywords, KeywordRates: rates}
	judge, err := runtime.NewJudge(&runtime.Artifact{Manifest: m, Model: model})
	if err != nil {
		return nil, fmt.Errorf("keywords: %w", err)
	}
	feat, err := runtime.NewFeaturizer(fcfg)
	if err != nil {
		return nil, err
	}
	f := feat.NewFeatures()
	p32 := make([]float32, len(spec.Labels))
	return func(text string, probs []float64) {
		feat.Featurize([]byte(text), &f)
		w.Forward(&f, p32)
		judge.Judge([]byte(text), &f, p32)
		for k, v := range p32 {
			probs[k] = float64(v)
		}
	}, nil
}

// weighByTemplate weighs examples so that each label's masked templates
// count equally: 50 copies of one template are one vote, not 50. A
// label's weights still sum to its example count, so the class balance
// is unchanged.
func weighByTemplate(data []sample, keys []uint64, counts []int) {
	type lk struct {
		label int
		key   uint64
	}
	per := map[lk]int{}
	templates := make([]int, len(counts))
	for i, s := range data {
		k := lk{s.label, keys[i]}
		if per[k] == 0 {
			templates[s.label]++
		}
		per[k]++
	}
	for i := range data {
		l := data[i].label
		data[i].weight = float32(counts[l]) / float32(templates[l]*per[lk{l, keys[i]}])
	}
}

// interpreter is the spec's, hashnet-v1 by default.
func (s *Spec) interpreter() string {
	if s.Interpreter == "" {
		return runtime.InterpreterHashnetV1
	}
	return s.Interpreter
}

// accuracy is the share of records i whose most probable label,
// probs(i), is labels[i]; 0 without records.
func accuracy(labels []int, probs func(i int) []float32) float64 {
	if len(labels) == 0 {
		return 0
	}
	correct := 0
	for i, l := range labels {
		if best, _ := runtime.Decide(probs(i)); best == l {
			correct++
		}
	}
	return float64(correct) / float64(len(labels))
}

// calibrationFolds is the spec's fold count, capped so that every fold
// holds out at least one example of each label.
func (s *Spec) calibrationFolds(counts []int) int {
	folds := s.Options.CalibrationFolds
	if folds == 0 {
		folds = DefaultCalibrationFolds
	}
	return min(folds, slices.Min(counts))
}

func round6(v float64) float64 { return math.Round(v*1e6) / 1e6 }

// temperaturePrior weighs (log T)² against the calibration folds'
// class-weighted log loss (which sums to about one per example).
const temperaturePrior = 2.0

// fidelity is the paradigm's headline metric: how often the program agrees
// with the teacher on the held-out share of the labelled sample, overall
// and per teacher label.
func fidelity(spec *Spec, tch *teaching, predict func(string, []float32) error) (*runtime.TeacherProvenance, error) {
	p := &runtime.TeacherProvenance{
		Model: spec.Teacher.Model, BaseURL: spec.Teacher.BaseURL, Sampled: tch.stats.Sampled, Clusters: tch.stats.Clusters,
		Labelled: tch.stats.Labelled, Holdout: len(tch.holdout), CacheKeyDigest: tch.digest, FidelityLabels: map[string]float64{},
		SystemPrompt: teacher.SystemPrompt(spec.task()),
	}
	probs := make([]float32, len(spec.Labels))
	agree, per, total := 0, map[string]int{}, map[string]int{}
	for _, e := range tch.holdout {
		if err := predict(e.Text, probs); err != nil {
			return nil, err
		}
		best, _ := runtime.Decide(probs)
		total[e.Label]++
		if spec.Labels[best] == e.Label {
			agree++
			per[e.Label]++
		}
	}
	if len(tch.holdout) > 0 {
		p.Fidelity = round6(float64(agree) / float64(len(tch.holdout)))
	}
	for l, n := range total {
		p.FidelityLabels[l] = round6(float64(per[l]) / float64(n))
	}
	return p, nil
}

func (s *Spec) featurizerConfig() runtime.FeaturizerConfig {
	c := runtime.DefaultFeaturizerConfig()
	o := s.Options
	if o.BucketBits != 0 {
		c.BucketBits = o.BucketBits
	}
	if o.MaxBytes != 0 {
		c.MaxBytes = o.MaxBytes
	}
	if o.MaxFeatures != 0 {
		c.MaxFeatures = o.MaxFeatures
	}
	if o.WordNgrams != 0 {
		c.WordNgrams = o.WordNgrams
	}
	switch {
	case o.CharNgrams > 0:
		c.CharNgrams = o.CharNgrams
	case o.CharNgrams < 0:
		c.CharNgrams = 0
	}
	return c
}

func (s *Spec) trainOptions() TrainOptions {
	o := s.Options
	return TrainOptions{Seed: o.Seed, Epochs: o.Epochs, Dim: o.Dim, LearningRate: o.LearningRate, L2: o.L2, BatchSize: o.BatchSize}.withDefaults()
}

// normalized is the spec as stored in the artifact: file examples inlined,
// defaults spelled out, keys in a fixed order.
func (s *Spec) normalized() ([]byte, error) {
	n := *s
	n.Interpreter = s.interpreter()
	t := s.trainOptions()
	f := s.featurizerConfig()
	n.Options = Options{
		Seed: t.Seed, Epochs: t.Epochs, Dim: t.Dim, LearningRate: t.LearningRate, L2: t.L2, BatchSize: t.BatchSize,
		CalibrationFolds: s.Options.CalibrationFolds,
		BucketBits:       f.BucketBits, MaxBytes: f.MaxBytes, MaxFeatures: f.MaxFeatures, WordNgrams: f.WordNgrams,
		CharNgrams: f.CharNgrams, DescriptionWeight: s.Options.DescriptionWeight,
	}
	if len(s.LabelDescriptions) > 0 && n.Options.DescriptionWeight == 0 {
		n.Options.DescriptionWeight = DefaultDescriptionWeight
	}
	if n.Options.CalibrationFolds == 0 {
		n.Options.CalibrationFolds = DefaultCalibrationFolds
	}
	if f.CharNgrams == 0 {
		n.Options.CharNgrams = -1
	}
	b, err := yaml.MarshalWithOptions(&n, yaml.UseLiteralStyleIfMultiline(true))
	if err != nil {
		return nil, fmt.Errorf("normalize spec: %w", err)
	}
	return b, nil
}

// calibrate fits a softmax temperature on out-of-fold predictions: each
// stratified fold is predicted by a model trained on the others (outOfFold
// returns the held-out records' logits), and the temperature minimizing
// their log loss is returned. labels holds each record's label index.
func calibrate(labels, counts []int, folds int, seed uint64, outOfFold func(k int, train, held []int) ([][]float32, error)) (temperature, ece float64, err error) {
	if folds < 2 {
		return 1, 0, nil
	}
	fold := make([]int, len(labels))
	rng := rand.New(rand.NewPCG(seed, 0x63616c69))
	// Stratified: deal each label's examples round-robin over the folds.
	next := make([]int, len(counts))
	for k := range next {
		next[k] = rng.IntN(folds)
	}
	for _, i := range rng.Perm(len(labels)) {
		l := labels[i]
		fold[i] = next[l]
		next[l] = (next[l] + 1) % folds
	}
	logits := make([][]float32, len(labels))
	for k := 0; k < folds; k++ {
		var train, held []int
		for i := range labels {
			if fold[i] != k {
				train = append(train, i)
			} else {
				held = append(held, i)
			}
		}
		z, err := outOfFold(k, train, held)
		if err != nil {
			return 0, 0, err
		}
		for j, i := range held {
			logits[i] = z[j]
		}
	}
	t := fitTemperature(logits, labels, counts)
	return t, cvECE(logits, labels, t), nil
}

// cvECE is the expected calibration error (10 bins) of the out-of-fold
// predictions at temperature t: what compile reports of its calibration.
func cvECE(logits [][]float32, labels []int, t float64) float64 {
	var n, hit [10]int
	var sum [10]float64
	p := make([]float64, 0, 8)
	for i, z := range logits {
		p = p[:0]
		m := math.Inf(-1)
		for _, v := range z {
			m = math.Max(m, float64(v)/t)
		}
		var s float64
		for _, v := range z {
			e := math.Exp(float64(v)/t - m)
			p = append(p, e)
			s += e
		}
		best := 0
		for k := range p {
			if p[k] > p[best] {
				best = k
			}
		}
		conf := p[best] / s
		b := min(int(conf*10), 9)
		n[b]++
		sum[b] += conf
		if best == labels[i] {
			hit[b]++
		}
	}
	var e float64
	for b := range n {
		if n[b] > 0 {
			e += math.Abs(float64(hit[b])/float64(n[b])-sum[b]/float64(n[b])) * float64(n[b]) / float64(len(logits))
		}
	}
	return round6(e)
}

// fitTemperature minimizes the class-weighted log loss of logits/T plus
// a prior on log T centred on 1: the maximum a posteriori temperature.
// A few examples that every fold gets right would otherwise drive T to
// its bound and every score to exactly 1; with many examples the data
// outweighs the prior.
func fitTemperature(logits [][]float32, labels, counts []int) float64 {
	// Class-weighted NLL, matching the balanced training objective.
	total := float64(len(labels))
	weight := make([]float64, len(counts))
	for k, c := range counts {
		if c > 0 {
			weight[k] = total / float64(len(counts)*c)
		}
	}
	nll := func(t float64) float64 {
		var sum float64
		for i, z := range logits {
			m := math.Inf(-1)
			for _, v := range z {
				m = math.Max(m, float64(v)/t)
			}
			var lse float64
			for _, v := range z {
				lse += math.Exp(float64(v)/t - m)
			}
			y := labels[i]
			sum += weight[y] * (m + math.Log(lse) - float64(z[y])/t)
		}
		lt := math.Log(t)
		return sum + temperaturePrior*lt*lt
	}
	// Golden-section search over log T in [log 0.01, log 100]; the prior
	// keeps the answer well inside.
	lo, hi := math.Log(0.01), math.Log(100)
	g := (math.Sqrt(5) - 1) / 2
	a, b := hi-g*(hi-lo), lo+g*(hi-lo)
	fa, fb := nll(math.Exp(a)), nll(math.Exp(b))
	for i := 0; i < 60; i++ {
		if fa < fb {
			hi, b, fb = b, a, fa
			a = hi - g*(hi-lo)
			fa = nll(math.Exp(a))
		} else {
			lo, a, fa = a, b, fb
			b = lo + g*(hi-lo)
			fb = nll(math.Exp(b))
		}
	}
	return math.Exp((lo + hi) / 2)
}
