// Package graph is the model half of paw's program format: the ONNX graphs
// a .paw artifact may hold, written field by field, with a pure-Go
// reference of what each computes. The compiler fills them with trained
// weights; the runtime checks them, rewrites hashnet tables compactly at
// load, in the form it runs (EncodeRun), and runs them with ONNX Runtime.
// Neither trains nor parses here.
package graph

import (
	"fmt"
	"math"

	"github.com/pawlogs/paw/internal/onnxpb"
)

// Input and output names of paw's graphs.
const (
	InputIDs       = "ids"       // hashnet-v1, int64 [batch, features]: table rows
	InputWeights   = "weights"   // hashnet-v1, float [batch, features]: pooling weights
	InputEmbedding = "embedding" // encoder-v1 head, float [batch, dim]: pooled encoder output
	OutputProbs    = "probs"     // float [batch, labels]: calibrated probabilities
)

// Hashnet is a hashnet-v1 graph's weights:
//
//	Gather(table, ids) * Unsqueeze(weights) -> ReduceSum(axis 1)
//	  [-> MatMul(head)] + bias -> Softmax
//
// With Head nil the table is folded (its rows are each bucket's logits,
// Width = labels) and the graph has no MatMul; otherwise the table is the
// embedding, Width its dimension, and Head is Width x labels.
type Hashnet struct {
	Rows, Width int
	Table       []float32 // Rows x Width, row-major
	Head        []float32 // Width x labels, or nil when folded
	Bias        []float32 // labels
}

// Folded reports whether the table holds logits directly.
func (h *Hashnet) Folded() bool { return h.Head == nil }

// Validate checks that the slices match the declared sizes.
func (h *Hashnet) Validate() error {
	l := len(h.Bias)
	switch {
	case h.Rows < 1 || h.Width < 1 || l < 2:
		return fmt.Errorf("hashnet graph %dx%d->%d: want rows>=1, width>=1, labels>=2", h.Rows, h.Width, l)
	case len(h.Table) != h.Rows*h.Width:
		return fmt.Errorf("hashnet table has %d values, want %d", len(h.Table), h.Rows*h.Width)
	case h.Folded() && h.Width != l:
		return fmt.Errorf("folded hashnet table is %d wide, want %d labels", h.Width, l)
	case !h.Folded() && len(h.Head) != h.Width*l:
		return fmt.Errorf("hashnet head has %d values, want %d", len(h.Head), h.Width*l)
	}
	return nil
}

// Encode writes the graph as an ONNX model, in the form an artifact
// holds.
func (h *Hashnet) Encode(producerVersion string) ([]byte, error) {
	return h.encode(producerVersion, false)
}

// EncodeRun writes the graph as the runtime runs it: the same function,
// pooled by GatherPooled. The artifact's form is fixed by the program
// format; this one is the runtime's own choice.
func (h *Hashnet) EncodeRun(producerVersion string) ([]byte, error) {
	return h.encode(producerVersion, true)
}

// GatherPooled writes the nodes that pool a batch: the table's rows for
// InputIDs, [batch, features, width], summed under InputWeights into
// "pooled", [batch, width], as one batched MatMul of each record's
// weights by its rows. ONNX Runtime 1.30's CPU kernels compute that bit
// for bit as the artifact's Mul and ReduceSum on x86-64, in half the
// time (BenchmarkProgramRun). A library or CPU whose one-row product
// fused each multiply into its add would round otherwise:
// TestCompactTableScoresBitIdentical runs both graphs, and
// TestScoresGolden pins the scores, so either would say so. The graph
// must hold the int64 initializer "axis1" = [1].
func GatherPooled(g *onnxpb.Graph, table string) {
	g.Node("Gather", "gather", []string{table, InputIDs}, []string{"rows"}, onnxpb.IntAttr("axis", 0))
	g.Node("Unsqueeze", "unsqueeze", []string{InputWeights, "axis1"}, []string{"weights3"})
	g.Node("MatMul", "weigh", []string{"weights3", "rows"}, []string{"weighted"})
	g.Node("Squeeze", "pool", []string{"weighted", "axis1"}, []string{"pooled"})
}

