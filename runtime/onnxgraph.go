package runtime

import (
	"encoding/binary"
	"math"

	"google.golang.org/protobuf/encoding/protowire"
)

// The ONNX model is written field by field with protowire instead of through
// generated ONNX types: it is a small, fixed graph, the encoder is
// deterministic by construction (fields in a fixed order, no maps), and it
// spares the project a large dependency tree.

// Graph input and output names of a hashnet-v1 model.
const (
	InputIDs      = "ids"     // int64 [batch, features]: embedding rows
	InputWeights  = "weights" // float [batch, features]: pooling weights
	OutputProbs   = "probs"   // float [batch, labels]: calibrated probabilities
	onnxIRVersion = 8
	onnxOpset     = 18
)

// ONNX TensorProto data types.
const (
	onnxFloat = 1
	onnxInt64 = 7
)

// ONNX AttributeProto types.
const (
	attrInt = 2
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
	var g []byte
	node := func(op, name string, in, out []string, attrs ...[]byte) {
		var n []byte
		for _, s := range in {
			n = protowire.AppendTag(n, 1, protowire.BytesType)
			n = protowire.AppendString(n, s)
		}
		for _, s := range out {
			n = protowire.AppendTag(n, 2, protowire.BytesType)
			n = protowire.AppendString(n, s)
		}
		n = protowire.AppendTag(n, 3, protowire.BytesType)
		n = protowire.AppendString(n, name)
		n = protowire.AppendTag(n, 4, protowire.BytesType)
		n = protowire.AppendString(n, op)
		for _, a := range attrs {
			n = protowire.AppendTag(n, 5, protowire.BytesType)
			n = protowire.AppendBytes(n, a)
		}
		g = protowire.AppendTag(g, 1, protowire.BytesType)
		g = protowire.AppendBytes(g, n)
	}
	fold := w.Labels < w.Dim
	table := "embedding"
	if fold {
		table = "table"
	}
	node("Gather", "gather", []string{table, InputIDs}, []string{"rows"}, intAttr("axis", 0))
	node("Unsqueeze", "unsqueeze", []string{InputWeights, "axis2"}, []string{"weights3"})
	node("Mul", "weigh", []string{"rows", "weights3"}, []string{"weighted"})
	node("ReduceSum", "pool", []string{"weighted", "axis1"}, []string{"pooled"}, intAttr("keepdims", 0))
	scores := "pooled"
	if !fold {
		node("MatMul", "head", []string{"pooled", "head"}, []string{"scores"})
		scores = "scores"
	}
	node("Add", "bias", []string{scores, "bias"}, []string{"logits"})
	node("Softmax", "softmax", []string{"logits"}, []string{OutputProbs}, intAttr("axis", -1))

	g = protowire.AppendTag(g, 2, protowire.BytesType)
	g = protowire.AppendString(g, "hashnet_v1")
	tensors := [][]byte{
		floatTensor("bias", []int64{int64(w.Labels)}, w.Bias),
		int64Tensor("axis1", []int64{1}, []int64{1}),
		int64Tensor("axis2", []int64{1}, []int64{2}),
	}
	if fold {
		tensors = append(tensors, floatTensor("table", []int64{int64(w.Buckets), int64(w.Labels)}, w.FoldedTable()))
	} else {
		tensors = append(tensors,
			floatTensor("embedding", []int64{int64(w.Buckets), int64(w.Dim)}, w.Embedding),
			floatTensor("head", []int64{int64(w.Dim), int64(w.Labels)}, w.Head))
	}
	for _, t := range tensors {
		g = protowire.AppendTag(g, 5, protowire.BytesType)
		g = protowire.AppendBytes(g, t)
	}
	for _, vi := range [][]byte{
		valueInfo(InputIDs, onnxInt64, "batch", "features"),
		valueInfo(InputWeights, onnxFloat, "batch", "features"),
	} {
		g = protowire.AppendTag(g, 11, protowire.BytesType)
		g = protowire.AppendBytes(g, vi)
	}
	g = protowire.AppendTag(g, 12, protowire.BytesType)
	g = protowire.AppendBytes(g, valueInfo(OutputProbs, onnxFloat, "batch", w.Labels))

	var m []byte
	m = protowire.AppendTag(m, 1, protowire.VarintType)
	m = protowire.AppendVarint(m, onnxIRVersion)
	m = protowire.AppendTag(m, 2, protowire.BytesType)
	m = protowire.AppendString(m, "paw")
	m = protowire.AppendTag(m, 3, protowire.BytesType)
	m = protowire.AppendString(m, producerVersion)
	m = protowire.AppendTag(m, 7, protowire.BytesType)
	m = protowire.AppendBytes(m, g)
	var opset []byte
	opset = protowire.AppendTag(opset, 1, protowire.BytesType)
	opset = protowire.AppendString(opset, "")
	opset = protowire.AppendTag(opset, 2, protowire.VarintType)
	opset = protowire.AppendVarint(opset, onnxOpset)
	m = protowire.AppendTag(m, 8, protowire.BytesType)
	m = protowire.AppendBytes(m, opset)
	return m, nil
}

