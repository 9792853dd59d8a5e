package runtime_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pawlogs/paw/runtime"
	"github.com/pawlogs/paw/runtime/encodertest"
	"github.com/pawlogs/paw/runtime/graph"
	"github.com/pawlogs/paw/runtime/runtimetest"
)

// tinyEncoder writes a random BERT-style encoder into root/name.
func tinyEncoder(t testing.TB, root, name string, o encodertest.Options) string {
	t.Helper()
	dir, err := encodertest.Write(filepath.Join(root, name), o)
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// headArtifact wraps random head weights for enc as an encoder-v1 artifact.
func headArtifact(t testing.TB, ref runtime.EncoderRef, seed uint64) (*runtime.Artifact, *graph.Head) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 1))
	h := &graph.Head{Dim: ref.Dim, Labels: 3, W: randFloats(rng, ref.Dim*3), Bias: randFloats(rng, 3)}
	model, err := h.Encode("test")
	if err != nil {
		t.Fatal(err)
	}
	m := &runtime.Manifest{FormatVersion: runtime.FormatVersion, Name: "enc", Labels: []string{"a", "b", "c"},
		Interpreter: runtime.InterpreterEncoderV1, Encoder: &ref, Model: runtime.ModelShape{Dim: ref.Dim}}
	data, err := runtime.EncodeArtifact(m, []byte("name: enc\n"), model)
	if err != nil {
		t.Fatal(err)
	}
	a, err := runtime.DecodeArtifact(data)
	if err != nil {
		t.Fatal(err)
	}
	return a, h
}

var encoderTexts = []string{
	"connection to db failed after timeout",
	"user login ok",
	"ERROR: disk 7 is corrupt!",
	"job finished",
	"worker crashed with exception; restarting the worker on node 12 after the cache was lost",
}

func TestEncoderHeadMatchesGoReference(t *testing.T) {
	env := openEnv(t)
	root := t.TempDir()
	dir := tinyEncoder(t, root, "tiny", encodertest.Options{Seed: 1})
	enc, err := runtime.LoadEncoder(env, dir, runtime.EncoderSettings{MaxTokens: 32, Normalize: true}, runtime.ProgramOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	if r := enc.Ref; r.Dim != 32 || r.Pooling != runtime.PoolMean || r.Output != "last_hidden_state" || r.Name != "tiny" || len(r.ModelSHA256) != 64 {
		t.Fatalf("ref %+v", r)
	}
	// Each record alone, then all in one padded batch: padding must not
	// change a record's embedding.
	dim := enc.Ref.Dim
	batch := make([][]int64, len(encoderTexts))
	for i, s := range encoderTexts {
		batch[i] = enc.Tokenize(nil, []byte(s))
	}
	together := make([]float32, len(batch)*dim)
	if err := enc.Embed(batch, together); err != nil {
		t.Fatal(err)
	}
	for i := range batch {
		alone := make([]float32, dim)
		if err := enc.Embed(batch[i:i+1], alone); err != nil {
			t.Fatal(err)
		}
		var norm float64
		for d := range alone {
			norm += float64(alone[d]) * float64(alone[d])
			if diff := math.Abs(float64(alone[d] - together[i*dim+d])); diff > 1e-4 {
				t.Fatalf("record %d dim %d: %v alone, %v in a padded batch", i, d, alone[d], together[i*dim+d])
			}
		}
		if math.Abs(norm-1) > 1e-4 {
			t.Fatalf("record %d: |e|^2 = %v with normalize", i, norm)
		}
	}
	// The head on ONNX Runtime against graph.Head.Forward.
	a, h := headArtifact(t, enc.Ref, 7)
	p, err := runtime.NewProgram(env, a, runtime.ProgramOptions{EncoderDir: root})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	got := make([]float32, len(batch)*3)
	if err := p.Run([]*runtime.Features{{}}, got); err == nil || !strings.Contains(err.Error(), "run it on embeddings") {
		t.Fatalf("an encoder-v1 program ran on features: %v", err)
	}
	if err := p.RunEmbeddings(together, len(batch), got); err != nil {
		t.Fatal(err)
	}
	want := make([]float32, 3)
	for i := range batch {
		h.Forward(together[i*dim:(i+1)*dim], want)
		for k := range want {
			if diff := math.Abs(float64(got[i*3+k] - want[k])); diff > 1e-5 {
				t.Fatalf("record %d label %d: onnx %v, go %v", i, k, got[i*3+k], want[k])
			}
		}
	}
	// Through the batcher (tokenize, encode, head, cache) the same numbers.
	b := runtimetest.Batcher(t, runtime.BatcherConfig{}, p)
	defer b.Close() // before p's deferred Close
	texts := make([][]byte, 0, 2*len(encoderTexts))
	for range 2 {
		for _, s := range encoderTexts {
			texts = append(texts, []byte(s))
		}
	}
	res, err := b.Classify(context.Background(), texts...)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		j := i % len(encoderTexts)
		for k, v := range r.Decisions[0].Probs {
			if diff := math.Abs(float64(v - got[j*3+k])); diff > 1e-5 {
				t.Fatalf("batcher record %d label %d: %v, direct %v", i, k, v, got[j*3+k])
			}
		}
	}
}

