package runtime_test

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/pawlogs/paw/runtime"
	"github.com/pawlogs/paw/runtime/patterns"
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

// TestKeyMemoOnShared runs every line of ../shared through a worker's key
// memo, twice over: as it is, then with what the memo is blind to
// rewritten. Each key must be the scan's, the rewritten line's its
// original's.
func TestKeyMemoOnShared(t *testing.T) {
	lines := runtimetest.SharedLines(t, "../../shared")
	f, err := runtime.NewFeaturizer(runtime.DefaultFeaturizerConfig())
	if err != nil {
		t.Fatal(err)
	}
	texts := append(slices.Clone(lines), rewrite(lines, 3)...)
	toks := f.NewTokens()
	for _, slots := range []int{64, runtime.DefaultTemplateCache} {
		keys := runtime.MemoKeys(f, slots, texts)
		for i, text := range texts {
			if want := f.Scan(text, toks); keys[i] != want {
				t.Fatalf("slots %d: line %d %q: memo key %x, scan %x", slots, i, text, keys[i], want)
			}
		}
		for i := range lines {
			if keys[i] != keys[len(lines)+i] {
				t.Fatalf("line %q rewritten as %q: key %x, want %x", lines[i], texts[len(lines)+i], keys[len(lines)+i], keys[i])
			}
		}
	}
}

// rewrite copies lines with what the key memo is blind to rewritten at
// random (runtime.Rewrite).
func rewrite(lines [][]byte, seed uint64) [][]byte {
	rng := rand.New(rand.NewPCG(seed, 4))
	out := make([][]byte, len(lines))
	for i, l := range lines {
		out[i] = runtime.Rewrite(l, rng)
	}
	return out
}

// BenchmarkTemplateKey is the cost of a record's template key: the scan,
// or a worker's key memo in front of it. On the Loghub sample lines
// (skipped when absent), with their digits and hex ids rewritten on every
// pass, as a live stream's timestamps, counters and ids are; and on
// service logs whose every record has a new trace id. memo+mine adds the
// pattern miner fed those keys (patterns.Miner.AddKeyed), as the pipeline's
// pattern tally feeds it: what mining costs on top of the key is the
// difference from memo. mine is the miner alone, on the lines.
func BenchmarkTemplateKey(b *testing.B) {
	data := map[string][][]byte{}
	if lines := runtimetest.LoghubLines("../../shared"); len(lines) > 0 {
		for seed := range uint64(4) {
			data["loghub"] = append(data["loghub"], rewrite(lines, seed)...)
		}
	}
	rng := rand.New(rand.NewPCG(9, 9))
	for i := range 100_000 {
		data["trace-ids"] = append(data["trace-ids"], fmt.Appendf(nil, "2026-03-04T09:%02d:%02d.%03dZ INFO [%s] trace=%016x span=%08x request %d completed in %dms",
			rng.IntN(60), rng.IntN(60), rng.IntN(1000), []string{"orders-api", "auth", "gateway"}[i%3], rng.Uint64(), rng.Uint32(), rng.IntN(100000), rng.IntN(500)))
	}
	f, err := runtime.NewFeaturizer(runtime.DefaultFeaturizerConfig())
	if err != nil {
		b.Fatal(err)
	}
	for _, name := range []string{"loghub", "trace-ids"} {
		texts, ok := data[name]
		if !ok {
			continue
		}
		b.Run(name+"/scan", func(b *testing.B) {
			toks := f.NewTokens()
			for i := 0; b.Loop(); i++ {
				f.Scan(texts[i%len(texts)], toks)
			}
		})
		b.Run(name+"/memo", func(b *testing.B) {
			next := runtime.MemoKeyer(f, runtime.DefaultTemplateCache)
			for i := 0; b.Loop(); i++ {
				next(texts[i%len(texts)])
			}
		})
		b.Run(name+"/memo+mine", func(b *testing.B) {
			next, m := runtime.MemoKeyer(f, runtime.DefaultTemplateCache), patterns.New(patterns.Config{})
			for i := 0; b.Loop(); i++ {
				t := texts[i%len(texts)]
				m.AddKeyed(t, next(t))
			}
			b.ReportMetric(float64(len(m.Patterns())), "patterns")
		})
		b.Run(name+"/mine", func(b *testing.B) {
			m := patterns.New(patterns.Config{})
			for i := 0; b.Loop(); i++ {
				m.Add(string(texts[i%len(texts)]))
			}
			b.ReportMetric(float64(len(m.Patterns())), "patterns")
		})
	}
}
