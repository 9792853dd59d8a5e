package runtime

import (
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/pawlogs/paw/runtime/graph"
)

// A program's model.onnx is accepted only when it is exactly one of the
// graphs paw's interpreters produce, with tensor sizes that match its
// manifest. ONNX can express loops, subgraphs, local functions and
// initializers read from files, and ONNX Runtime would run any of them: a
// 6 KB Loop hung a processor, an initializer with external data read
// ./secret.bin as weights, and a head with 5 outputs for 2 labels failed
// every batch after a hot reload. Checking the graph's shape here, before
// ONNX Runtime sees it, refuses all of those with a reason.

// onnxGraph is what checkModel reads of a ModelProto.
type onnxGraph struct {
	nodes   []onnxNode
	inits   map[string]onnxTensor
	inputs  []string
	outputs []string
}

type onnxNode struct {
	op, domain string
	in, out    []string
	attrs      map[string]int64 // int attributes; anything else is refused while parsing
}

type onnxTensor struct {
	dims  []int64
	dtype uint64
	raw   []byte
}

// rowTable is a hashnet-v1 graph's per-bucket table: "table" when the
// head is folded into it (one column per label), else "embedding".
func (g *onnxGraph) rowTable() (t onnxTensor, folded bool) {
	if t, ok := g.inits["table"]; ok {
		return t, true
	}
	return g.inits["embedding"], false
}

// wantNode is one node of an expected graph.
type wantNode struct {
	op      string
	in, out []string
	attrs   map[string]int64
}

// wantTensor is an expected initializer; vals, when set, are its int64s.
type wantTensor struct {
	dims  []int64
	dtype uint64
	vals  []int64
}

const (
	onnxFloat = 1
	onnxInt64 = 7
)

// expectedGraph is the graph paw's compiler writes for a manifest
// (graph.Hashnet, graph.Head), as nodes, initializers and inputs.
func expectedGraph(m *Manifest, folded bool) ([]wantNode, map[string]wantTensor, []string) {
	l := int64(len(m.Labels))
	d := int64(m.Model.Dim)
	softmax := wantNode{"Softmax", []string{"logits"}, []string{graph.OutputProbs}, map[string]int64{"axis": -1}}
	if m.Interpreter == InterpreterEncoderV1 {
		return []wantNode{
				{"MatMul", []string{graph.InputEmbedding, "W"}, []string{"scores"}, nil},
				{"Add", []string{"scores", "bias"}, []string{"logits"}, nil},
				softmax,
			}, map[string]wantTensor{
				"W":    {[]int64{d, l}, onnxFloat, nil},
				"bias": {[]int64{l}, onnxFloat, nil},
			}, []string{graph.InputEmbedding}
	}
	b := int64(m.Model.Buckets)
	table, scores := "embedding", "scores"
	if folded {
		table, scores = "table", "pooled"
	}
	nodes := []wantNode{
		{"Gather", []string{table, graph.InputIDs}, []string{"rows"}, map[string]int64{"axis": 0}},
		{"Unsqueeze", []string{graph.InputWeights, "axis2"}, []string{"weights3"}, nil},
		{"Mul", []string{"rows", "weights3"}, []string{"weighted"}, nil},
		{"ReduceSum", []string{"weighted", "axis1"}, []string{"pooled"}, map[string]int64{"keepdims": 0}},
	}
	inits := map[string]wantTensor{
		"bias":  {[]int64{l}, onnxFloat, nil},
		"axis1": {[]int64{1}, onnxInt64, []int64{1}},
		"axis2": {[]int64{1}, onnxInt64, []int64{2}},
	}
	if folded {
		inits["table"] = wantTensor{[]int64{b, l}, onnxFloat, nil}
	} else {
		nodes = append(nodes, wantNode{"MatMul", []string{"pooled", "head"}, []string{"scores"}, nil})
		inits["embedding"] = wantTensor{[]int64{b, d}, onnxFloat, nil}
		inits["head"] = wantTensor{[]int64{d, l}, onnxFloat, nil}
	}
	nodes = append(nodes, wantNode{"Add", []string{scores, "bias"}, []string{"logits"}, nil}, softmax)
	return nodes, inits, []string{graph.InputIDs, graph.InputWeights}
}

