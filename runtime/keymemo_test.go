package runtime

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// blindRef is the digit reading of blindWord and blindHash, a byte at a
// time: a copy of b with every digit read as '1', but a '0' before 'x' or
// 'X'.
func blindRef(b []byte) []byte {
	out := slices.Clone(b)
	for i, c := range b {
		if c >= '0' && c <= '9' && !(c == '0' && i+1 < len(b) && b[i+1]|0x20 == 'x') {
			out[i] = '1'
		}
	}
	return out
}

func TestBlindWord(t *testing.T) {
	check := func(b [9]byte) {
		t.Helper()
		var got [8]byte
		binary.LittleEndian.PutUint64(got[:], blindWord(binary.LittleEndian.Uint64(b[:8]), binary.LittleEndian.Uint64(b[1:])))
		if want := [8]byte(blindRef(b[:])); got != want {
			t.Fatalf("blindWord(%q) = %q, want %q", b, got, want)
		}
	}
	for _, s := range []string{"09:41:27x", "0x1F0X2aX", "/:0@9\x00\xb0\xb9\xff", "00000000x", "\x2f\x3a\xaf\xba0X0x0"} {
		var b [9]byte
		copy(b[:], s)
		check(b)
	}
	// Every byte value, at every position, beside every neighbour class.
	rng := rand.New(rand.NewPCG(1, 1))
	alphabet := []byte("0123456789xX/:@`\x00\x7f\x80\xaf\xb0\xb9\xba\xf0\xff")
	for range 200000 {
		var b [9]byte
		for i := range b {
			if rng.IntN(2) == 0 {
				b[i] = alphabet[rng.IntN(len(alphabet))]
			} else {
				b[i] = byte(rng.IntN(256))
			}
		}
		check(b)
	}
}

// TestMemoReadings: which records the memo reads alike.
func TestMemoReadings(t *testing.T) {
	tests := []struct {
		a, b string
		same bool
	}{
		{"port 50010 took 12ms", "port 73921 took 98ms", true},
		{"2015-10-18 18:02:41,309 INFO", "2016-01-01 00:00:00,000 INFO", true},
		{"id 0x1f", "id 0x9a", false}, // letters are not blinded
		{"id 0x1f", "id 5x1f", false},
		{"id 0X1f", "id 0x1f", false},
		{"id 5x1f", "id 7x1f", true},
		{"pid 123", "pid 1234", false}, // lengths count
		{"a", "a\x00", false},
		{"", "\x00", false},
		{"\xb1\xb2", "\xb1\xb3", false}, // high bytes are not digits
		{"exactly eight 12345678", "exactly eight 87654321", true},
		{"ends with 0", "ends with 1", true},
		{"ends with 0x", "ends with 1x", false},
		// Hex runs.
		{"0123456789abcdef0123456789", "9876543210abcdef9876543210", true},
		{"trace=5f3a9c1b2d4e6f70 ok", "trace=0a1b2c3d4e5f6a7b ok", true},
		{"commit C0FFEE1 merged", "commit BADF00D merged", true},
		{"550e8400-e29b-41d4-a716-446655440000", "550e8400-e29c-41d4-a716-446655440000", false}, // a four-byte run is a word or a number
		{"550e8400-e29b-41d4-a716-4466554400ff", "a50e8b00-e29b-41d4-a716-44665544000f", true},
		{"550e8400-e29b-41d4-a716-446655440000", "550e8400-e29b-41d4-a716-44665544000f", false}, // digits alone: a number
		{"sum deadbeef", "sum deadbeee", false},                                                 // no digit: a word
		{"id 5f3a9", "id 5a3a9", false},                                                         // too short
		{"id 5f3a9cg", "id 5a3a9cg", false},                                                     // a g: a word
		{"x\xff5f3a9c", "x\xff5a3a9c", false},                                                   // joined to a non-ASCII byte
		{"a/5f3a9c1b/b", "a/0a0a0a0a/b", true},                                                  // a path's part
		{"ip fe80::1ff:fe23:4567:890a", "ip fe80::1ff:fe23:4567:890b", false},
	}
	for _, tc := range tests {
		m := newKeyMemo(1)
		if got := m.reading([]byte(tc.a)) == m.reading([]byte(tc.b)); got != tc.same {
			t.Errorf("the memo reads %q and %q the same: %v, want %v", tc.a, tc.b, got, tc.same)
		}
	}
}

