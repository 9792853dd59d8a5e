package cli

import (
	"errors"
	"io/fs"
	"testing"
)

// paw's template miner groups Loghub-2k's lines better than Drain in the
// same run (the benchmark of make quality), fed lines or, as a pipeline's
// pattern tally feeds it, template keys. It skips without ../shared.
func TestGroupingAccuracyBeatsDrain(t *testing.T) {
	logs, err := readStructured("../../../../shared/data/loghub")
	if errors.Is(err, fs.ErrNotExist) {
		t.Skip("../shared/data/loghub is absent")
	}
	if err != nil {
		t.Fatal(err)
	}
	var paw, keyed, dr float64
	for _, r := range groupingAccuracies(logs) {
		paw, keyed, dr = paw+r.paw, keyed+r.keyed, dr+r.drain
		if min(r.paw, r.keyed) < 0.80 {
			t.Errorf("%s: grouping accuracy %.4f, keyed %.4f: below 0.80", r.system, r.paw, r.keyed)
		}
		t.Logf("%-12s paw %.4f  keyed %.4f  Drain %.4f  (%d/%d/%d groups)", r.system, r.paw, r.keyed, r.drain, r.pawN, r.drainN, r.refN)
	}
	n := float64(len(logs))
	t.Logf("mean: paw %.4f, keyed %.4f, Drain %.4f", paw/n, keyed/n, dr/n)
	for _, ga := range []float64{paw / n, keyed / n} {
		if ga <= dr/n || ga < 0.92 {
			t.Errorf("mean grouping accuracy %.4f (Drain %.4f): want above Drain and at least 0.92", ga, dr/n)
		}
	}
}
