package compiler

import (
	"testing"

	"github.com/pawlogs/paw/runtime"
	"github.com/pawlogs/paw/runtime/runtimetest"
)

// The graph the artifact holds, read back by the runtime, scores as the
// weights training kept: folded (dim > labels) or not.
func TestGraphReadsBackAsTrained(t *testing.T) {
	for _, dim := range []int{1, 4} {
		w := &HashnetWeights{Buckets: 256, Dim: dim, Labels: 2, Embedding: make([]float32, 256*dim), Head: make([]float32, dim*2), Bias: []float32{0.3, -0.1}}
		for i := range w.Embedding {
			w.Embedding[i] = float32(i%7) / 10
		}
		for i := range w.Head {
			w.Head[i] = float32(i%3) - 1
		}
		cfg := runtime.DefaultFeaturizerConfig()
		cfg.BucketBits = 8
		built, err := w.toGraph()
		if err != nil {
			t.Fatal(err)
		}
		a := runtimetest.Hashnet(t, built, []string{"a", "b"}, dim, cfg)
		g, err := runtime.ReadHashnet(a)
		if err != nil {
			t.Fatal(err)
		}
		if folded := dim > 2; g.Folded() != folded {
			t.Fatalf("dim %d: folded %v, want %v", dim, g.Folded(), folded)
		}
		f := runtime.Features{IDs: []int64{3, 9, 200}, Weights: []float32{0.3, 0.3, 0.4}, Len: 3}
		want, got := make([]float32, 2), make([]float32, 2)
		w.Forward(&f, want)
		g.Forward(f.IDs, f.Weights, got)
		for k := range want {
			if d := want[k] - got[k]; d > 1e-5 || d < -1e-5 {
				t.Fatalf("dim %d: scores %v, want %v", dim, got, want)
			}
		}
	}
}