func (h *Hashnet) encode(producerVersion string, run bool) ([]byte, error) {
	if err := h.Validate(); err != nil {
		return nil, err
	}
	table, scores := "embedding", "scores"
	if h.Folded() {
		table, scores = "table", "pooled"
	}
	labels := len(h.Bias)
	g := &onnxpb.Graph{}
	if run {
		GatherPooled(g, table)
	} else {
		g.Node("Gather", "gather", []string{table, InputIDs}, []string{"rows"}, onnxpb.IntAttr("axis", 0))
		g.Node("Unsqueeze", "unsqueeze", []string{InputWeights, "axis2"}, []string{"weights3"})
		g.Node("Mul", "weigh", []string{"rows", "weights3"}, []string{"weighted"})
		g.Node("ReduceSum", "pool", []string{"weighted", "axis1"}, []string{"pooled"}, onnxpb.IntAttr("keepdims", 0))
	}
	if !h.Folded() {
		g.Node("MatMul", "head", []string{"pooled", "head"}, []string{"scores"})
	}
	g.Node("Add", "bias", []string{scores, "bias"}, []string{"logits"})
	g.Node("Softmax", "softmax", []string{"logits"}, []string{OutputProbs}, onnxpb.IntAttr("axis", -1))
	g.Name("hashnet_v1")
	g.Initializer(onnxpb.FloatTensor("bias", []int64{int64(labels)}, h.Bias))
	g.Initializer(onnxpb.Int64Tensor("axis1", []int64{1}, []int64{1}))
	if !run {
		g.Initializer(onnxpb.Int64Tensor("axis2", []int64{1}, []int64{2}))
	}
	g.Initializer(onnxpb.FloatTensor(table, []int64{int64(h.Rows), int64(h.Width)}, h.Table))
	if !h.Folded() {
		g.Initializer(onnxpb.FloatTensor("head", []int64{int64(h.Width), int64(labels)}, h.Head))
	}
	g.Input(onnxpb.ValueInfo(InputIDs, onnxpb.Int64, "batch", "features"))
	g.Input(onnxpb.ValueInfo(InputWeights, onnxpb.Float, "batch", "features"))
	g.Output(onnxpb.ValueInfo(OutputProbs, onnxpb.Float, "batch", labels))
	return g.Model(producerVersion), nil
}

// Forward is the graph in Go, on one record's features: the reference
// ONNX Runtime is checked against, and a way to score without it.
func (h *Hashnet) Forward(ids []int64, weights []float32, probs []float32) {
	x := make([]float32, h.Width)
	for i, id := range ids {
		row := h.Table[int(id)*h.Width : int(id+1)*h.Width]
		for d, v := range row {
			x[d] += weights[i] * v
		}
	}
	if h.Folded() {
		copy(probs, x)
		for k, b := range h.Bias {
			probs[k] += b
		}
	} else {
		linear(x, h.Head, h.Bias, probs)
	}
	Softmax(probs[:len(h.Bias)])
}

// Head is an encoder-v1 program's graph: a linear layer and a softmax over
// the frozen encoder's pooled embedding.
//
//	MatMul(embedding, W) + bias -> Softmax
type Head struct {
	Dim, Labels int
	W           []float32 // Dim x Labels, row-major
	Bias        []float32 // Labels
}

// Validate checks that the slices match the declared sizes.
func (h *Head) Validate() error {
	switch {
	case h.Dim < 1 || h.Labels < 2:
		return fmt.Errorf("head %d->%d: want dim>=1, labels>=2", h.Dim, h.Labels)
	case len(h.W) != h.Dim*h.Labels:
		return fmt.Errorf("head has %d weights, want %d", len(h.W), h.Dim*h.Labels)
	case len(h.Bias) != h.Labels:
		return fmt.Errorf("head has %d biases, want %d", len(h.Bias), h.Labels)
	}
	return nil
}

// Encode writes the graph as an ONNX model.
func (h *Head) Encode(producerVersion string) ([]byte, error) {
	if err := h.Validate(); err != nil {
		return nil, err
	}
	g := &onnxpb.Graph{}
	g.Node("MatMul", "head", []string{InputEmbedding, "W"}, []string{"scores"})
	g.Node("Add", "bias", []string{"scores", "bias"}, []string{"logits"})
	g.Node("Softmax", "softmax", []string{"logits"}, []string{OutputProbs}, onnxpb.IntAttr("axis", -1))
	g.Name("encoder_head_v1")
	g.Initializer(onnxpb.FloatTensor("W", []int64{int64(h.Dim), int64(h.Labels)}, h.W))
	g.Initializer(onnxpb.FloatTensor("bias", []int64{int64(h.Labels)}, h.Bias))
	g.Input(onnxpb.ValueInfo(InputEmbedding, onnxpb.Float, "batch", h.Dim))
	g.Output(onnxpb.ValueInfo(OutputProbs, onnxpb.Float, "batch", h.Labels))
	return g.Model(producerVersion), nil
}

// Forward is the graph in Go: probs = softmax(x W + b).
func (h *Head) Forward(x, probs []float32) {
	linear(x[:h.Dim], h.W, h.Bias, probs)
	Softmax(probs[:h.Labels])
}

// linear writes x W + b into z, W being len(x) x len(b), row-major.
func linear(x, w, b, z []float32) {
	copy(z, b)
	l := len(b)
	for d, xv := range x {
		row := w[d*l : (d+1)*l]
		for k, wv := range row {
			z[k] += xv * wv
		}
	}
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
