package runtime

import "github.com/pawlogs/paw/internal/onnxpb"

// Graph input and output names of a hashnet-v1 model.
const (
	InputIDs     = "ids"     // int64 [batch, features]: embedding rows
	InputWeights = "weights" // float [batch, features]: pooling weights
	OutputProbs  = "probs"   // float [batch, labels]: calibrated probabilities
)

// BuildHashnetONNX serializes w as an ONNX model:
//
//	Gather(embedding, ids) * Unsqueeze(weights) -> ReduceSum(axis 1)
//	  -> MatMul(head) + bias -> Softmax
//
// Pooling and the head are both linear, so when there are fewer labels than
// embedding dimensions the head is folded into the table at compile time
// (table = embedding x head) and the graph gathers Labels floats per feature
// instead of Dim: the same function, a fraction of the memory traffic.
//
//	Gather(table, ids) * Unsqueeze(weights) -> ReduceSum(axis 1) + bias -> Softmax
func BuildHashnetONNX(w *HashnetWeights, producerVersion string) ([]byte, error) {
	if err := w.Validate(); err != nil {
		return nil, err
	}
	if w.Labels < w.Dim {
		return hashnetGraph("table", w.Buckets, w.Labels, w.FoldedTable(), nil, w.Bias, producerVersion), nil
	}
	return hashnetGraph("embedding", w.Buckets, w.Dim, w.Embedding, w.Head, w.Bias, producerVersion), nil
}

// hashnetGraph writes the graph over a table of rows x width values: the
// folded "table" (head nil) or the "embedding" followed by head.
func hashnetGraph(table string, rows, width int, vals, head, bias []float32, producerVersion string) []byte {
	g := &onnxpb.Graph{}
	labels := len(bias)
	g.Node("Gather", "gather", []string{table, InputIDs}, []string{"rows"}, onnxpb.IntAttr("axis", 0))
	g.Node("Unsqueeze", "unsqueeze", []string{InputWeights, "axis2"}, []string{"weights3"})
	g.Node("Mul", "weigh", []string{"rows", "weights3"}, []string{"weighted"})
	g.Node("ReduceSum", "pool", []string{"weighted", "axis1"}, []string{"pooled"}, onnxpb.IntAttr("keepdims", 0))
	scores := "pooled"
	if head != nil {
		g.Node("MatMul", "head", []string{"pooled", "head"}, []string{"scores"})
		scores = "scores"
	}
	g.Node("Add", "bias", []string{scores, "bias"}, []string{"logits"})
	g.Node("Softmax", "softmax", []string{"logits"}, []string{OutputProbs}, onnxpb.IntAttr("axis", -1))
	g.Name("hashnet_v1")
	g.Initializer(onnxpb.FloatTensor("bias", []int64{int64(labels)}, bias))
	g.Initializer(onnxpb.Int64Tensor("axis1", []int64{1}, []int64{1}))
	g.Initializer(onnxpb.Int64Tensor("axis2", []int64{1}, []int64{2}))
	g.Initializer(onnxpb.FloatTensor(table, []int64{int64(rows), int64(width)}, vals))
	if head != nil {
		g.Initializer(onnxpb.FloatTensor("head", []int64{int64(width), int64(labels)}, head))
	}
	g.Input(onnxpb.ValueInfo(InputIDs, onnxpb.Int64, "batch", "features"))
	g.Input(onnxpb.ValueInfo(InputWeights, onnxpb.Float, "batch", "features"))
	g.Output(onnxpb.ValueInfo(OutputProbs, onnxpb.Float, "batch", labels))
	return g.Model(producerVersion)
}
