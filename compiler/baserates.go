package compiler

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
)

// Base rates. A program is trained on a balanced mix of its labels (class
// weights make every label count equally), so its probabilities assume
// each label is equally likely. Where it runs they are not: a real error
// may be one line in twenty. Scores and decisions are corrected for the
// deployment's base rates π by Bayes' rule, p'(y|x) ∝ p(y|x)·π_y/(1/K),
// which for a softmax is a shift of each label's bias by log(K·π_y): the
// interpreter runs the same graph at the same cost.

// minSamplesForRates is the fewest unlabelled lines EM estimates rates
// from; with fewer the training mix stands (a warning says so).
const minSamplesForRates = 200

// maxSamplesForRates bounds the lines EM reads (a seeded draw).
const maxSamplesForRates = 20000

// BaseRates says which base rates a program was compiled for, and where
// they came from.
type BaseRates struct {
	Rates  []float64 // by label, summing to 1
	Source string    // spec, estimated, or "" (the training mix)
	// Samples is how many unlabelled lines an estimate read.
	Samples int
}

// estimatePrior finds the label distribution of unlabelled lines from the
// program's own posteriors, computed under a uniform prior, by the EM of
// Saerens, Latinne and Decaestecker (2002): re-weight every posterior by
// the current rates, average them into new rates, until they settle.
func estimatePrior(posteriors [][]float64) []float64 {
	k := len(posteriors[0])
	pi := make([]float64, k)
	for j := range pi {
		pi[j] = 1 / float64(k)
	}
	next := make([]float64, k)
	q := make([]float64, k)
	for iter := 0; iter < 200; iter++ {
		clear(next)
		for _, p := range posteriors {
			var z float64
			for j := range q {
				q[j] = p[j] * pi[j] * float64(k)
				z += q[j]
			}
			if z == 0 {
				continue
			}
			for j := range q {
				next[j] += q[j] / z
			}
		}
		delta := 0.0
		for j := range next {
			v := clampRate(next[j] / float64(len(posteriors)))
			delta = math.Max(delta, math.Abs(v-pi[j]))
			pi[j] = v
		}
		normalize(pi)
		if delta < 1e-7 {
			break
		}
	}
	return pi
}

// clampRate keeps a rate away from 0 and 1, where log(K·π) would make a
// label impossible or certain.
func clampRate(r float64) float64 { return min(max(r, 1e-4), 1-1e-4) }

func normalize(p []float64) {
	var s float64
	for _, v := range p {
		s += v
	}
	for i := range p {
		p[i] /= s
	}
}

// baseRates decides the rates a program is compiled for: the spec's, or an
// EM estimate from samples (without a teacher, whose labels of the samples
// are training data instead), or none. posterior scores a line under the
// uniform prior. warn receives what the user should know.
func (s *Spec) baseRates(samples []string, posterior, decisions func(text string, probs []float64), warn func(string)) BaseRates {
	if s.BaseRates != nil {
		r := BaseRates{Rates: make([]float64, len(s.Labels)), Source: "spec"}
		for i, l := range s.Labels {
			r.Rates[i] = s.BaseRates[l]
		}
		normalize(r.Rates)
		return r
	}
	if s.Teacher != nil || len(samples) == 0 {
		return BaseRates{}
	}
	if len(samples) < minSamplesForRates {
		warn(fmt.Sprintf("samples_file has %d lines, fewer than the %d needed to estimate base rates: scores assume the training mix", len(samples), minSamplesForRates))
		return BaseRates{}
	}
	if len(samples) > maxSamplesForRates {
		rng := rand.New(rand.NewPCG(s.trainOptions().Seed, 0x72617465))
		picked := make([]string, maxSamplesForRates)
		for i, j := range rng.Perm(len(samples))[:maxSamplesForRates] {
			picked[i] = samples[j]
		}
		samples = picked
	}
	post := make([][]float64, len(samples))
	for i, t := range samples {
		post[i] = make([]float64, len(s.Labels))
		posterior(t, post[i])
	}
	em := estimatePrior(post)
	if cc, doubtful := Doubtful(post, em); doubtful {
		warn(fmt.Sprintf("the base rates estimated from samples_file (%s) stray from the program's own decisions on it (%s), and its scores there sit near its threshold: too uncertain for EM, so scores assume the training mix (state base_rates, or add examples like these lines)",
			Shares(s.Labels, em), Shares(s.Labels, cc)))
		return BaseRates{}
	}
	if decisions != nil {
		// A model can be sure and wrong on lines unlike its examples; its
		// keywords decide those, and an estimate its decisions with them
		// contradict is not trusted either.
		for i, t := range samples {
			decisions(t, post[i])
		}
		if cc, _ := decisionShares(post); strays(em, cc) {
			warn(fmt.Sprintf("the base rates estimated from samples_file (%s) stray from the program's decisions on it with its keywords (%s): its model does not know these lines, so scores assume the training mix (state base_rates, or add examples like these lines)",
				Shares(s.Labels, em), Shares(s.Labels, cc)))
			return BaseRates{}
		}
	}
	return BaseRates{Rates: em, Source: "estimated", Samples: len(samples)}
}

