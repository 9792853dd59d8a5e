package runtime

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
)

func keywordManifest() Manifest {
	m := testManifest()
	m.Labels, m.Positive = []string{"error", "benign"}, "error"
	m.Keywords = map[string][]string{"error": {"fail", "lost connect", "except"}, "benign": {"success"}}
	m.KeywordRates = map[string]KeywordRates{"error": {Hit: 0.7, False: 0.1}, "benign": {Hit: 0.2, False: 0.05}}
	return m
}

func TestKeywordMatcher(t *testing.T) {
	m := keywordManifest()
	k, err := NewKeywordMatcher(&m)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name          string
		text          string
		error, benign bool
	}{
		{"a stem inside a word, any case", "Disk FAILED on node 3", true, false},
		{"a phrase's stems in two words", "connection to db lost", true, false},
		{"half a phrase", "connection reset by peer", false, false},
		{"inside an identifier", "java.io.IOException: stream closed", true, false},
		{"digits folded, letters kept", "failover7 started", true, false},
		{"a masked path is not read", "open /var/failover/x ok", false, false},
		{"the other label's", "backup finished successfully", false, true},
		{"both", "retry successful after a failure", true, true},
		{"nothing", "user logged in", false, false},
		{"empty", "", false, false},
		{"past the feature cap is not read", strings.Repeat("word ", 200) + "failure", false, false},
	}
	hit := make([]bool, 2)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			k.Contains([]byte(tc.text), hit)
			if hit[0] != tc.error || hit[1] != tc.benign {
				t.Fatalf("error %v benign %v, want %v %v", hit[0], hit[1], tc.error, tc.benign)
			}
		})
	}
}

func TestKeywordMix(t *testing.T) {
	feat, err := NewFeaturizer(keywordManifest().Featurizer)
	if err != nil {
		t.Fatal(err)
	}
	// The keywords' verdict, naive Bayes from the base rates: each label's
	// phrases contained (or not) with its hit rate in its own lines and
	// its false rate in the others'.
	verdict := func(base [2]float64, errHit, benHit bool) float64 {
		pe, pb := math.Log(base[0]), math.Log(base[1])
		f := func(hit bool, p float64) float64 {
			if hit {
				return math.Log(p)
			}
			return math.Log(1 - p)
		}
		pe += f(errHit, 0.7) + f(benHit, 0.05)
		pb += f(errHit, 0.1) + f(benHit, 0.2)
		return 1 / (1 + math.Exp(pb-pe))
	}
	tests := []struct {
		name    string
		rates   map[string]float64
		text    string
		novelty float32
		want    float64 // P(error) after the mix, from a model's 0.3
	}{
		{"a seen record keeps the model's", nil, "disk failed", 0, 0.3},
		{"an unseen one gets the keywords'", nil, "disk failed", 1, verdict([2]float64{0.5, 0.5}, true, false)},
		{"no keywords lean away", nil, "user logged in", 1, verdict([2]float64{0.5, 0.5}, false, false)},
		{"in proportion to novelty", nil, "disk failed", 0.4, 0.6*0.3 + 0.4*verdict([2]float64{0.5, 0.5}, true, false)},
		{"from the base rates", map[string]float64{"error": 0.05, "benign": 0.95}, "disk failed", 1, verdict([2]float64{0.05, 0.95}, true, false)},
		{"both labels' phrases", nil, "recovered successfully from a failure", 1, verdict([2]float64{0.5, 0.5}, true, true)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := keywordManifest()
			m.BaseRates = tc.rates
			e := newKeywordEvidence(&m, feat)
			probs := []float32{0.3, 0.7}
			e.mix([]byte(tc.text), tc.novelty, probs)
			if math.Abs(float64(probs[0])-tc.want) > 1e-6 || math.Abs(float64(probs[0]+probs[1])-1) > 1e-6 {
				t.Fatalf("probs %v, want P(error) %v", probs, tc.want)
			}
		})
	}
	if e := newKeywordEvidence(&Manifest{Labels: []string{"a", "b"}}, feat); e != nil {
		t.Fatal("evidence from a manifest without keywords")
	}
}

func TestKeywordsRoundTrip(t *testing.T) {
	m := keywordManifest()
	data := encodeTestArtifact(t, &m)
	a, err := DecodeArtifact(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Manifest.Keywords["error"]) != 3 || a.Manifest.KeywordRates["benign"].Hit != 0.2 {
		t.Fatalf("keywords %v, rates %v", a.Manifest.Keywords, a.Manifest.KeywordRates)
	}
	j, err := NewJudge(a)
	if err != nil || j == nil {
		t.Fatalf("judge %v, %v", j, err)
	}
}