// FuzzKeyMemo checks the memo's premise: texts it reads the same have the
// same template key and the same features.
func FuzzKeyMemo(f *testing.F) {
	for _, s := range []string{
		"2026-03-04T09:00:02.871Z ERROR [payment-svc] charge failed for order 10231: upstream timeout after 30s",
		"addr 0x7ffd5a2c and 0X0 at 10.0.0.1:8080 uid=0 blk_-1608999687919862906",
		"a1 b22 c333 d4444 12ab 1a2b3c4d5e6f 550e8400-e29b-41d4-a716-446655440000",
		"span=5F3A9C1B2D4E6F70 fe80::1ff:fe23:4567:890a /tmp/deadbeef42/x c0ffee1-abcdef-abc123",
	} {
		f.Add([]byte(s), uint64(1))
	}
	feat, err := NewFeaturizer(DefaultFeaturizerConfig())
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, text []byte, seed uint64) {
		other := Rewrite(text, rand.New(rand.NewPCG(seed, 0)))
		m := newKeyMemo(1)
		if a, b := m.reading(text), m.reading(other); a != b {
			t.Fatalf("the memo reads %q and %q differently", text, other)
		}
		// A reading is a text with the record's tokens: records read alike
		// have one key, whichever reading found them.
		r := m.readings(text)
		for _, o := range [][]byte{other, r[0], r[1]} {
			toks := feat.NewTokens()
			if a, b := feat.Scan(text, toks), feat.Scan(o, toks); a != b {
				t.Fatalf("keys of %q and %q differ", text, o)
			}
			fa, fb := feat.NewFeatures(), feat.NewFeatures()
			feat.Featurize(text, &fa)
			feat.Featurize(o, &fb)
			if !slices.Equal(fa.IDs, fb.IDs) || !slices.Equal(fa.Weights, fb.Weights) {
				t.Fatalf("features of %q and %q differ", text, o)
			}
		}
	})
}

// TestKeyMemoStandsAside: a stream whose records the memo never reads the
// same (names) makes it stand aside; its keys are the scan's throughout.
func TestKeyMemoStandsAside(t *testing.T) {
	f, err := NewFeaturizer(DefaultFeaturizerConfig())
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(7, 7))
	tests := []struct {
		name     string
		line     func(i int) string
		standing bool // whether the memo is in use after the stream
	}{
		{"numbers repeat", func(i int) string { return fmt.Sprintf("request %d took %dms", i%1000, rng.IntN(100)) }, true},
		{"trace ids", func(i int) string { return fmt.Sprintf("request trace=%016x done", rng.Uint64()) }, true},
		{"names", func(i int) string {
			name := make([]byte, 8)
			for k := range name {
				name[k] = byte('g' + rng.IntN(20))
			}
			return fmt.Sprintf("login by user %s", name)
		}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, toks, scan := newKeyMemo(DefaultTemplateCache), f.NewTokens(), f.NewTokens()
			for i := range 3 * memoWindow {
				text := []byte(tc.line(i))
				if got, want := m.key(f, text, toks), f.Scan(text, scan); got != want {
					t.Fatalf("record %d %q: key %x, want %x", i, text, got, want)
				}
			}
			if standing := m.all.rest == 0; standing != tc.standing {
				t.Fatalf("memo in use: %v, want %v (rest %d)", standing, tc.standing, m.all.rest)
			}
		})
	}
}

// BenchmarkBlindHash is the cost of the memo's readings of a line: the
// digits, and the hex runs (a pass, then the hash of its copy).
func BenchmarkBlindHash(b *testing.B) {
	lines := benchLines()
	var bytes int
	for _, l := range lines {
		bytes += len(l)
	}
	b.Run("digits", func(b *testing.B) {
		b.SetBytes(int64(bytes / len(lines)))
		for i := 0; b.Loop(); i++ {
			blindHash(lines[i%len(lines)])
		}
	})
	b.Run("hex-runs", func(b *testing.B) {
		m := newKeyMemo(1)
		b.SetBytes(int64(bytes / len(lines)))
		for i := 0; b.Loop(); i++ {
			m.reading(lines[i%len(lines)])
		}
	})
}
