// Package onnxpb writes ONNX models field by field with protowire instead
// of through generated ONNX types: paw's graphs are small and fixed, the
// writer is deterministic by construction (fields in a fixed order, no
// maps), and it spares the project a large dependency tree.
package onnxpb

import (
	"encoding/binary"
	"math"

	"google.golang.org/protobuf/encoding/protowire"
)

// Versions written: ONNX IR 8, default-domain opset 18.
const (
	IRVersion = 8
	Opset     = 18
)

// ONNX TensorProto data types.
const (
	Float = 1
	Int64 = 7
)

// ONNX AttributeProto types.
const (
	attrFloat = 1
	attrInt   = 2
	attrInts  = 7
)

// FloatAttr is a float node attribute.
func FloatAttr(name string, v float32) []byte {
	var a []byte
	a = protowire.AppendTag(a, 1, protowire.BytesType)
	a = protowire.AppendString(a, name)
	a = protowire.AppendTag(a, 2, protowire.Fixed32Type)
	a = protowire.AppendFixed32(a, math.Float32bits(v))
	a = protowire.AppendTag(a, 20, protowire.VarintType)
	return protowire.AppendVarint(a, attrFloat)
}

// IntsAttr is an integer-list node attribute.
func IntsAttr(name string, vs ...int64) []byte {
	var a []byte
	a = protowire.AppendTag(a, 1, protowire.BytesType)
	a = protowire.AppendString(a, name)
	for _, v := range vs {
		a = protowire.AppendTag(a, 8, protowire.VarintType)
		a = protowire.AppendVarint(a, uint64(v))
	}
	a = protowire.AppendTag(a, 20, protowire.VarintType)
	return protowire.AppendVarint(a, attrInts)
}

// Graph writes an ONNX GraphProto field by field, in call order.
type Graph struct {
	nodes, rest []byte // nodes first, as ONNX lists them
	ins, outs   []byte
}

func (g *Graph) Node(op, name string, in, out []string, attrs ...[]byte) {
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
	g.nodes = protowire.AppendTag(g.nodes, 1, protowire.BytesType)
	g.nodes = protowire.AppendBytes(g.nodes, n)
}

func (g *Graph) Name(s string) {
	g.rest = protowire.AppendTag(g.rest, 2, protowire.BytesType)
	g.rest = protowire.AppendString(g.rest, s)
}

func (g *Graph) Initializer(t []byte) {
	g.rest = protowire.AppendTag(g.rest, 5, protowire.BytesType)
	g.rest = protowire.AppendBytes(g.rest, t)
}

func (g *Graph) Input(vi []byte) {
	g.ins = protowire.AppendTag(g.ins, 11, protowire.BytesType)
	g.ins = protowire.AppendBytes(g.ins, vi)
}

func (g *Graph) Output(vi []byte) {
	g.outs = protowire.AppendTag(g.outs, 12, protowire.BytesType)
	g.outs = protowire.AppendBytes(g.outs, vi)
}

// Model wraps the graph in a ModelProto (IR 8, opset 18).
func (g *Graph) Model(producerVersion string) []byte {
	graph := append(append(append(append([]byte(nil), g.nodes...), g.rest...), g.ins...), g.outs...)
	var m []byte
	m = protowire.AppendTag(m, 1, protowire.VarintType)
	m = protowire.AppendVarint(m, IRVersion)
	m = protowire.AppendTag(m, 2, protowire.BytesType)
	m = protowire.AppendString(m, "paw")
	m = protowire.AppendTag(m, 3, protowire.BytesType)
	m = protowire.AppendString(m, producerVersion)
	m = protowire.AppendTag(m, 7, protowire.BytesType)
	m = protowire.AppendBytes(m, graph)
	var opset []byte
	opset = protowire.AppendTag(opset, 1, protowire.BytesType)
	opset = protowire.AppendString(opset, "")
	opset = protowire.AppendTag(opset, 2, protowire.VarintType)
	opset = protowire.AppendVarint(opset, Opset)
	m = protowire.AppendTag(m, 8, protowire.BytesType)
	return protowire.AppendBytes(m, opset)
}

// IntAttr is an integer node attribute.
func IntAttr(name string, v int64) []byte {
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

// FloatTensor is a float initializer of the given shape.
func FloatTensor(name string, dims []int64, data []float32) []byte {
	t := tensorHeader(name, dims, Float)
	raw := make([]byte, 4*len(data))
	for i, v := range data {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(v))
	}
	t = protowire.AppendTag(t, 9, protowire.BytesType)
	return protowire.AppendBytes(t, raw)
}

// Int64Tensor is an int64 initializer of the given shape.
func Int64Tensor(name string, dims []int64, data []int64) []byte {
	t := tensorHeader(name, dims, Int64)
	raw := make([]byte, 8*len(data))
	for i, v := range data {
		binary.LittleEndian.PutUint64(raw[8*i:], uint64(v))
	}
	t = protowire.AppendTag(t, 9, protowire.BytesType)
	return protowire.AppendBytes(t, raw)
}

// ValueInfo describes a tensor input or output; each dim is a symbolic name
// (string) or a fixed size (int).
func ValueInfo(name string, elem uint64, dims ...any) []byte {
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
