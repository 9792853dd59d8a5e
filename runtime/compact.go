package runtime

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"

	"github.com/pawlogs/paw/runtime/graph"
)

// InterpreterHashnetV1 is the default interpreter: hashed n-gram
// embeddings, mean-pooled, then a linear head and a softmax (graph.Hashnet).
const InterpreterHashnetV1 = "hashnet-v1"

// A hashnet-v1 table has a row per hash bucket (2^18 by default), and
// training changes only the rows its examples' features hash to: about a
// thousand. ONNX Runtime would hold the whole table, in more than one
// copy, for every program. So the interpreter runs a compact graph
// instead: the same graph over a table of the rows that are not all zero
// bits, after one zero row, and rowIndex maps each feature's bucket to its
// row there. Gather copies the same values either way, so every score is
// bit-identical (TestCompactTableScoresBitIdentical).

// rowIndex maps a bucket to its row of the compact table: 0, the zero row,
// for a bucket whose row is all zero bits.
type rowIndex struct {
	kept   []uint64 // bit b: bucket b has a row of its own
	before []int32  // rows of their own in the words before each word of kept
}

func (r *rowIndex) row(bucket int64) int64 {
	w, m := r.kept[bucket/64], uint64(1)<<(bucket%64)
	if w&m == 0 {
		return 0
	}
	return 1 + int64(r.before[bucket/64]) + int64(bits.OnesCount64(w&(m-1)))
}

// hashnetTable is a checked hashnet-v1 model's weights.
type hashnetTable struct {
	name       string // "table" (folded: labels < dim) or "embedding"
	width      int    // values per row
	raw        []byte // rows x width float32s, little-endian
	head, bias []float32
}

func readHashnetTable(model []byte) (*hashnetTable, error) {
	g, err := parseONNX(model)
	if err != nil {
		return nil, err
	}
	raw, folded := g.rowTable()
	t := &hashnetTable{name: "table", raw: raw.raw, bias: floatsOf(g.inits["bias"].raw)}
	t.width = len(t.bias)
	if !folded {
		t.name = "embedding"
		t.head = floatsOf(g.inits["head"].raw)
		t.width = len(t.head) / max(len(t.bias), 1)
	}
	if t.width == 0 || len(t.raw)%(4*t.width) != 0 {
		return nil, fmt.Errorf("%s of %d bytes is not rows of %d values", t.name, len(t.raw), t.width)
	}
	return t, nil
}

func (t *hashnetTable) rows() int { return len(t.raw) / (4 * t.width) }

func (t *hashnetTable) row(r int) []byte { return t.raw[r*4*t.width : (r+1)*4*t.width] }

// kept sets the bits of the rows that are not all zero bits.
func (t *hashnetTable) kept(bits []uint64) {
	for r := 0; r < t.rows(); r++ {
		if !allZero(t.row(r)) {
			bits[r/64] |= 1 << (r % 64)
		}
	}
}

// newRowIndex indexes the buckets whose bits are set.
func newRowIndex(kept []uint64) *rowIndex {
	idx := &rowIndex{kept: kept, before: make([]int32, len(kept))}
	n := int32(0)
	for w, k := range kept {
		idx.before[w] = n
		n += int32(bits.OnesCount64(k))
	}
	return idx
}

// size is how many rows the compact table has, the zero row included.
func (r *rowIndex) size() int {
	if len(r.kept) == 0 {
		return 1
	}
	last := len(r.kept) - 1
	return 1 + int(r.before[last]) + bits.OnesCount64(r.kept[last])
}

// compactHashnet rewrites a checked hashnet-v1 model over its compact table.
func compactHashnet(model []byte, producerVersion string) ([]byte, *rowIndex, error) {
	t, err := readHashnetTable(model)
	if err != nil {
		return nil, nil, err
	}
	kept := make([]uint64, (t.rows()+63)/64)
	t.kept(kept)
	idx := newRowIndex(kept)
	vals := make([]float32, t.width, idx.size()*t.width) // the zero row first
	for r := 0; r < t.rows(); r++ {
		if kept[r/64]&(1<<(r%64)) != 0 {
			vals = append(vals, floatsOf(t.row(r))...)
		}
	}
	g := &graph.Hashnet{Rows: idx.size(), Width: t.width, Table: vals, Head: t.head, Bias: t.bias}
	compact, err := g.EncodeRun(producerVersion)
	if err != nil {
		return nil, nil, err
	}
	return compact, idx, nil
}

// ReadHashnet reads a hashnet-v1 program's graph back from its model, so
// that Go code (the sidecar's check of a learned program) can score with
// a published program without ONNX Runtime.
func ReadHashnet(a *Artifact) (*graph.Hashnet, error) {
	if a.Manifest.Interpreter != InterpreterHashnetV1 {
		return nil, fmt.Errorf("program %s is %s, not %s", a.Manifest.Name, a.Manifest.Interpreter, InterpreterHashnetV1)
	}
	t, err := readHashnetTable(a.Model)
	if err != nil {
		return nil, err
	}
	g := &graph.Hashnet{Rows: t.rows(), Width: t.width, Table: floatsOf(t.raw), Head: t.head, Bias: t.bias}
	if err := g.Validate(); err != nil {
		return nil, err
	}
	return g, nil
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

func floatsOf(raw []byte) []float32 {
	out := make([]float32, len(raw)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
	}
	return out
}
