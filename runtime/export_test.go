package runtime

import (
	"math/rand/v2"
	"slices"
)

// WithDenseTable makes NewProgram load the artifact's own graph, over its
// whole table, for tests that compare it with the compact one.
func WithDenseTable(o ProgramOptions) ProgramOptions {
	o.denseTable = true
	return o
}

// Fused reports whether some of a batcher's programs run as one graph.
func (b *Batcher) Fused() bool {
	for _, f := range b.fused {
		if f != nil {
			return true
		}
	}
	return false
}

// ResolveORTLib finds the ONNX Runtime library as OpenEnv("") does.
var ResolveORTLib = resolveORTLib

// Featurizations is the number of distinct featurizations per record.
func (s *ProgramSet) Featurizations() int { return len(s.groups) }

// MemoKeys is the template key of each text as a batcher worker's key memo
// of slots entries gives it, in order.
func MemoKeys(f *Featurizer, slots int, texts [][]byte) []uint64 {
	next := MemoKeyer(f, slots)
	keys := make([]uint64, len(texts))
	for i, text := range texts {
		keys[i] = next(text)
	}
	return keys
}

// MemoKeyer returns the template key of each text it is given, as a
// batcher worker's key memo of slots entries gives it.
func MemoKeyer(f *Featurizer, slots int) func([]byte) uint64 {
	m, t := newKeyMemo(slots), f.NewTokens()
	return func(text []byte) uint64 { return m.key(f, text, t) }
}

// reading is the hash under which the memo files text: its blind hash,
// of its hex runs read blind when it has some.
func (m *keyMemo) reading(text []byte) uint64 {
	if hex, ok := m.blindHexRuns(text); ok {
		return blindHash(hex)
	}
	return blindHash(text)
}

// readings are the texts the memo's two readings hash, a byte at a time.
func (m *keyMemo) readings(text []byte) [2][]byte {
	hex, ok := m.blindHexRuns(text)
	if !ok {
		hex = text
	}
	return [2][]byte{blindRef(text), blindRef(hex)}
}

// Rewrite copies text with what the key memo is blind to rewritten at
// random: each digit, but a "0" before "x" or "X", and each run of six or
// more hex letters and digits with a digit, bounded by bytes that are not
// word bytes, as another such run.
func Rewrite(text []byte, rng *rand.Rand) []byte {
	out := slices.Clone(text)
	for i := 0; i < len(out); {
		j := i
		for j < len(out) && isWordByte(out[j]) {
			j++
		}
		run := out[i:j]
		digit := func(c byte) bool { return c >= '0' && c <= '9' }
		hexRun := len(run) >= 6 && !slices.ContainsFunc(run, func(c byte) bool { return !isHexByte(c) }) &&
			slices.ContainsFunc(run, digit) && slices.ContainsFunc(run, func(c byte) bool { return !digit(c) })
		for k, c := range run {
			switch {
			case hexRun:
				run[k] = "0123456789abcdefABCDEF"[rng.IntN(22)]
			case c >= '0' && c <= '9' && !(i+k+1 < len(out) && out[i+k+1]|0x20 == 'x'):
				run[k] = byte('0' + rng.IntN(10))
			}
		}
		if hexRun { // still a hex run: a digit and a letter
			k := rng.IntN(len(run) - 1)
			run[k], run[k+1] = byte('0'+rng.IntN(10)), "abcdefABCDEF"[rng.IntN(12)]
		}
		i = max(j, i+1)
	}
	return out
}
