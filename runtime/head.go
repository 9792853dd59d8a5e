package runtime

import (
	"fmt"

	"github.com/pawlogs/paw/internal/onnxpb"
)

// InputEmbedding is the input of an encoder-v1 program's head graph: float
// [batch, dim] pooled encoder embeddings.
const InputEmbedding = "embedding"

// HeadWeights are an encoder-v1 program's parameters: a linear layer and a
// softmax over the frozen encoder's pooled embedding. The calibration
// temperature is folded in.
type HeadWeights struct {
	Dim    int       // embedding width
	Labels int       // output classes
	W      []float32 // Dim x Labels, row-major
	Bias   []float32 // Labels
}

// Validate checks that the slices match the declared sizes.
func (h *HeadWeights) Validate() error {
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

// Forward is the pure-Go evaluation of the head graph, the reference ONNX
// Runtime is checked against: probs = softmax(x W + b).
func (h *HeadWeights) Forward(x, probs []float32) {
	copy(probs, h.Bias)
	for d, xv := range x[:h.Dim] {
		row := h.W[d*h.Labels : (d+1)*h.Labels]
		for k, w := range row {
			probs[k] += xv * w
		}
	}
	Softmax(probs[:h.Labels])
}

// BuildHeadONNX serializes h as an ONNX model:
//
//	MatMul(embedding, W) + bias -> Softmax
func BuildHeadONNX(h *HeadWeights, producerVersion string) ([]byte, error) {
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
