package compiler

import (
	"fmt"

	"github.com/pawlogs/paw/runtime"
	"github.com/pawlogs/paw/runtime/graph"
)

// HashnetWeights are a hashnet-v1 program's parameters as training keeps
// them: an embedding table and a linear head. The calibration temperature
// is already folded into Head and Bias.
type HashnetWeights struct {
	Buckets   int       // embedding rows, row 0 is padding and stays zero
	Dim       int       // embedding width
	Labels    int       // output classes
	Embedding []float32 // Buckets x Dim, row-major
	Head      []float32 // Dim x Labels, row-major
	Bias      []float32 // Labels
}

// Validate checks that the slices match the declared sizes.
func (w *HashnetWeights) Validate() error {
	switch {
	case w.Buckets < 2 || w.Dim < 1 || w.Labels < 2:
		return fmt.Errorf("hashnet sizes %dx%d->%d: want buckets>=2, dim>=1, labels>=2", w.Buckets, w.Dim, w.Labels)
	case len(w.Embedding) != w.Buckets*w.Dim:
		return fmt.Errorf("hashnet embedding has %d values, want %d", len(w.Embedding), w.Buckets*w.Dim)
	case len(w.Head) != w.Dim*w.Labels:
		return fmt.Errorf("hashnet head has %d values, want %d", len(w.Head), w.Dim*w.Labels)
	case len(w.Bias) != w.Labels:
		return fmt.Errorf("hashnet bias has %d values, want %d", len(w.Bias), w.Labels)
	}
	return nil
}

// Pool writes the weighted sum of the embedding rows of f into x (len Dim).
func (w *HashnetWeights) Pool(f *runtime.Features, x []float32) {
	for d := range x {
		x[d] = 0
	}
	for i := 0; i < f.Len; i++ {
		row := w.Embedding[int(f.IDs[i])*w.Dim : int(f.IDs[i]+1)*w.Dim]
		wt := f.Weights[i]
		for d, v := range row {
			x[d] += wt * v
		}
	}
}

// Logits writes Head^T x + Bias into z (len Labels).
func (w *HashnetWeights) Logits(x, z []float32) {
	copy(z, w.Bias)
	for d, xv := range x {
		row := w.Head[d*w.Labels : (d+1)*w.Labels]
		for k, hv := range row {
			z[k] += xv * hv
		}
	}
}

// Forward scores one record as training sees the model: the unfolded
// graph's Go reference, the compiler's own evaluation for calibration,
// base rates and test accuracy (the runtime runs the folded graph with
// ONNX Runtime).
func (w *HashnetWeights) Forward(f *runtime.Features, probs []float32) {
	g := graph.Hashnet{Rows: w.Buckets, Width: w.Dim, Table: w.Embedding, Head: w.Head, Bias: w.Bias}
	g.Forward(f.IDs[:f.Len], f.Weights[:f.Len], probs)
}

// toGraph is the model the artifact holds. Pooling and the head are both
// linear, so with fewer labels than embedding dimensions the head is
// folded into the table (table = embedding x head): the graph gathers
// Labels floats per feature instead of Dim, the same function at a
// fraction of the memory traffic.
func (w *HashnetWeights) toGraph() (*graph.Hashnet, error) {
	if err := w.Validate(); err != nil {
		return nil, err
	}
	if w.Labels < w.Dim {
		return &graph.Hashnet{Rows: w.Buckets, Width: w.Labels, Table: w.foldedTable(), Bias: w.Bias}, nil
	}
	return &graph.Hashnet{Rows: w.Buckets, Width: w.Dim, Table: w.Embedding, Head: w.Head, Bias: w.Bias}, nil
}

// foldedTable is Embedding x Head (Buckets x Labels): each bucket's
// contribution to the logits. Summation runs in float64 and rounds once.
func (w *HashnetWeights) foldedTable() []float32 {
	t := make([]float32, w.Buckets*w.Labels)
	for b := 0; b < w.Buckets; b++ {
		row := w.Embedding[b*w.Dim : (b+1)*w.Dim]
		for k := 0; k < w.Labels; k++ {
			var sum float64
			for d, e := range row {
				sum += float64(e) * float64(w.Head[d*w.Labels+k])
			}
			t[b*w.Labels+k] = float32(sum)
		}
	}
	return t
}

// encode writes w as the artifact's model.onnx.
func (w *HashnetWeights) encode() ([]byte, error) {
	g, err := w.toGraph()
	if err != nil {
		return nil, err
	}
	return g.Encode(Version)
}
