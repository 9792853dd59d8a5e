package cli

import (
	"errors"
	"io/fs"
	"testing"
)

// paw's template miner groups Loghub-2k's lines better than Drain in the
// same run (the benchmark of make quality). It skips without ../shared.
func TestGroupingAccuracyBeatsDrain(t *testing.T) {
	logs, err := readStructured("../../../../shared/data/loghub")
	if errors.Is(err, fs.ErrNotExist) {
		t.Skip("../shared/data/loghub is absent")
	}
	if err != nil {
		t.Fatal(err)
	}
	var paw, dr float64
	for _, r := range groupingAccuracies(logs) {
		paw, dr = paw+r.paw, dr+r.drain
		if r.paw < 0.80 {
			t.Errorf("%s: grouping accuracy %.4f, below 0.80", r.system, r.paw)
		}
		t.Logf("%-12s paw %.4f  Drain %.4f  (%d/%d/%d groups)", r.system, r.paw, r.drain, r.pawN, r.drainN, r.refN)
	}
	n := float64(len(logs))
	t.Logf("mean: paw %.4f, Drain %.4f", paw/n, dr/n)
	if paw/n <= dr/n || paw/n < 0.92 {
		t.Fatalf("mean grouping accuracy %.4f (Drain %.4f): want above Drain and at least 0.92", paw/n, dr/n)
	}
}