// checkModel refuses a model that is not the graph m's interpreter runs.
func checkModel(m *Manifest, model []byte) error {
	g, err := parseONNX(model)
	if err != nil {
		return err
	}
	_, folded := g.rowTable()
	nodes, inits, inputs := expectedGraph(m, folded)
	if len(g.nodes) != len(nodes) {
		return fmt.Errorf("graph has %d nodes, a %s program has %d", len(g.nodes), m.Interpreter, len(nodes))
	}
	for i, w := range nodes {
		n := g.nodes[i]
		if n.op != w.op || (n.domain != "" && n.domain != "ai.onnx") || !slices.Equal(n.in, w.in) || !slices.Equal(n.out, w.out) {
			return fmt.Errorf("node %d is %s%v->%v, a %s program has %s%v->%v", i, n.op, n.in, n.out, m.Interpreter, w.op, w.in, w.out)
		}
		if len(n.attrs) != len(w.attrs) {
			return fmt.Errorf("node %d (%s) has %d attributes, want %d", i, n.op, len(n.attrs), len(w.attrs))
		}
		for k, v := range w.attrs {
			if got, ok := n.attrs[k]; !ok || got != v {
				return fmt.Errorf("node %d (%s): attribute %s must be %d", i, n.op, k, v)
			}
		}
	}
	if len(g.inits) != len(inits) {
		return fmt.Errorf("graph has %d initializers, a %s program has %d", len(g.inits), m.Interpreter, len(inits))
	}
	for _, name := range slices.Sorted(maps.Keys(inits)) {
		w := inits[name]
		t, ok := g.inits[name]
		if !ok {
			return fmt.Errorf("initializer %q is missing", name)
		}
		if t.dtype != w.dtype || !slices.Equal(t.dims, w.dims) {
			return fmt.Errorf("initializer %q is type %d %v, the manifest needs type %d %v", name, t.dtype, t.dims, w.dtype, w.dims)
		}
		size := int64(4)
		if w.dtype == onnxInt64 {
			size = 8
		}
		for _, d := range w.dims {
			size *= d
		}
		if int64(len(t.raw)) != size {
			return fmt.Errorf("initializer %q holds %d bytes, its shape needs %d", name, len(t.raw), size)
		}
		for i, v := range w.vals {
			if got := int64(binary.LittleEndian.Uint64(t.raw[8*i:])); got != v {
				return fmt.Errorf("initializer %q value %d is %d, want %d", name, i, got, v)
			}
		}
	}
	if !slices.Equal(g.inputs, inputs) {
		return fmt.Errorf("graph inputs %v, a %s program has %v", g.inputs, m.Interpreter, inputs)
	}
	if !slices.Equal(g.outputs, []string{graph.OutputProbs}) {
		return fmt.Errorf("graph outputs %v, want [%s]", g.outputs, graph.OutputProbs)
	}
	return nil
}

// ModelProto, GraphProto, NodeProto, AttributeProto and TensorProto field
// numbers (onnx.proto3).
const (
	modelGraph        = 7
	modelOpset        = 8
	modelTrainingInfo = 20
	modelFunctions    = 25

	graphNode              = 1
	graphInitializer       = 5
	graphInput             = 11
	graphOutput            = 12
	graphSparseInitializer = 15

	nodeInput     = 1
	nodeOutput    = 2
	nodeOpType    = 4
	nodeAttribute = 5
	nodeDomain    = 7

	attrName = 1
	attrI    = 3
	attrType = 20

	tensorDims         = 1
	tensorDataType     = 2
	tensorName         = 8
	tensorRawData      = 9
	tensorExternalData = 13
	tensorDataLocation = 14
)

var errTruncated = errors.New("model.onnx is truncated or not protobuf")

// fields calls fn for each top-level field of a protobuf message.
func fields(b []byte, fn func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return errTruncated
		}
		b = b[n:]
		var v []byte
		var x uint64
		switch typ {
		case protowire.VarintType:
			x, n = protowire.ConsumeVarint(b)
		case protowire.BytesType:
			v, n = protowire.ConsumeBytes(b)
		case protowire.Fixed32Type:
			var u uint32
			u, n = protowire.ConsumeFixed32(b)
			x = uint64(u)
		case protowire.Fixed64Type:
			x, n = protowire.ConsumeFixed64(b)
		default:
			return fmt.Errorf("model.onnx: unsupported wire type %d", typ)
		}
		if n < 0 {
			return errTruncated
		}
		b = b[n:]
		if err := fn(num, typ, v, x); err != nil {
			return err
		}
	}
	return nil
}