func intAttr(name string, v int64) []byte {
	var a []byte
	a = protowire.AppendTag(a, 1, protowire.BytesType)
	a = protowire.AppendString(a, name)
	a = protowire.AppendTag(a, 3, protowire.VarintType)
	a = protowire.AppendVarint(a, uint64(v))
	a = protowire.AppendTag(a, 20, protowire.VarintType)
	a = protowire.AppendVarint(a, attrInt)
	return a
}

func tensorHeader(name string, dims []int64, dtype uint64) []byte {
	var t []byte
	for _, d := range dims {
		t = protowire.AppendTag(t, 1, protowire.VarintType)
		t = protowire.AppendVarint(t, uint64(d))
	}
	t = protowire.AppendTag(t, 2, protowire.VarintType)
	t = protowire.AppendVarint(t, dtype)
	t = protowire.AppendTag(t, 8, protowire.BytesType)
	t = protowire.AppendString(t, name)
	return t
}

func floatTensor(name string, dims []int64, data []float32) []byte {
	t := tensorHeader(name, dims, onnxFloat)
	raw := make([]byte, 4*len(data))
	for i, v := range data {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(v))
	}
	t = protowire.AppendTag(t, 9, protowire.BytesType)
	return protowire.AppendBytes(t, raw)
}

func int64Tensor(name string, dims []int64, data []int64) []byte {
	t := tensorHeader(name, dims, onnxInt64)
	raw := make([]byte, 8*len(data))
	for i, v := range data {
		binary.LittleEndian.PutUint64(raw[8*i:], uint64(v))
	}
	t = protowire.AppendTag(t, 9, protowire.BytesType)
	return protowire.AppendBytes(t, raw)
}

// valueInfo describes a tensor input or output; each dim is a symbolic name
// (string) or a fixed size (int).
func valueInfo(name string, elem uint64, dims ...any) []byte {
	var shape []byte
	for _, d := range dims {
		var dim []byte
		switch v := d.(type) {
		case string:
			dim = protowire.AppendTag(dim, 2, protowire.BytesType)
			dim = protowire.AppendString(dim, v)
		case int:
			dim = protowire.AppendTag(dim, 1, protowire.VarintType)
			dim = protowire.AppendVarint(dim, uint64(v))
		}
		shape = protowire.AppendTag(shape, 1, protowire.BytesType)
		shape = protowire.AppendBytes(shape, dim)
	}
	var tt []byte
	tt = protowire.AppendTag(tt, 1, protowire.VarintType)
	tt = protowire.AppendVarint(tt, elem)
	tt = protowire.AppendTag(tt, 2, protowire.BytesType)
	tt = protowire.AppendBytes(tt, shape)
	var typ []byte
	typ = protowire.AppendTag(typ, 1, protowire.BytesType)
	typ = protowire.AppendBytes(typ, tt)
	var vi []byte
	vi = protowire.AppendTag(vi, 1, protowire.BytesType)
	vi = protowire.AppendString(vi, name)
	vi = protowire.AppendTag(vi, 2, protowire.BytesType)
	return protowire.AppendBytes(vi, typ)
}
