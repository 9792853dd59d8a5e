package drain

import "testing"

func TestGroupingAccuracy(t *testing.T) {
	tests := []struct {
		pred, ref []string
		want      float64
	}{
		{[]string{"a", "a", "b"}, []string{"x", "x", "y"}, 1},
		{[]string{"a", "a", "a"}, []string{"x", "x", "y"}, 0},       // over-merged
		{[]string{"a", "b", "c"}, []string{"x", "x", "y"}, 1.0 / 3}, // over-split: only y's line
	}
	for _, tc := range tests {
		if got := GroupingAccuracy(tc.pred, tc.ref); got != tc.want {
			t.Errorf("GA(%v, %v) = %v, want %v", tc.pred, tc.ref, got, tc.want)
		}
	}
}

func TestDrainGroupsByTemplate(t *testing.T) {
	p := New(4, 0.5)
	a := p.Add("Received block blk_1 of size 67 from /10.0.0.1")
	b := p.Add("Received block blk_2 of size 99 from /10.0.0.2")
	c := p.Add("Deleting block blk_3 file /data/x")
	if a != b || a == c {
		t.Fatalf("clusters %p %p %p", a, b, c)
	}
}
