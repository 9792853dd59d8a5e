package runtimetest

import (
	"bytes"
	"testing"

	"github.com/pawlogs/paw/runtime"
)

// A built program decides the lines like its examples' for their labels,
// confidently, folded or not, and the same under another seed.
func TestBuildDecidesLikeItsExamples(t *testing.T) {
	lines := []struct{ text, want string }{
		{"ERROR request 4211 failed with exception timeout", "error"},
		{"INFO request 77 completed in 12ms", "ok"},
	}
	for _, c := range []struct {
		name string
		spec Spec
	}{{"folded", Errors("e", 0)}, {"unfolded", func() Spec { s := Errors("e", 1); s.Dim = 2; return s }()}} {
		t.Run(c.name, func(t *testing.T) {
			a := Program(t, c.spec)
			g, err := runtime.ReadHashnet(a)
			if err != nil {
				t.Fatal(err)
			}
			if g.Folded() != (c.spec.Dim == 0) {
				t.Fatalf("folded %v", g.Folded())
			}
			feat, err := runtime.NewFeaturizer(a.Manifest.Featurizer)
			if err != nil {
				t.Fatal(err)
			}
			f := feat.NewFeatures()
			probs := make([]float32, 2)
			for _, l := range lines {
				feat.Featurize([]byte(l.text), &f)
				g.Forward(f.IDs[:f.Len], f.Weights[:f.Len], probs)
				best, score := runtime.Decide(probs)
				if a.Manifest.Labels[best] != l.want || score < 0.9 {
					t.Errorf("%q: %s at %.3f, want %s above 0.9", l.text, a.Manifest.Labels[best], score, l.want)
				}
			}
		})
	}
	if a, b := Build(t, Errors("e", 1)), Build(t, Errors("e", 2)); bytes.Equal(a, b) {
		t.Fatal("seeds 1 and 2 built the same artifact")
	}
	if a, b := Build(t, Errors("e", 1)), Build(t, Errors("e", 1)); !bytes.Equal(a, b) {
		t.Fatal("one spec built two artifacts")
	}
}
