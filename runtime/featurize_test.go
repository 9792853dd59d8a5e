package runtime

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestNormalize(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"numbers and timestamp collapse", "2015-10-18 18:02:41,309 INFO started 3 workers", "<num> info started <num> workers"},
		{"iso timestamp", "2026-03-04T09:00:01.112Z ERROR boom", "<num> error boom"},
		{"ipv4 with port and slash", "connect /10.251.43.191:50010 failed", "connect <ip> failed"},
		{"ipv6", "from fe80::1ff:fe23:4567:890a ok", "from <ip> ok"},
		{"uuid", "req 123e4567-e89b-12d3-a456-426614174000 done", "req <uuid> done"},
		{"hex", "addr 0x7ffd12 and deadbeef12 here", "addr <hex> and <hex> here"},
		{"path", "open /var/lib/app/state.db: permission denied", "open <path> permission denied"},
		{"url", "GET https://example.com/a?b=1 200", "get <url> <num>"},
		{"key value", "user=root uid=0 rhost=10.0.0.1", "user root uid <num> rhost <ip>"},
		{"month names mask", "Jun 14 15:16:01 combo sshd", "<num> combo sshd"},
		{"digits inside words fold", "node17 ipv4 blk_-1608999687919862906", "node0 ipv0 blk <num>"},
		{"punctuation trimmed", "[main] (x) \"quoted\", done.", "main x quoted done"},
		{"empty", "", ""},
		{"only separators", " \t\n\r ,;", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Normalize([]byte(tc.in), DefaultMaxBytes); got != tc.want {
				t.Errorf("Normalize(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func newTestFeaturizer(t testing.TB) *Featurizer {
	f, err := NewFeaturizer(DefaultFeaturizerConfig())
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestFeaturizeInvariants(t *testing.T) {
	f := newTestFeaturizer(t)
	inputs := map[string][]byte{
		"log line":     []byte("2026-03-04T09:00:02.871Z ERROR [payment-svc] charge failed for order 10231"),
		"empty":        nil,
		"invalid utf8": {0xff, 0xfe, 'e', 'r', 'r', 0xc3, 0x28, ' ', 0x80},
		"binary":       bytes.Repeat([]byte{0, 1, 2, 0xff, 'a', 0x7f}, 1000),
		"1MiB line":    bytes.Repeat([]byte("word "), 1<<18),
	}
	for name, in := range inputs {
		t.Run(name, func(t *testing.T) {
			ft := f.NewFeatures()
			f.Featurize(in, &ft)
			checkFeatures(t, f, &ft)
		})
	}
}

func checkFeatures(t *testing.T, f *Featurizer, ft *Features) {
	t.Helper()
	if ft.Len < 1 || ft.Len > f.cfg.MaxFeatures {
		t.Fatalf("Len = %d, want 1..%d", ft.Len, f.cfg.MaxFeatures)
	}
	var sum float64
	for i := 0; i < f.cfg.MaxFeatures; i++ {
		id, w := ft.IDs[i], ft.Weights[i]
		if i < ft.Len {
			if id < 1 || id >= int64(f.cfg.Buckets()) {
				t.Fatalf("id[%d] = %d outside 1..%d", i, id, f.cfg.Buckets()-1)
			}
			sum += float64(w)
		} else if id != 0 || w != 0 {
			t.Fatalf("padding slot %d = (%d, %v), want zeros", i, id, w)
		}
	}
	if math.Abs(sum-1) > 1e-4 {
		t.Fatalf("weights sum to %v, want 1", sum)
	}
}

func TestFeaturizeTruncatesAndIsDeterministic(t *testing.T) {
	f := newTestFeaturizer(t)
	head := strings.Repeat("alpha beta gamma ", 250) // > 4 KiB
	a, b := f.NewFeatures(), f.NewFeatures()
	f.Featurize([]byte(head[:DefaultMaxBytes]), &a)
	f.Featurize([]byte(head[:DefaultMaxBytes]+" completely different tail words"), &b)
	if a.Len != b.Len || !equalIDs(a, b) {
		t.Fatal("bytes past max_bytes changed the features")
	}
	c := f.NewFeatures()
	f.Featurize([]byte(head[:DefaultMaxBytes]), &c)
	if !equalIDs(a, c) {
		t.Fatal("featurization is not deterministic")
	}
	// A different seed gives a different hash space.
	cfg := DefaultFeaturizerConfig()
	cfg.Seed = 7
	g, _ := NewFeaturizer(cfg)
	d := g.NewFeatures()
	g.Featurize([]byte("charge failed"), &d)
	e := f.NewFeatures()
	f.Featurize([]byte("charge failed"), &e)
	if equalIDs(d, e) {
		t.Fatal("seed did not change the feature ids")
	}
}

func equalIDs(a, b Features) bool {
	if a.Len != b.Len {
		return false
	}
	for i := 0; i < a.Len; i++ {
		if a.IDs[i] != b.IDs[i] {
			return false
		}
	}
	return true
}

func TestFeaturizerConfigValidate(t *testing.T) {
	bad := []func(*FeaturizerConfig){
		func(c *FeaturizerConfig) { c.Kind = "other" },
		func(c *FeaturizerConfig) { c.BucketBits = 30 },
		func(c *FeaturizerConfig) { c.MaxBytes = 1 },
		func(c *FeaturizerConfig) { c.MaxFeatures = 0 },
		func(c *FeaturizerConfig) { c.WordNgrams = 9 },
		func(c *FeaturizerConfig) { c.CharNgrams = -1 },
	}
	for i, mut := range bad {
		c := DefaultFeaturizerConfig()
		mut(&c)
		if _, err := NewFeaturizer(c); err == nil {
			t.Errorf("case %d: invalid config accepted: %+v", i, c)
		}
	}
}

func FuzzFeaturize(f *testing.F) {
	for _, s := range []string{
		"", "=", "a=", "=b", "::", "/", "0x", "2015-10-18 18:02:41,309 INFO x",
		"fe80::1 10.0.0.1:80 /10.0.0.1:x 123e4567-e89b-12d3-a456-426614174000",
		"http://x y://", "\xff\xfe\x00", "[(<\"'`,;", "C:\\Windows\\x a/b/c ~/x",
	} {
		f.Add([]byte(s))
	}
	fz := newTestFeaturizer(f)
	toks := fz.NewTokens()
	f.Fuzz(func(t *testing.T, in []byte) {
		ft := fz.NewFeatures()
		fz.Featurize(in, &ft)
		checkFeatures(t, fz, &ft)
		_ = Normalize(in, DefaultMaxBytes)
		// A record with other digits has the same key, and a record with
		// the same key has the same features.
		other := bytes.Map(func(r rune) rune {
			if r >= '0' && r <= '9' {
				return '0' + (r-'0'+3)%10
			}
			return r
		}, in)
		if fz.Scan(in, toks) == fz.Scan(other, toks) {
			via := fz.NewFeatures()
			fz.Featurize(other, &via)
			if !equalIDs(ft, via) {
				t.Fatalf("%q and %q have one key but different features", in, other)
			}
		}
	})
}

func TestScanKeys(t *testing.T) {
	small := DefaultFeaturizerConfig()
	small.MaxFeatures = 12
	tests := []struct {
		name  string
		cfg   FeaturizerConfig
		a, b  string
		equal bool
	}{
		{"numbers differ", DefaultFeaturizerConfig(), "ERROR request 17 failed after 30 ms", "ERROR request 9912 failed after 2 ms", true},
		{"ids and addresses differ", DefaultFeaturizerConfig(), "conn from 10.0.0.1:80 id 0x1f2e3d", "conn from 192.168.1.9:443 id 0xdeadbeef", true},
		{"case differs", DefaultFeaturizerConfig(), "Connection RESET", "connection reset", true},
		{"a word differs", DefaultFeaturizerConfig(), "ERROR request failed", "ERROR request done", false},
		{"order differs", DefaultFeaturizerConfig(), "disk full", "full disk", false},
		{"extra token", DefaultFeaturizerConfig(), "disk full", "disk full now", false},
		{"past the feature cap", small, "alpha beta gamma delta epsilon zeta eta theta", "alpha beta gamma delta epsilon zeta eta iota", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, err := NewFeaturizer(tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			toks := f.NewTokens()
			ka := f.Scan([]byte(tc.a), toks)
			kb := f.Scan([]byte(tc.b), toks)
			if (ka == kb) != tc.equal {
				t.Fatalf("keys equal = %v, want %v", ka == kb, tc.equal)
			}
			fa, fb := f.NewFeatures(), f.NewFeatures()
			f.Featurize([]byte(tc.a), &fa)
			f.Featurize([]byte(tc.b), &fb)
			if tc.equal && !equalIDs(fa, fb) {
				t.Fatal("equal keys but different features")
			}
		})
	}
}

func BenchmarkScan(b *testing.B) {
	f := newTestFeaturizer(b)
	lines := benchLines()
	toks := f.NewTokens()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		f.Scan(lines[i%len(lines)], toks)
	}
}

func BenchmarkFeaturize(b *testing.B) {
	f := newTestFeaturizer(b)
	lines := benchLines()
	ft := f.NewFeatures()
	var bytes int
	for _, l := range lines {
		bytes += len(l)
	}
	b.SetBytes(int64(bytes / len(lines)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		f.Featurize(lines[i%len(lines)], &ft)
	}
}

func benchLines() [][]byte {
	return [][]byte{
		[]byte("2026-03-04T09:00:02.871Z ERROR [payment-svc] charge failed for order 10231: upstream timeout after 30s, retry 3 scheduled"),
		[]byte("081109 203615 148 INFO dfs.DataNode$PacketResponder: PacketResponder 1 for block blk_38865049064139660 terminating"),
		[]byte("Jun 23 01:41:30 combo sshd(pam_unix)[18982]: authentication failure; logname= uid=0 euid=0 tty=NODEVssh ruser= rhost=209.152.168.249 user=guest"),
		[]byte("2015-10-18 18:09:39,479 WARN [RMCommunicator Allocator] org.apache.hadoop.ipc.Client: Address change detected. Old: msra-sa-41/10.190.173.170:8030"),
	}
}

// TestTemplateKeysOnLoghub measures, in one pass over each Loghub sample
// (../shared, skipped when absent), how many lines repeat the key of an
// earlier line: the template cache's hit rate on real logs, before any
// eviction.
func TestTemplateKeysOnLoghub(t *testing.T) {
	files, _ := filepath.Glob("../../shared/data/loghub/*/*.log")
	if len(files) == 0 {
		t.Skip("no ../shared/data/loghub")
	}
	f := newTestFeaturizer(t)
	toks := f.NewTokens()
	var all, repeats int
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		seen := map[uint64]bool{}
		n, rep := 0, 0
		for _, l := range bytes.Split(data, []byte("\n")) {
			if len(l) == 0 {
				continue
			}
			k := f.Scan(l, toks)
			if seen[k] {
				rep++
			}
			seen[k] = true
			n++
		}
		t.Logf("%-12s %5d lines, %5d keys, %4.1f%% repeat an earlier key", filepath.Base(filepath.Dir(file)), n, len(seen), 100*float64(rep)/float64(n))
		all += n
		repeats += rep
	}
	rate := float64(repeats) / float64(all)
	t.Logf("all: %d lines, %.1f%% repeat an earlier key of their system", all, 100*rate)
	// Masking is what makes keys repeat; if it broke, this would collapse.
	if rate < 0.8 {
		t.Fatalf("only %.1f%% of real lines share a key with an earlier line; want at least 80%%", 100*rate)
	}
}
