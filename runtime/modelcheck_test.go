package runtime

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/pawlogs/paw/internal/onnxpb"
	"github.com/pawlogs/paw/runtime/graph"
)

// hostileModel builds model.onnx variants for the test manifest (256
// buckets, dim 2, 2 labels) by changing paw's own hashnet graph.
func hostileModel(t testing.TB, mut func(g *onnxpb.Graph, w *graph.Hashnet)) []byte {
	t.Helper()
	w := &graph.Hashnet{Rows: 256, Width: 2, Table: make([]float32, 512), Head: make([]float32, 4), Bias: make([]float32, 2)}
	g := &onnxpb.Graph{}
	g.Node("Gather", "gather", []string{"embedding", graph.InputIDs}, []string{"rows"}, onnxpb.IntAttr("axis", 0))
	g.Node("Unsqueeze", "unsqueeze", []string{graph.InputWeights, "axis2"}, []string{"weights3"})
	g.Node("Mul", "weigh", []string{"rows", "weights3"}, []string{"weighted"})
	g.Node("ReduceSum", "pool", []string{"weighted", "axis1"}, []string{"pooled"}, onnxpb.IntAttr("keepdims", 0))
	g.Node("MatMul", "head", []string{"pooled", "head"}, []string{"scores"})
	g.Node("Add", "bias", []string{"scores", "bias"}, []string{"logits"})
	mut(g, w)
	g.Initializer(onnxpb.Int64Tensor("axis1", []int64{1}, []int64{1}))
	g.Initializer(onnxpb.Int64Tensor("axis2", []int64{1}, []int64{2}))
	g.Initializer(onnxpb.FloatTensor("bias", []int64{int64(len(w.Bias))}, w.Bias))
	g.Input(onnxpb.ValueInfo(graph.InputIDs, onnxpb.Int64, "batch", "features"))
	g.Input(onnxpb.ValueInfo(graph.InputWeights, onnxpb.Float, "batch", "features"))
	g.Output(onnxpb.ValueInfo(graph.OutputProbs, onnxpb.Float, "batch", len(w.Bias)))
	return g.Model("test")
}

func softmaxNode(g *onnxpb.Graph) {
	g.Node("Softmax", "softmax", []string{"logits"}, []string{graph.OutputProbs}, onnxpb.IntAttr("axis", -1))
}

func plainTables(g *onnxpb.Graph, w *graph.Hashnet) {
	g.Initializer(onnxpb.FloatTensor("embedding", []int64{int64(w.Rows), int64(w.Width)}, w.Table))
	g.Initializer(onnxpb.FloatTensor("head", []int64{int64(w.Width), int64(len(w.Bias))}, w.Head))
}

// graphAttr is an AttributeProto of type GRAPH, as Loop's body is.
func graphAttr(name string, body []byte) []byte {
	var a []byte
	a = protowire.AppendTag(a, 1, protowire.BytesType)
	a = protowire.AppendString(a, name)
	a = protowire.AppendTag(a, 6, protowire.BytesType)
	a = protowire.AppendBytes(a, body)
	a = protowire.AppendTag(a, 20, protowire.VarintType)
	return protowire.AppendVarint(a, 5)
}

