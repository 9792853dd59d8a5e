package runtime

import (
	"fmt"
	"math"
)

// InterpreterHashnetV1 is the default interpreter: hashed n-gram embeddings,
// mean-pooled, then a linear head and a softmax.
const InterpreterHashnetV1 = "hashnet-v1"

// HashnetWeights are a hashnet-v1 program's parameters. The calibration
// temperature is already folded into Head and Bias.
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
func (w *HashnetWeights) Pool(f *Features, x []float32) {
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

// FoldedTable is Embedding x Head (Buckets x Labels): each bucket's
// contribution to the logits. Summation runs in float64 and rounds once.
func (w *HashnetWeights) FoldedTable() []float32 {
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

// Softmax turns logits into probabilities in place.
func Softmax(z []float32) {
	m := z[0]
	for _, v := range z[1:] {
		if v > m {
			m = v
		}
	}
	var sum float32
	for i, v := range z {
		e := float32(math.Exp(float64(v - m)))
		z[i] = e
		sum += e
	}
	for i := range z {
		z[i] /= sum
	}
}

// Forward is the pure-Go evaluation of the hashnet-v1 graph. The runtime
// executes programs with ONNX Runtime; this exists so training and tests can
// check the graph against an independent implementation.
func (w *HashnetWeights) Forward(f *Features, probs []float32) {
	x := make([]float32, w.Dim)
	w.Pool(f, x)
	w.Logits(x, probs)
	Softmax(probs)
}

// ReadHashnet reads a hashnet-v1 program's weights back from its model, so
// that Go code (the sidecar's check of a learned program) can score with
// a published program without ONNX Runtime. A folded model's table is
// the embedding, with the identity as its head.
func ReadHashnet(a *Artifact) (*HashnetWeights, error) {
	if a.Manifest.Interpreter != InterpreterHashnetV1 {
		return nil, fmt.Errorf("program %s is %s, not %s", a.Manifest.Name, a.Manifest.Interpreter, InterpreterHashnetV1)
	}
	g, err := parseONNX(a.Model)
	if err != nil {
		return nil, err
	}
	l := len(a.Manifest.Labels)
	w := &HashnetWeights{Buckets: a.Manifest.Model.Buckets, Labels: l, Bias: floatsOf(g.inits["bias"].raw)}
	if t, folded := g.rowTable(); folded {
		w.Dim, w.Embedding, w.Head = l, floatsOf(t.raw), make([]float32, l*l)
		for k := 0; k < l; k++ {
			w.Head[k*l+k] = 1
		}
	} else {
		w.Dim, w.Embedding, w.Head = a.Manifest.Model.Dim, floatsOf(t.raw), floatsOf(g.inits["head"].raw)
	}
	if err := w.Validate(); err != nil {
		return nil, err
	}
	return w, nil
}
