package compiler

import (
	"context"
	"runtime"
	"testing"

	pawrt "github.com/pawlogs/paw/runtime"
)

// A model at the size cap trains within about one copy of its table: Adam's
// moments are kept for touched rows only, not as two more dense tables
// (which made options {dim: 256, bucket_bits: 22} allocate 12 GiB).
func TestTrainerStateIsSparse(t *testing.T) {
	cfg := pawrt.DefaultFeaturizerConfig()
	cfg.BucketBits = 22
	feat, err := pawrt.NewFeaturizer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	dim := MaxEmbeddingValues / cfg.Buckets()
	texts := []string{"disk failed on node 7", "write failed: no space", "all good", "request served in 3 ms"}
	data := make([]sample, len(texts))
	for i, s := range texts {
		data[i] = sample{feat: feat.NewFeatures(), label: i / 2}
		feat.Featurize([]byte(s), &data[i].feat)
	}
	table := uint64(MaxEmbeddingValues) * 4
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	tr := newTrainer(cfg.Buckets(), 2, []int{2, 2}, TrainOptions{Dim: dim, Epochs: 3})
	if err := tr.fit(context.Background(), data, nil); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > table+table/4 {
		t.Errorf("training allocated %d MiB for a %d MiB table", alloc>>20, table>>20)
	}
	touched := 0
	for i := range data {
		touched += data[i].feat.Len
	}
	if len(tr.rowMV) == 0 || len(tr.rowMV) > touched {
		t.Errorf("Adam state for %d rows, want 1..%d (the touched rows)", len(tr.rowMV), touched)
	}
}
