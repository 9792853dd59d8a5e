package runtime

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"
)

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

// compactHashnet rewrites a checked hashnet-v1 model over its compact table.
func compactHashnet(model []byte, producerVersion string) ([]byte, *rowIndex, error) {
	g, err := parseONNX(model)
	if err != nil {
		return nil, nil, err
	}
	t, folded := g.rowTable()
	bias := floatsOf(g.inits["bias"].raw)
	width := len(bias)
	var head []float32
	name := "table"
	if !folded {
		name = "embedding"
		head = floatsOf(g.inits["head"].raw)
		width = len(head) / len(bias)
	}
	rowBytes := 4 * width
	if width == 0 || len(t.raw)%rowBytes != 0 {
		return nil, nil, fmt.Errorf("%s of %d bytes is not rows of %d values", name, len(t.raw), width)
	}
	rows := len(t.raw) / rowBytes
	idx := &rowIndex{kept: make([]uint64, (rows+63)/64), before: make([]int32, (rows+63)/64)}
	vals := make([]float32, width) // the zero row
	for r := 0; r < rows; r++ {
		raw := t.raw[r*rowBytes : (r+1)*rowBytes]
		if allZero(raw) {
			continue
		}
		idx.kept[r/64] |= 1 << (r % 64)
		vals = append(vals, floatsOf(raw)...)
	}
	n := int32(0)
	for w, k := range idx.kept {
		idx.before[w] = n
		n += int32(bits.OnesCount64(k))
	}
	return hashnetGraph(name, 1+int(n), width, vals, head, bias, producerVersion), idx, nil
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