// benchKeywords are keywords of the size a description gives.
func benchKeywords(b *testing.B) (*keywordEvidence, *Featurizer) {
	m := keywordManifest()
	m.Keywords["error"] = []string{"error", "fail", "crash", "except", "timeout", "refus", "lost connect", "data risk"}
	m.Keywords["benign"] = []string{"benign", "routin", "inform", "success", "already recover event"}
	feat, err := NewFeaturizer(DefaultFeaturizerConfig())
	if err != nil {
		b.Fatal(err)
	}
	return newKeywordEvidence(&m, feat), feat
}

// BenchmarkKeywordMix is what a described program adds to a record its
// template cache misses: reading its words for the keywords, and the mix.
func BenchmarkKeywordMix(b *testing.B) {
	e, _ := benchKeywords(b)
	lines := benchLines()
	probs := []float32{0.3, 0.7}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		e.mix(lines[i%len(lines)], 0.5, probs)
	}
}

// FuzzKeywords: keywords a manifest accepts never make a record's
// scores other than probabilities, whatever the record.
func FuzzKeywords(f *testing.F) {
	f.Add(`{"error":["fail","lost connect"],"benign":["success"]}`, 0.7, 0.1, []byte("Connection LOST: disk failure"), float32(0.6))
	f.Add(`{"error":["ab"]}`, 0.5, 0.5, []byte("\xff\xfeab ab ab"), float32(1))
	f.Add(`{"benign":["zz yy xx"]}`, 0.999, 0.001, []byte(strings.Repeat("zzyyxx ", 500)), float32(0.01))
	feat, err := NewFeaturizer(DefaultFeaturizerConfig())
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, keywords string, hit, falseRate float64, text []byte, novelty float32) {
		m := keywordManifest()
		m.Keywords, m.KeywordRates = nil, map[string]KeywordRates{}
		if json.Unmarshal([]byte(keywords), &m.Keywords) != nil {
			return
		}
		for l := range m.Keywords {
			m.KeywordRates[l] = KeywordRates{Hit: hit, False: falseRate}
		}
		if validateKeywords(&m) != nil || len(m.Keywords) == 0 || !(novelty >= 0 && novelty <= 1) {
			return
		}
		probs := []float32{0.25, 0.75}
		newKeywordEvidence(&m, feat).mix(text, novelty, probs)
		if sum := probs[0] + probs[1]; !(probs[0] >= 0 && probs[1] >= 0 && math.Abs(float64(sum)-1) < 1e-5) {
			t.Fatalf("probs %v", probs)
		}
	})
}

// The batcher reads a miss's keywords while featurizing it; the compiler
// reads them in a scan of their own. Both read the same words.
func TestKeywordReadingsAgree(t *testing.T) {
	m := keywordManifest()
	cfg := DefaultFeaturizerConfig()
	cfg.MaxFeatures = 64 // a cap some of these lines pass
	feat, err := NewFeaturizer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	k := newKeywordMatcher(&m, feat)
	texts := append(benchLines(),
		[]byte(strings.Repeat("word ", 12)+"then it failed"),
		[]byte(strings.Repeat("word ", 13)+"then it failed"),
		[]byte(strings.Repeat("lost ", 20)+"connection"),
		[]byte("key=failure path=/x/fail/y 10.0.0.1 succeeded successfully"),
		[]byte(""))
	for i := range 200 {
		texts = append(texts, []byte(strings.Repeat("ab ", i%40)+"fail "+strings.Repeat("cd ", i/5)+"success"))
	}
	f := feat.NewFeatures()
	for _, text := range texts {
		alone := kwScan{k: k}
		scanTokens(truncate(text, cfg.MaxBytes), nil, nil, nil, &alone)
		fused := kwScan{k: k}
		feat.featurizeReading(text, &f, []*kwScan{&fused})
		if alone.seen != fused.seen {
			t.Fatalf("%q: %b alone, %b while featurizing", text, alone.seen, fused.seen)
		}
	}
}

// BenchmarkFeaturizeReading is what reading a described program's
// keywords adds to a miss's featurization (against BenchmarkFeaturize),
// the verdict and the mix included.
func BenchmarkFeaturizeReading(b *testing.B) {
	e, feat := benchKeywords(b)
	lines := benchLines()
	f := feat.NewFeatures()
	probs := []float32{0.3, 0.7}
	var sc kwScan
	kws := []*kwScan{&sc}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		sc = kwScan{k: e.match}
		feat.featurizeReading(lines[i%len(lines)], &f, kws)
		e.mixScan(&sc, 0.5, probs)
	}
}
