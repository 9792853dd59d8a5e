package runtime

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"strings"
	"testing"

	"github.com/pawlogs/paw/runtime/graph"
)

func testManifest() Manifest {
	cfg := DefaultFeaturizerConfig()
	cfg.BucketBits = 8
	return Manifest{FormatVersion: FormatVersion, Name: "t", Labels: []string{"a", "b"}, Positive: "a",
		Interpreter: InterpreterHashnetV1, Featurizer: cfg, Model: ModelShape{Buckets: 256, Dim: 2, Temperature: 1}}
}

func validArtifact(t testing.TB) []byte {
	t.Helper()
	m := testManifest()
	return encodeTestArtifact(t, &m)
}

// encodeTestArtifact is an artifact of m with a zero table.
func encodeTestArtifact(t testing.TB, m *Manifest) []byte {
	t.Helper()
	w := &graph.Hashnet{Rows: 256, Width: 2, Table: make([]float32, 512), Head: make([]float32, 4), Bias: make([]float32, 2)}
	model, err := w.Encode("test")
	if err != nil {
		t.Fatal(err)
	}
	data, err := EncodeArtifact(m, []byte("name: t\n"), model)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// zipOf builds a ZIP from name/content pairs, in order.
func zipOf(t testing.TB, entries ...[2]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range entries {
		w, err := zw.Create(e[0])
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(w, e[1])
	}
	zw.Close()
	return buf.Bytes()
}

func manifestJSON(t testing.TB, mut func(*Manifest)) string {
	m := testManifest()
	mut(&m)
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestArtifactRoundTrip(t *testing.T) {
	data := validArtifact(t)
	a, err := DecodeArtifact(data)
	if err != nil {
		t.Fatal(err)
	}
	if a.ID != ArtifactID(data) || len(a.ID) != 64 {
		t.Fatalf("ID %q is not the file's SHA-256", a.ID)
	}
	if a.Manifest.Name != "t" || string(a.Spec) != "name: t\n" || len(a.Model) == 0 {
		t.Fatalf("decoded %+v", a.Manifest)
	}
	again := validArtifact(t)
	if !bytes.Equal(data, again) {
		t.Fatal("encoding the same program twice gave different bytes")
	}
}

func TestDecodeArtifactRefuses(t *testing.T) {
	valid := validArtifact(t)
	ok := manifestJSON(t, func(*Manifest) {})
	var bomb bytes.Buffer
	{
		zw := zip.NewWriter(&bomb)
		w, _ := zw.Create(entryManifest)
		io.WriteString(w, ok)
		w, _ = zw.Create(entrySpec)
		io.WriteString(w, "x")
		w, _ = zw.Create(entryModel)
		zero := make([]byte, 1<<20)
		for i := 0; i < maxModelBytes>>20+1; i++ {
			w.Write(zero)
		}
		zw.Close()
	}
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "not a .paw ZIP"},
		{"garbage", []byte("\x00\x01binary garbage that is not a zip"), "not a .paw ZIP"},
		{"truncated", valid[:len(valid)/2], "not a .paw ZIP"},
		{"corrupt body", corruptMiddle(valid), "invalid artifact"},
		{"foreign zip", zipOf(t, [2]string{"README.txt", "hello"}), `unexpected entry "README.txt"`},
		{"path traversal", zipOf(t, [2]string{"../../etc/passwd", "x"}), `unexpected entry "../../etc/passwd"`},
		{"missing model", zipOf(t, [2]string{entryManifest, ok}, [2]string{entrySpec, "x"}), "missing model.onnx"},
		{"duplicate entry", zipOf(t, [2]string{entryManifest, ok}, [2]string{entryManifest, ok}, [2]string{entryModel, "x"}), "duplicate entry"},
		{"zip bomb", bomb.Bytes(), "limit"},
		{"newer format", zipOf(t, [2]string{entryManifest, manifestJSON(t, func(m *Manifest) { m.FormatVersion = FormatVersion + 1 })}, [2]string{entrySpec, "x"}, [2]string{entryModel, "x"}), "newer than this paw reads"},
		{"unknown manifest key", zipOf(t, [2]string{entryManifest, `{"format_version":1,"surprise":1}`}, [2]string{entrySpec, "x"}, [2]string{entryModel, "x"}), "unknown field"},
		{"bad positive", zipOf(t, [2]string{entryManifest, manifestJSON(t, func(m *Manifest) { m.Positive = "zzz" })}, [2]string{entrySpec, "x"}, [2]string{entryModel, "x"}), "positive label"},
		{"one label", zipOf(t, [2]string{entryManifest, manifestJSON(t, func(m *Manifest) { m.Labels = []string{"a"}; m.Positive = "" })}, [2]string{entrySpec, "x"}, [2]string{entryModel, "x"}), "want 2..256"},
		{"too large", make([]byte, MaxArtifactBytes+1), "larger than"},
		{"encoder-v1 without an encoder", withManifest(t, func(m *Manifest) { m.Interpreter = InterpreterEncoderV1 }), "without an encoder"},
		{"encoder with hashnet-v1", withManifest(t, func(m *Manifest) { e := validEncoderRef(); m.Encoder = &e }), "hashnet-v1 program with an encoder"},
		{"encoder digest", withManifest(t, func(m *Manifest) {
			e := validEncoderRef()
			e.ModelSHA256 = "abc"
			m.Interpreter, m.Encoder, m.Model.Dim = InterpreterEncoderV1, &e, e.Dim
		}), "hex SHA-256"},
		{"encoder name", withManifest(t, func(m *Manifest) {
			e := validEncoderRef()
			e.Name = "../up"
			m.Interpreter, m.Encoder, m.Model.Dim = InterpreterEncoderV1, &e, e.Dim
		}), "want a folder name"},
		{"encoder width", withManifest(t, func(m *Manifest) {
			e := validEncoderRef()
			m.Interpreter, m.Encoder, m.Model.Dim = InterpreterEncoderV1, &e, 7
		}), "model dim 7, encoder 384"},
		{"unknown interpreter", withManifest(t, func(m *Manifest) { m.Interpreter = "gpt-v9" }), `interpreter "gpt-v9"`},
		{"spec digest", withManifest(t, func(m *Manifest) { m.SpecSHA256 = strings.Repeat("0", 64) }), "spec_sha256 \"000"},
		{"keywords of no label", withKeywords(t, func(m *Manifest) { m.Keywords["x"] = []string{"fail"} }), `keywords["x"]: not a label`},
		{"keywords without rates", withKeywords(t, func(m *Manifest) { m.KeywordRates = nil }), "without keyword_rates"},
		{"rates without keywords", withManifest(t, func(m *Manifest) { m.KeywordRates = map[string]KeywordRates{"a": {0.5, 0.1}} }), "keyword_rates without keywords"},
		{"rate out of range", withKeywords(t, func(m *Manifest) { m.KeywordRates["a"] = KeywordRates{Hit: 1, False: 0.1} }), "want rates in (0, 1)"},
		{"stem upper case", withKeywords(t, func(m *Manifest) { m.Keywords["a"] = []string{"Fail"} }), "stem"},
		{"stem too short", withKeywords(t, func(m *Manifest) { m.Keywords["a"] = []string{"f"} }), "stem"},
		{"stems double-spaced", withKeywords(t, func(m *Manifest) { m.Keywords["a"] = []string{"lost  connect"} }), "stem"},
		{"phrase too long", withKeywords(t, func(m *Manifest) { m.Keywords["a"] = []string{"aa bb cc dd ee ff gg hh ii"} }), "9 stems"},
		{"too many phrases", withKeywords(t, func(m *Manifest) { m.Keywords["a"] = slices.Repeat([]string{"aa"}, 65) }), "65 phrases"},
		{"no phrases", withKeywords(t, func(m *Manifest) { m.Keywords["a"] = []string{} }), "0 phrases"},
		{"too many stems", withKeywords(t, func(m *Manifest) {
			m.Keywords["a"], m.Keywords["b"] = nil, nil
			for i := range 60 {
				m.Keywords["a"] = append(m.Keywords["a"], fmt.Sprintf("a%c%c b%c%c c%c%c", 'a'+i%26, 'a'+i/26, 'a'+i%26, 'a'+i/26, 'a'+i%26, 'a'+i/26))
				m.Keywords["b"] = append(m.Keywords["b"], fmt.Sprintf("d%c%c e%c%c", 'a'+i%26, 'a'+i/26, 'a'+i%26, 'a'+i/26))
			}
			m.KeywordRates["b"] = KeywordRates{Hit: 0.5, False: 0.1}
		}), "300 distinct stems"},
		{"keywords for an encoder", withEncoder(t, func(m *Manifest) {
			m.Keywords, m.KeywordRates = map[string][]string{"a": {"fail"}}, map[string]KeywordRates{"a": {0.5, 0.1}}
		}), "keywords in a encoder-v1 program"},
		{"patterns in a hashnet-v1 program", withManifest(t, func(m *Manifest) { m.Patterns = []string{"disk <*> failed"} }), "patterns in a hashnet-v1 program"},
		{"a pattern's empty token", withEncoder(t, func(m *Manifest) { m.Patterns = []string{"disk  failed"} }), "pattern 0: want at most 128 tokens, each not empty"},
		{"a pattern too long", withEncoder(t, func(m *Manifest) { m.Patterns = []string{strings.Repeat("x ", 200) + "x"} }), "pattern 0: want at most 128 tokens"},
		{"too many patterns", withEncoder(t, func(m *Manifest) { m.Patterns = slices.Repeat([]string{"a"}, maxNoveltyPatterns+1) }), "4097 patterns"},
		{"patterns too large", withEncoder(t, func(m *Manifest) { m.Patterns = slices.Repeat([]string{strings.Repeat("<", 700)}, 70) }), "patterns of 294140 bytes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeArtifact(tc.data)
			if err == nil {
				t.Fatal("accepted")
			}
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q, want ErrCorrupt mentioning %q", err, tc.want)
			}
		})
	}
}