// Doubtful reports whether an EM estimate em from posteriors should not be
// trusted, with the decisions' own label shares cc (classify and count).
// EM corrects a classifier's counts when its posteriors mean something. A
// program that does not know the lines scores them all near its threshold
// (mean top probability under 0.7), and EM then drives a label that a
// fifth of them win to nothing: doubtful is both at once, a label at 5% or
// more by one of em and cc that the other puts at under a quarter of that.
// A calibrated but weak classifier, whose counts EM rightly corrects by
// that much, is more confident than that.
func Doubtful(posteriors [][]float64, em []float64) (cc []float64, doubtful bool) {
	if len(posteriors) == 0 {
		return nil, false
	}
	cc, conf := decisionShares(posteriors)
	return cc, conf < 0.7 && strays(em, cc)
}

// decisionShares are the label shares of posteriors' decisions, and the
// mean probability of the decided label.
func decisionShares(posteriors [][]float64) (cc []float64, conf float64) {
	cc = make([]float64, len(posteriors[0]))
	for _, p := range posteriors {
		best := 0
		for j := range p {
			if p[j] > p[best] {
				best = j
			}
		}
		cc[best]++
		conf += p[best]
	}
	for j := range cc {
		cc[j] /= float64(len(posteriors))
	}
	return cc, conf / float64(len(posteriors))
}

// strays reports a label at 5% or more by one of em and cc that the other
// puts at under a quarter of that.
func strays(em, cc []float64) bool {
	for j := range em {
		hi, lo := max(em[j], cc[j]), min(em[j], cc[j])
		if hi >= 0.05 && lo < hi/4 {
			return true
		}
	}
	return false
}

// Shares writes label shares for people: "error 0.050, ok 0.950".
func Shares(labels []string, rates []float64) string {
	parts := make([]string, len(rates))
	for j, r := range rates {
		parts[j] = fmt.Sprintf("%s %.3f", labels[j], r)
	}
	return strings.Join(parts, ", ")
}

// biasShift is what each label's bias gains for rates r: log(K·π_y).
func (r BaseRates) biasShift() []float32 {
	if r.Rates == nil {
		return nil
	}
	out := make([]float32, len(r.Rates))
	for i, p := range r.Rates {
		out[i] = float32(math.Log(float64(len(r.Rates)) * clampRate(p)))
	}
	return out
}

// byLabel is the rates as the manifest keeps them, rounded to 6 places.
func (r BaseRates) byLabel(labels []string) map[string]float64 {
	if r.Rates == nil {
		return nil
	}
	m := make(map[string]float64, len(labels))
	for i, l := range labels {
		m[l] = round6(r.Rates[i])
	}
	return m
}

// unlabelled is the lines base rates are estimated from: samples_file
// (when no teacher labels it), else Samples.
func (s *Spec) unlabelled() ([]string, error) {
	if s.Teacher == nil && s.samplesPath != "" {
		return s.readSamples()
	}
	return s.Samples, nil
}

// applyBaseRates decides the rates and shifts bias for them; posterior
// scores a text with the trained model before the shift.
func (s *Spec) applyBaseRates(bias []float32, posterior, decisions func(text string, probs []float64)) (BaseRates, []string, error) {
	samples, err := s.unlabelled()
	if err != nil {
		return BaseRates{}, nil, err
	}
	var warnings []string
	r := s.baseRates(samples, posterior, decisions, func(w string) { warnings = append(warnings, w) })
	for k, d := range r.biasShift() {
		bias[k] += d
	}
	return r, warnings, nil
}

// describe is the manifest's base_rates_source.
func (r BaseRates) describe() string {
	switch r.Source {
	case "estimated":
		return fmt.Sprintf("estimated from %d samples", r.Samples)
	case "spec":
		return "spec"
	}
	return ""
}