func TestCheckModelRefusesForeignGraphs(t *testing.T) {
	m := testManifest()
	tests := []struct {
		name  string
		model []byte
		want  string
	}{
		{"five outputs for two labels", hostileModel(t, func(g *onnxpb.Graph, w *graph.Hashnet) {
			w.Head, w.Bias = make([]float32, 10), make([]float32, 5)
			softmaxNode(g)
			plainTables(g, w)
		}), `initializer "bias" is type 1 [5], the manifest needs type 1 [2]`},
		{"a loop", hostileModel(t, func(g *onnxpb.Graph, w *graph.Hashnet) {
			g.Node("Loop", "spin", []string{"trip", "cond"}, []string{"logits2"}, graphAttr("body", nil))
			softmaxNode(g)
			plainTables(g, w)
		}), `attribute "body": attribute field 6 is not read by paw`},
		{"an extra op", hostileModel(t, func(g *onnxpb.Graph, w *graph.Hashnet) {
			g.Node("Identity", "id", []string{"logits"}, []string{"logits2"})
			softmaxNode(g)
			plainTables(g, w)
		}), "graph has 8 nodes"},
		{"a different op", hostileModel(t, func(g *onnxpb.Graph, w *graph.Hashnet) {
			g.Node("Sigmoid", "softmax", []string{"logits"}, []string{graph.OutputProbs})
			plainTables(g, w)
		}), "node 6 is Sigmoid"},
		{"external weights", hostileModel(t, func(g *onnxpb.Graph, w *graph.Hashnet) {
			softmaxNode(g)
			t := onnxpb.FloatTensor("embedding", []int64{256, 2}, nil)
			kv := protowire.AppendString(protowire.AppendTag(nil, 1, protowire.BytesType), "location")
			kv = protowire.AppendString(protowire.AppendTag(kv, 2, protowire.BytesType), "secret.bin")
			t = protowire.AppendBytes(protowire.AppendTag(t, 13, protowire.BytesType), kv)
			t = protowire.AppendVarint(protowire.AppendTag(t, 14, protowire.VarintType), 1)
			g.Initializer(t)
			g.Initializer(onnxpb.FloatTensor("head", []int64{2, 2}, w.Head))
		}), "external data is refused"},
		{"short weights", hostileModel(t, func(g *onnxpb.Graph, w *graph.Hashnet) {
			softmaxNode(g)
			g.Initializer(onnxpb.FloatTensor("embedding", []int64{256, 2}, make([]float32, 10)))
			g.Initializer(onnxpb.FloatTensor("head", []int64{2, 2}, w.Head))
		}), `initializer "embedding" holds 40 bytes, its shape needs 2048`},
		{"a different pooling axis", hostileModel(t, func(g *onnxpb.Graph, w *graph.Hashnet) {
			softmaxNode(g)
			plainTables(g, w)
			g.Initializer(onnxpb.Int64Tensor("axis1", []int64{1}, []int64{0}))
		}), `initializer "axis1" is defined twice`},
		{"local functions", append(hostileModel(t, func(g *onnxpb.Graph, w *graph.Hashnet) { softmaxNode(g); plainTables(g, w) }),
			protowire.AppendBytes(protowire.AppendTag(nil, 25, protowire.BytesType), []byte("f"))...), "local functions"},
		{"foreign operator set", append(hostileModel(t, func(g *onnxpb.Graph, w *graph.Hashnet) { softmaxNode(g); plainTables(g, w) }),
			protowire.AppendBytes(protowire.AppendTag(nil, 8, protowire.BytesType), protowire.AppendString(protowire.AppendTag(nil, 1, protowire.BytesType), "com.microsoft"))...), `operator set "com.microsoft"`},
		{"not protobuf", []byte("\xff\xff\xff"), "truncated or not protobuf"},
	}
	ok := hostileModel(t, func(g *onnxpb.Graph, w *graph.Hashnet) { softmaxNode(g); plainTables(g, w) })
	if err := checkModel(&m, ok); err != nil {
		t.Fatalf("paw's own graph refused: %v", err)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := checkModel(&m, tc.model)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
			// Through the artifact reader too: refused as corrupt.
			data, err := EncodeArtifact(&m, []byte("name: t\n"), tc.model)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := DecodeArtifact(data); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "model.onnx: ") {
				t.Fatalf("DecodeArtifact: %v", err)
			}
		})
	}
}

func TestManifestBoundsLabels(t *testing.T) {
	m := testManifest()
	m.Labels = make([]string, 60000)
	for i := range m.Labels {
		m.Labels[i] = fmt.Sprintf("l%d", i)
	}
	m.Positive = ""
	if err := m.Validate(); err == nil || !strings.Contains(err.Error(), "60000 labels: want 2..256") {
		t.Fatalf("error %v", err)
	}
}

func TestTemplateCacheIsBoundedInBytes(t *testing.T) {
	for _, width := range []int{2, 256, 10 * MaxLabels, 60000} {
		c := newTemplateCache(DefaultTemplateCache, width)
		if bytes := len(c.rows) * 4; bytes > maxTemplateCacheBytes {
			t.Errorf("width %d: %d bytes of rows", width, bytes)
		}
		if width == 2 && len(c.keys) != DefaultTemplateCache {
			t.Errorf("width 2: %d entries, want %d", len(c.keys), DefaultTemplateCache)
		}
	}
}

// FuzzCheckModel: arbitrary model bytes are refused with a reason or are
// exactly paw's own graph; the reader never panics.
func FuzzCheckModel(f *testing.F) {
	m := testManifest()
	w := &graph.Hashnet{Rows: 256, Width: 2, Table: make([]float32, 512), Head: make([]float32, 4), Bias: make([]float32, 2)}
	model, err := w.Encode("seed")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(model)
	f.Add(hostileModel(f, func(g *onnxpb.Graph, w *graph.Hashnet) { softmaxNode(g); plainTables(g, w) }))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := checkModel(&m, data); err == nil {
			// Accepted: it must parse back to the expected graph.
			g, err := parseONNX(data)
			if err != nil || len(g.nodes) == 0 {
				t.Fatalf("accepted a model it cannot parse: %v", err)
			}
		}
	})
}