// withKeywords is an artifact with keywords for label "a", then mut.
func withKeywords(t testing.TB, mut func(*Manifest)) []byte {
	return withManifest(t, func(m *Manifest) {
		m.Keywords = map[string][]string{"a": {"fail", "lost connect"}}
		m.KeywordRates = map[string]KeywordRates{"a": {Hit: 0.6, False: 0.1}}
		mut(m)
	})
}

// withManifest is an artifact whose manifest mut changed.
func withManifest(t testing.TB, mut func(*Manifest)) []byte {
	return zipOf(t, [2]string{entryManifest, manifestJSON(t, mut)}, [2]string{entrySpec, "x"}, [2]string{entryModel, "x"})
}

// withEncoder is withManifest for an encoder-v1 program.
func withEncoder(t testing.TB, mut func(*Manifest)) []byte {
	return withManifest(t, func(m *Manifest) {
		e := validEncoderRef()
		m.Interpreter, m.Encoder, m.Model.Dim = InterpreterEncoderV1, &e, e.Dim
		mut(m)
	})
}

func validEncoderRef() EncoderRef {
	return EncoderRef{Name: "minilm", ModelSHA256: strings.Repeat("ab", 32), TokenizerSHA256: strings.Repeat("cd", 32),
		Output: "last_hidden_state", Dim: 384, MaxTokens: 128, Pooling: PoolMean}
}