// installedEncoder writes the tiny encoder "tiny" into a fresh encoders
// folder and returns the folder and the encoder's reference.
func installedEncoder(t *testing.T, env *runtime.Env) (string, runtime.EncoderRef) {
	t.Helper()
	root := t.TempDir()
	enc, err := runtime.LoadEncoder(env, tinyEncoder(t, root, "tiny", encodertest.Options{Seed: 1}), runtime.EncoderSettings{}, runtime.ProgramOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	return root, enc.Ref
}

func TestEncoderRefusesADifferentEncoder(t *testing.T) {
	env := openEnv(t)
	root, ref := installedEncoder(t, env)
	a, _ := headArtifact(t, ref, 1)
	tests := []struct {
		name  string
		setup func(t *testing.T) string // returns the encoders folder
		want  string
	}{
		{"other weights", func(t *testing.T) string {
			r := t.TempDir()
			tinyEncoder(t, r, "tiny", encodertest.Options{Seed: 2})
			return r
		}, "model.onnx has SHA-256"},
		{"other tokenizer", func(t *testing.T) string {
			r := t.TempDir()
			d := tinyEncoder(t, r, "tiny", encodertest.Options{Seed: 1})
			data, _ := os.ReadFile(filepath.Join(d, "tokenizer.json"))
			os.WriteFile(filepath.Join(d, "tokenizer.json"), append(data, ' '), 0o644)
			return r
		}, "tokenizer.json has SHA-256"},
		{"missing", func(t *testing.T) string { return t.TempDir() }, "PAW_ENCODERS"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := runtime.NewProgram(env, a, runtime.ProgramOptions{EncoderDir: tc.setup(t)})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
	p, err := runtime.NewProgram(env, a, runtime.ProgramOptions{EncoderDir: root})
	if err != nil {
		t.Fatalf("the right encoder: %v", err)
	}
	p.Close()
}

func TestEncoderPooledOutput(t *testing.T) {
	env := openEnv(t)
	dir := tinyEncoder(t, t.TempDir(), "pooled", encodertest.Options{Seed: 3, Dim: 16, Pooled: true})
	enc, err := runtime.LoadEncoder(env, dir, runtime.EncoderSettings{}, runtime.ProgramOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	if enc.Ref.Pooling != runtime.PoolNone || enc.Ref.Dim != 16 || enc.Ref.Output != "sentence_embedding" {
		t.Fatalf("ref %+v", enc.Ref)
	}
	if _, err := runtime.LoadEncoder(env, dir, runtime.EncoderSettings{Pooling: "cls"}, runtime.ProgramOptions{}); err == nil || !strings.Contains(err.Error(), "already pooled") {
		t.Fatalf("cls pooling of a pooled output: %v", err)
	}
}

// BenchmarkEncoderInterpreter runs encoder-v1 programs end to end
// (tokenize, encode, pool, head) on random one-layer BERT-style encoders of
// width 32 and 384 (MiniLM's width; MiniLM has 6 layers, so it costs
// several times more per line than dim=384 here).
func BenchmarkEncoderInterpreter(b *testing.B) {
	env := openEnv(b)
	lines := loghubLines(b)
	if len(lines) == 0 {
		lines = benchTexts(4096)
	}
	for _, dim := range []int{32, 384} {
		root := b.TempDir()
		enc, err := runtime.LoadEncoder(env, tinyEncoder(b, root, "tiny", encodertest.Options{Seed: 5, Dim: dim}),
			runtime.EncoderSettings{MaxTokens: 64, Normalize: true}, runtime.ProgramOptions{})
		if err != nil {
			b.Fatal(err)
		}
		ref := enc.Ref
		enc.Close()
		a, _ := headArtifact(b, ref, 1)
		p, err := runtime.NewProgram(env, a, runtime.ProgramOptions{EncoderDir: root, Sessions: 2})
		if err != nil {
			b.Fatal(err)
		}
		set, err := runtime.NewProgramSet(p)
		if err != nil {
			b.Fatal(err)
		}
		for _, cache := range []int{-1, 0} {
			b.Run(fmt.Sprintf("dim=%d/cache=%v", dim, cache == 0), func(b *testing.B) {
				benchClassify(b, set, lines, cache)
			})
		}
		p.Close()
	}
}

func TestProgramsShareTheirEncoder(t *testing.T) {
	env := openEnv(t)
	root, ref := installedEncoder(t, env)
	a1, _ := headArtifact(t, ref, 1)
	a2, _ := headArtifact(t, ref, 2)
	open := func(a *runtime.Artifact) *runtime.Program {
		p, err := runtime.NewProgram(env, a, runtime.ProgramOptions{EncoderDir: root})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	p1, p2 := open(a1), open(a2)
	if p1.Encoder() != p2.Encoder() {
		t.Fatal("two programs on one encoder loaded it twice")
	}
	shared := p1.Encoder()
	p1.Close()
	p1.Close() // a second Close must not release the encoder twice
	emb := make([]float32, ref.Dim)
	if err := p2.Encoder().Embed([][]int64{p2.Encoder().Tokenize(nil, []byte("disk failed"))}, emb); err != nil {
		t.Fatalf("the encoder went away with the first program: %v", err)
	}
	if err := p2.RunEmbeddings(emb, 1, make([]float32, 3)); err != nil {
		t.Fatal(err)
	}
	p2.Close()
	p3 := open(a1)
	defer p3.Close()
	if p3.Encoder() == shared {
		t.Fatal("a released encoder was handed out again")
	}
}
