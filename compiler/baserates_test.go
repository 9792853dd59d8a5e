package compiler

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

// EM recovers the label shares of unlabelled data from posteriors that
// assume a uniform prior (Saerens et al., 2002).
func TestEstimatePriorRecoversShares(t *testing.T) {
	for _, want := range []float64{0.05, 0.2, 0.5} {
		rng := rand.New(rand.NewPCG(1, 2))
		var post [][]float64
		for i := 0; i < 20000; i++ {
			y := 1
			if rng.Float64() < want {
				y = 0
			}
			// A score z ~ N(±mu, 1) by label; the exact posterior of label
			// 0 under a uniform prior is then sigmoid(2·mu·z): a calibrated,
			// imperfect classifier.
			const mu = 1.2
			z := rng.NormFloat64() + mu
			if y == 1 {
				z -= 2 * mu
			}
			p0 := 1 / (1 + math.Exp(-2*mu*z))
			post = append(post, []float64{p0, 1 - p0})
		}
		got := estimatePrior(post)
		if math.Abs(got[0]-want) > 0.02 {
			t.Errorf("share %v estimated as %v", want, got[0])
		}
	}
}

func rateSpec(extra string) string {
	return strings.Replace(goodSpec, "examples:", extra+"examples:", 1)
}

func TestBaseRatesValidation(t *testing.T) {
	tests := []struct{ name, yaml, want string }{
		{"not summing to 1", rateSpec("base_rates: {error: 0.2, ok: 0.7}\n"), "s.yaml:5:14: base_rates sum to 0.9: they are shares"},
		{"unknown label", rateSpec("base_rates: {error: 0.2, ok: 0.7, maybe: 0.1}\n"), `base_rates names "maybe", which is not one of the labels`},
		{"missing label", rateSpec("base_rates: {error: 1}\n"), `base_rates has no rate for label "ok"`},
		{"zero", rateSpec("base_rates: {error: 0, ok: 1}\n"), "base_rates.error 0: want a share between 0 and 1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseSpec("s.yaml", []byte(tc.yaml), LoadOptions{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}

// Stated rates are folded into the bias and recorded; an estimate needs
// enough samples, and says so when it has too few.
func TestCompileWithBaseRates(t *testing.T) {
	compile := func(t *testing.T, yaml string, samples []string) *Result {
		t.Helper()
		s, err := ParseSpec("s.yaml", []byte(yaml), LoadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		s.Samples = samples
		res, err := Compile(context.Background(), s, nil)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	plain := compile(t, goodSpec, nil)
	stated := compile(t, rateSpec("base_rates: {error: 0.05, ok: 0.95}\n"), nil)
	if got := stated.Manifest.BaseRates; got["error"] != 0.05 || stated.Manifest.BaseRatesSource != "spec" {
		t.Fatalf("manifest base rates %v (%s)", got, stated.Manifest.BaseRatesSource)
	}
	shift := float64(stated.Weights.Bias[0]-plain.Weights.Bias[0]) - float64(stated.Weights.Bias[1]-plain.Weights.Bias[1])
	if want := math.Log(0.05 / 0.95); math.Abs(shift-want) > 1e-4 {
		t.Fatalf("bias shifted by %v between the labels, want %v", shift, want)
	}
	few := compile(t, goodSpec, []string{"disk failed", "all good"})
	if few.Manifest.BaseRates != nil || len(few.Warnings) != 1 || !strings.Contains(few.Warnings[0], "fewer than the 200 needed") {
		t.Fatalf("2 samples: rates %v, warnings %v", few.Manifest.BaseRates, few.Warnings)
	}
	var samples []string
	for i := 0; i < 300; i++ {
		if i%10 == 0 {
			samples = append(samples, fmt.Sprintf("write %d failed", i))
		} else {
			samples = append(samples, fmt.Sprintf("request %d done, all good", i))
		}
	}
	est := compile(t, goodSpec, samples)
	if r := est.Manifest.BaseRates["error"]; r < 0.02 || r > 0.3 || est.Manifest.BaseRatesSource != "estimated from 300 samples" {
		t.Fatalf("estimated %v (%s) for 10%% errors", est.Manifest.BaseRates, est.Manifest.BaseRatesSource)
	}
}

// Answers train the program: one per template, a person's over a model's,
// never over the spec's own examples, and the same set gives the same
// bytes whatever its order.
func TestCompileWithAnswers(t *testing.T) {
	base, err := ParseSpec("s.yaml", []byte(goodSpec), LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	at := func(s int64) time.Time { return time.Unix(s, 0) }
	answers := []Answer{
		{Line: "kernel: Out of memory: Killed process 12", Label: "error", By: ByModel, Time: at(1)},
		{Line: "kernel: Out of memory: Killed process 99", Label: "ok", By: ByModel, Time: at(2)},    // same template, later
		{Line: "kernel: Out of memory: Killed process 7", Label: "error", By: ByPerson, Time: at(0)}, // a person wins
		{Line: "disk failed", Label: "ok", By: ByPerson, Time: at(3)},                                // the spec's example wins
		{Line: "cron ran", Label: "maybe", By: ByModel, Time: at(4)},                                 // not a label
	}
	compile := func(as []Answer) *Result {
		s := *base
		s.Answers = as
		res, err := Compile(context.Background(), &s, nil)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	a := compile(answers)
	rev := slices.Clone(answers)
	slices.Reverse(rev)
	b := compile(rev)
	if a.ID != b.ID {
		t.Fatal("the answers' order changed the artifact")
	}
	if l := a.Manifest.Learned; l == nil || l.Answers != 1 || l.Digest == "" {
		t.Fatalf("learned %+v, want 1 answer", a.Manifest.Learned)
	}
	if compile(nil).Manifest.Learned != nil {
		t.Fatal("a program without answers says it learned")
	}
}

// EM is doubtful only where the program is unsure and EM strays from its
// decisions: a calibrated classifier, even a weak one, keeps its estimate.
func TestDoubtful(t *testing.T) {
	calibrated := func(share, mu float64) [][]float64 {
		rng := rand.New(rand.NewPCG(3, 4))
		var post [][]float64
		for i := 0; i < 20000; i++ {
			z := rng.NormFloat64() + mu
			if rng.Float64() >= share {
				z -= 2 * mu
			}
			p0 := 1 / (1 + math.Exp(-2*mu*z))
			post = append(post, []float64{p0, 1 - p0})
		}
		return post
	}
	// A program that does not know the lines: a fifth just above its
	// threshold, the rest just below.
	unsure := func() [][]float64 {
		var post [][]float64
		for i := 0; i < 2000; i++ {
			p0 := 0.45
			if i%5 == 0 {
				p0 = 0.56
			}
			post = append(post, []float64{p0, 1 - p0})
		}
		return post
	}
	tests := []struct {
		name     string
		post     [][]float64
		doubtful bool
	}{
		{"calibrated, 5%", calibrated(0.05, 1.2), false},
		{"calibrated and weak, 5%", calibrated(0.05, 0.8), false},
		{"calibrated, 50%", calibrated(0.5, 1.2), false},
		{"unsure", unsure(), true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			em := estimatePrior(tc.post)
			cc, doubtful := Doubtful(tc.post, em)
			if doubtful != tc.doubtful {
				t.Fatalf("doubtful %v, want %v (em %.3f, cc %.3f)", doubtful, tc.doubtful, em, cc)
			}
			t.Logf("em %.3f, classify and count %.3f", em, cc)
		})
	}
	// At compile time a doubtful estimate is not applied, and says why.
	s := &Spec{Labels: []string{"error", "ok"}}
	samples := make([]string, 2000)
	for i := range samples {
		samples[i] = fmt.Sprint(i)
	}
	var warned []string
	r := s.baseRates(samples, func(text string, probs []float64) {
		p0 := 0.45
		if text[len(text)-1]%5 == 0 {
			p0 = 0.56
		}
		probs[0], probs[1] = p0, 1-p0
	}, nil, func(w string) { warned = append(warned, w) })
	if r.Rates != nil || len(warned) != 1 || !strings.Contains(warned[0], "too uncertain for EM") {
		t.Fatalf("rates %v, warnings %q", r.Rates, warned)
	}
	// A model sure of itself on lines unlike its examples, whose keywords
	// decide otherwise: the estimate is not applied either.
	sure := func(text string, probs []float64) { probs[0], probs[1] = 0.98, 0.02 }
	tenth := func(text string, probs []float64) {
		probs[0], probs[1] = 0.3, 0.7
		if text[len(text)-1] == '0' {
			probs[0], probs[1] = 0.8, 0.2
		}
	}
	warned = nil
	r = s.baseRates(samples, sure, tenth, func(w string) { warned = append(warned, w) })
	if r.Rates != nil || len(warned) != 1 || !strings.Contains(warned[0], "with its keywords (error 0.100, ok 0.900)") {
		t.Fatalf("rates %v, warnings %q", r.Rates, warned)
	}
	// Where they agree, the estimate stands.
	warned = nil
	if r = s.baseRates(samples, sure, sure, func(w string) { warned = append(warned, w) }); r.Rates == nil || len(warned) != 0 {
		t.Fatalf("rates %v, warnings %q", r.Rates, warned)
	}
}