// corruptMiddle flips bytes inside the compressed model, leaving the ZIP
// directory intact, so only the CRC or inflate can notice.
func corruptMiddle(data []byte) []byte {
	c := append([]byte(nil), data...)
	for i := len(c) / 2; i < len(c)/2+32; i++ {
		c[i] ^= 0x5a
	}
	return c
}

func FuzzDecodeArtifact(f *testing.F) {
	f.Add(validArtifact(f))
	f.Add([]byte{})
	f.Add([]byte("PK\x03\x04garbage"))
	f.Add(zipOf(f, [2]string{entryManifest, "{}"}, [2]string{entrySpec, ""}, [2]string{entryModel, ""}))
	f.Add(withManifest(f, func(m *Manifest) {
		e := validEncoderRef()
		m.Interpreter, m.Encoder, m.Model, m.Featurizer = InterpreterEncoderV1, &e, ModelShape{Dim: e.Dim}, FeaturizerConfig{}
	}))
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := DecodeArtifact(data)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error without ErrCorrupt: %v", err)
			}
			return
		}
		if err := a.Manifest.Validate(); err != nil {
			t.Fatalf("accepted an invalid manifest: %v", err)
		}
	})
}

// An entry whose header declares far more than its bytes can inflate to
// is refused without the reader allocating what it declares.
func TestDecodeArtifactLyingSize(t *testing.T) {
	var raw bytes.Buffer
	fw, err := flate.NewWriter(&raw, flate.BestCompression)
	if err != nil {
		t.Fatal(err)
	}
	fw.Write([]byte("model"))
	fw.Close()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range [][2]string{{entryManifest, manifestJSON(t, func(*Manifest) {})}, {entrySpec, "x"}} {
		w, _ := zw.Create(e[0])
		w.Write([]byte(e[1]))
	}
	w, err := zw.CreateRaw(&zip.FileHeader{Name: entryModel, Method: zip.Deflate,
		CRC32: crc32.ChecksumIEEE([]byte("model")), CompressedSize64: uint64(raw.Len()), UncompressedSize64: 200 << 20})
	if err != nil {
		t.Fatal(err)
	}
	w.Write(raw.Bytes())
	zw.Close()
	var before, after goruntime.MemStats
	goruntime.ReadMemStats(&before)
	_, err = DecodeArtifact(buf.Bytes())
	goruntime.ReadMemStats(&after)
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("error %v, want ErrCorrupt", err)
	}
	if n := after.TotalAlloc - before.TotalAlloc; n > 1<<20 {
		t.Fatalf("decoding a %d-byte artifact allocated %d bytes", buf.Len(), n)
	}
}

// A .paw file is refused as DecodeArtifact refuses bytes: too large is
// corrupt, and read no further than one byte past the limit.
func TestReadArtifactFile(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.paw")
	if err := os.WriteFile(good, validArtifact(t), 0o644); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big.paw")
	f, err := os.Create(big)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(2 * MaxArtifactBytes); err != nil { // sparse: no disk
		t.Fatal(err)
	}
	f.Close()
	if a, err := ReadArtifactFile(good); err != nil || a.Manifest.Name != "t" {
		t.Fatalf("%v, %v", a, err)
	}
	if _, err := ReadArtifactFile(big); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("an oversized file: %v", err)
	}
	if _, err := ReadArtifactFile(filepath.Join(dir, "none.paw")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a missing file: %v", err)
	}
}
