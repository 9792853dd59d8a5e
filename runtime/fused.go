package runtime

import (
	"fmt"
	"math/bits"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/pawlogs/paw/internal/onnxpb"
	"github.com/pawlogs/paw/runtime/graph"
)

// Programs that share a featurizer gather rows of the same buckets for the
// same features, and each run of each program pays ONNX Runtime's
// overhead and its own gather. So a batcher runs such a group as one
// graph: the programs' compact tables side by side over the union of
// their rows, one gather, one pooling, then each program's bias and
// softmax on its own columns. Each column is summed over the same
// features in the same order as in the program's own graph, so every
// probability is bit-identical (TestFusedGroupScoresBitIdentical); ten
// programs cost little more than one.

// fusedOutput names a fused graph's output for the group's i-th program.
func fusedOutput(i int) string { return fmt.Sprintf("probs%d", i) }

// fusedGraph is the graph over a table of rows x sum(widths) values.
func fusedGraph(rows int, widths []int, vals []float32, bias []float32, producerVersion string) []byte {
	g := &onnxpb.Graph{}
	total := 0
	split := make([]int64, len(widths))
	outs := make([]string, len(widths))
	for i, w := range widths {
		total += w
		split[i] = int64(w)
		outs[i] = "logits" + fmt.Sprint(i)
	}
	graph.GatherPooled(g, "table")
	g.Node("Add", "bias", []string{"pooled", "bias"}, []string{"logits"})
	g.Node("Split", "split", []string{"logits", "split"}, outs, onnxpb.IntAttr("axis", 1))
	for i := range widths {
		g.Node("Softmax", "softmax"+fmt.Sprint(i), []string{outs[i]}, []string{fusedOutput(i)}, onnxpb.IntAttr("axis", -1))
	}
	g.Name("hashnet_v1_fused")
	g.Initializer(onnxpb.FloatTensor("bias", []int64{int64(total)}, bias))
	g.Initializer(onnxpb.Int64Tensor("axis1", []int64{1}, []int64{1}))
	g.Initializer(onnxpb.Int64Tensor("split", []int64{int64(len(split))}, split))
	g.Initializer(onnxpb.FloatTensor("table", []int64{int64(rows), int64(total)}, vals))
	g.Input(onnxpb.ValueInfo(graph.InputIDs, onnxpb.Int64, "batch", "features"))
	g.Input(onnxpb.ValueInfo(graph.InputWeights, onnxpb.Float, "batch", "features"))
	for i, w := range widths {
		g.Output(onnxpb.ValueInfo(fusedOutput(i), onnxpb.Float, "batch", w))
	}
	return g.Model(producerVersion)
}

// fusedRun runs a featurizer group's programs as one graph.
type fusedRun struct {
	progs  []int // the set's indices of the group's programs, in output order
	widths []int
	rows   *rowIndex
	model  []byte
	env    *Env
	dev    Device
	batch  int // largest batch
	feats  int // features per record
	pool   *sessionPool[*fusedSession]
}

type fusedSession struct {
	s       *ort.DynamicAdvancedSession
	ids     []int64
	weights []float32
}

// newFusedRun fuses the set's programs progs, or returns nil when they
// cannot be: fewer than two, an unfolded head, or programs on different
// devices or without compact tables. sessions bounds runs at once.
func newFusedRun(set *ProgramSet, progs []int, maxBatch, sessions int) (*fusedRun, error) {
	if len(progs) < 2 {
		return nil, nil
	}
	first := set.programs[progs[0]]
	var tables []*hashnetTable
	for _, pi := range progs {
		p := set.programs[pi]
		if p.feat == nil || p.rows == nil || p.opts.Device != first.opts.Device || p.env != first.env {
			return nil, nil
		}
		t, err := readHashnetTable(p.model)
		if err != nil {
			return nil, err
		}
		if t.head != nil || len(p.rows.kept) != len(first.rows.kept) {
			return nil, nil
		}
		tables = append(tables, t)
	}
	// The union of the programs' rows, each program's values side by side
	// (its zero row where it has none of its own).
	kept := make([]uint64, len(first.rows.kept))
	for _, pi := range progs {
		for w, k := range set.programs[pi].rows.kept {
			kept[w] |= k
		}
	}
	idx := newRowIndex(kept)
	f := &fusedRun{progs: progs, rows: idx, env: first.env, dev: first.opts.Device, batch: maxBatch, feats: first.feat.cfg.MaxFeatures}
	total := 0
	var bias []float32
	for _, t := range tables {
		f.widths = append(f.widths, t.width)
		total += t.width
		bias = append(bias, t.bias...)
	}
	vals := make([]float32, total, idx.size()*total) // the zero row
	for w, k := range kept {
		for ; k != 0; k &= k - 1 {
			bucket := int64(w*64 + bits.TrailingZeros64(k))
			for i, pi := range progs {
				r := int(set.programs[pi].rows.row(bucket)) // 0: the program's zero row
				vals = append(vals, floatsOf(tables[i].row(r))...)
			}
		}
	}
	f.model = fusedGraph(idx.size(), f.widths, vals, bias, "paw-interpreter")
	var err error
	if f.pool, err = newSessionPool(sessions, f.newSession, func(s *fusedSession) error { return s.s.Destroy() }); err != nil {
		return nil, err
	}
	return f, nil
}

func (f *fusedRun) newSession() (*fusedSession, error) {
	so, err := f.env.sessionOptions(f.dev, 1)
	if err != nil {
		return nil, err
	}
	defer so.Destroy()
	outs := make([]string, len(f.widths))
	for i := range outs {
		outs[i] = fusedOutput(i)
	}
	s, err := ort.NewDynamicAdvancedSessionWithONNXData(f.model, []string{graph.InputIDs, graph.InputWeights}, outs, so)
	if err != nil {
		return nil, fmt.Errorf("fused group: onnx runtime: %w", err)
	}
	n := runRows(f.batch) * runWidth(f.feats)
	return &fusedSession{s: s, ids: make([]int64, n), weights: make([]float32, n)}, nil
}

// run scores feats with every program of the group; out[i] receives
// len(feats) rows of program i's probabilities, written there by ONNX
// Runtime (out belongs to one caller at a time, and holds runRows rows).
func (f *fusedRun) run(feats []*Features, out [][]float32) error {
	n := len(feats)
	s, err := f.pool.acquire()
	if err != nil {
		return err
	}
	defer f.pool.release(s)
	idsT, wT, err := batchInputs(feats, f.rows, s.ids, s.weights)
	if err != nil {
		return err
	}
	defer idsT.Destroy()
	defer wT.Destroy()
	outs := make([]ort.Value, len(f.widths))
	batch := runRows(n)
	for i, w := range f.widths {
		t, err := ort.NewTensor(ort.NewShape(int64(batch), int64(w)), out[i][:batch*w])
		if err != nil {
			return fmt.Errorf("probs tensor: %w", err)
		}
		defer t.Destroy()
		outs[i] = t
	}
	if err := s.s.Run([]ort.Value{idsT, wT}, outs); err != nil {
		return fmt.Errorf("run fused group: %w", err)
	}
	return nil
}

func (f *fusedRun) close() error { return f.pool.close() }

// progsOrNil is the fused programs, none for a nil run.
func (f *fusedRun) progsOrNil() []int {
	if f == nil {
		return nil
	}
	return f.progs
}