func parseONNX(b []byte) (*onnxGraph, error) {
	var graph []byte
	err := fields(b, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
		switch num {
		case modelGraph:
			if graph != nil {
				return errors.New("model has two graphs")
			}
			graph = v
		case modelFunctions:
			return errors.New("model defines local functions")
		case modelTrainingInfo:
			return errors.New("model carries training info")
		case modelOpset:
			return fields(v, func(num protowire.Number, _ protowire.Type, v []byte, _ uint64) error {
				if num == 1 && len(v) > 0 && string(v) != "ai.onnx" {
					return fmt.Errorf("model imports operator set %q", v)
				}
				return nil
			})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if graph == nil {
		return nil, errors.New("model has no graph")
	}
	g := &onnxGraph{inits: map[string]onnxTensor{}}
	err = fields(graph, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
		switch num {
		case graphNode:
			n, err := parseNode(v)
			if err != nil {
				return fmt.Errorf("node %d: %w", len(g.nodes), err)
			}
			g.nodes = append(g.nodes, n)
		case graphInitializer:
			name, t, err := parseTensor(v)
			if err != nil {
				return fmt.Errorf("initializer %q: %w", name, err)
			}
			if _, dup := g.inits[name]; dup {
				return fmt.Errorf("initializer %q is defined twice", name)
			}
			g.inits[name] = t
		case graphSparseInitializer:
			return errors.New("graph has sparse initializers")
		case graphInput, graphOutput:
			name, err := valueInfoName(v)
			if err != nil {
				return err
			}
			if num == graphInput {
				g.inputs = append(g.inputs, name)
			} else {
				g.outputs = append(g.outputs, name)
			}
		}
		return nil
	})
	return g, err
}

func parseNode(b []byte) (onnxNode, error) {
	n := onnxNode{attrs: map[string]int64{}}
	err := fields(b, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
		switch num {
		case nodeInput:
			n.in = append(n.in, string(v))
		case nodeOutput:
			n.out = append(n.out, string(v))
		case nodeOpType:
			n.op = string(v)
		case nodeDomain:
			n.domain = string(v)
		case nodeAttribute:
			var name string
			var i int64
			err := fields(v, func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error {
				switch num {
				case attrName:
					name = string(v)
				case attrI:
					i = int64(x)
				case attrType:
					if x != 2 { // INT: paw's graphs carry no graphs, tensors or strings in attributes
						return fmt.Errorf("attribute type %d is not an integer", x)
					}
				default:
					return fmt.Errorf("attribute field %d is not read by paw", num)
				}
				return nil
			})
			if err != nil {
				return fmt.Errorf("attribute %q: %w", name, err)
			}
			if _, dup := n.attrs[name]; dup {
				return fmt.Errorf("attribute %q is set twice", name)
			}
			n.attrs[name] = i
		}
		return nil
	})
	return n, err
}

func parseTensor(b []byte) (string, onnxTensor, error) {
	var name string
	var t onnxTensor
	err := fields(b, func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error {
		switch num {
		case tensorDims:
			if typ == protowire.BytesType { // packed
				for len(v) > 0 {
					d, n := protowire.ConsumeVarint(v)
					if n < 0 {
						return errTruncated
					}
					t.dims, v = append(t.dims, int64(d)), v[n:]
				}
				return nil
			}
			t.dims = append(t.dims, int64(x))
		case tensorDataType:
			t.dtype = x
		case tensorName:
			name = string(v)
		case tensorRawData:
			t.raw = v
		case tensorExternalData:
			return errors.New("external data is refused: a program carries its weights inside it")
		case tensorDataLocation:
			if x != 0 {
				return errors.New("external data is refused: a program carries its weights inside it")
			}
		default:
			return fmt.Errorf("tensor field %d is not read by paw (weights must be raw_data)", num)
		}
		return nil
	})
	return name, t, err
}

func valueInfoName(b []byte) (string, error) {
	var name string
	err := fields(b, func(num protowire.Number, _ protowire.Type, v []byte, _ uint64) error {
		if num == 1 {
			name = string(v)
		}
		return nil
	})
	return name, err
}
