package runtime_test

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"math"
	"testing"

	"github.com/pawlogs/paw/runtime"
	"github.com/pawlogs/paw/runtime/runtimetest"
)

// TestFeaturizeGolden pins what the featurizer gives every line of
// ../shared (skipped when absent): the template key and the features of
// each, hashed. An optimisation of the scanner must leave it unchanged, so
// that programs decide and score every line bit-identically.
func TestFeaturizeGolden(t *testing.T) {
	lines := runtimetest.SharedLines(t, "../../shared")
	f, err := runtime.NewFeaturizer(runtime.DefaultFeaturizerConfig())
	if err != nil {
		t.Fatal(err)
	}
	ft, toks := f.NewFeatures(), f.NewTokens()
	h := sha256.New()
	var b [8]byte
	for _, l := range lines {
		binary.LittleEndian.PutUint64(b[:], f.Scan(l, toks))
		h.Write(b[:])
		f.Featurize(l, &ft)
		for i := 0; i < ft.Len; i++ {
			binary.LittleEndian.PutUint64(b[:], uint64(ft.IDs[i]))
			h.Write(b[:])
			binary.LittleEndian.PutUint32(b[:], math.Float32bits(ft.Weights[i]))
			h.Write(b[:4])
		}
	}
	const want = "6846857b095a7b7150ea16e97f4453e661af81d2b799c961e7a5074ebb51dd73"
	if got := hex.EncodeToString(h.Sum(nil)); got != want {
		t.Fatalf("featurization of %d lines changed: hash %s, want %s", len(lines), got, want)
	}
}
