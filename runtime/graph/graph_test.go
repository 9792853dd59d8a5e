package graph

import (
	"math"
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		h    Hashnet
		want string
	}{
		{"folded", Hashnet{Rows: 2, Width: 2, Table: make([]float32, 4), Bias: make([]float32, 2)}, ""},
		{"unfolded", Hashnet{Rows: 2, Width: 3, Table: make([]float32, 6), Head: make([]float32, 6), Bias: make([]float32, 2)}, ""},
		{"one label", Hashnet{Rows: 2, Width: 1, Table: make([]float32, 2), Bias: make([]float32, 1)}, "labels>=2"},
		{"short table", Hashnet{Rows: 2, Width: 2, Table: make([]float32, 3), Bias: make([]float32, 2)}, "table has 3 values, want 4"},
		{"folded too wide", Hashnet{Rows: 1, Width: 3, Table: make([]float32, 3), Bias: make([]float32, 2)}, "want 2 labels"},
		{"short head", Hashnet{Rows: 1, Width: 3, Table: make([]float32, 3), Head: make([]float32, 5), Bias: make([]float32, 2)}, "head has 5 values, want 6"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.h.Validate()
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Fatalf("Validate() = %v, want %q", err, tt.want)
			}
			if _, encErr := tt.h.Encode("t"); (encErr == nil) != (err == nil) {
				t.Fatalf("Encode error %v, Validate error %v", encErr, err)
			}
		})
	}
}

// Folding the head into the table is the same function.
func TestForwardFoldedMatchesUnfolded(t *testing.T) {
	emb := []float32{0, 0, 0, 1, 2, 3, -1, 0.5, 2}
	head := []float32{1, -1, 0.5, 2, -2, 0}
	bias := []float32{0.1, -0.2}
	folded := make([]float32, 3*2)
	for r := 0; r < 3; r++ {
		for k := 0; k < 2; k++ {
			for d := 0; d < 3; d++ {
				folded[r*2+k] += emb[r*3+d] * head[d*2+k]
			}
		}
	}
	u := Hashnet{Rows: 3, Width: 3, Table: emb, Head: head, Bias: bias}
	f := Hashnet{Rows: 3, Width: 2, Table: folded, Bias: bias}
	ids, w := []int64{1, 2, 2}, []float32{0.5, 0.25, 0.25}
	a, b := make([]float32, 2), make([]float32, 2)
	u.Forward(ids, w, a)
	f.Forward(ids, w, b)
	for k := range a {
		if math.Abs(float64(a[k]-b[k])) > 1e-6 || math.Abs(float64(a[0]+a[1]-1)) > 1e-6 {
			t.Fatalf("unfolded %v, folded %v", a, b)
		}
	}
}

func TestHeadValidate(t *testing.T) {
	tests := []struct {
		name string
		h    Head
		ok   bool
	}{
		{"ok", Head{Dim: 2, Labels: 2, W: make([]float32, 4), Bias: make([]float32, 2)}, true},
		{"short weights", Head{Dim: 2, Labels: 2, W: make([]float32, 3), Bias: make([]float32, 2)}, false},
		{"short bias", Head{Dim: 2, Labels: 2, W: make([]float32, 4), Bias: make([]float32, 1)}, false},
		{"one label", Head{Dim: 2, Labels: 1, W: make([]float32, 2), Bias: make([]float32, 1)}, false},
	}
	for _, tt := range tests {
		if _, err := tt.h.Encode("t"); (err == nil) != tt.ok {
			t.Errorf("%s: Encode error %v", tt.name, err)
		}
	}
}
