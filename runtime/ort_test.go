package runtime_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pawlogs/paw/compiler"
	"github.com/pawlogs/paw/runtime"
)

// openEnv loads ONNX Runtime. It fails rather than skips: make test
// installs the library first (make ort), so a missing one is a real defect.
func openEnv(t testing.TB) *runtime.Env {
	t.Helper()
	env, err := runtime.OpenEnv("")
	if err != nil {
		t.Fatalf("%v", err)
	}
	t.Cleanup(func() { env.Close() })
	return env
}

func TestONNXMatchesReference(t *testing.T) {
	env := openEnv(t)
	rng := rand.New(rand.NewPCG(3, 4))
	cfg := runtime.DefaultFeaturizerConfig()
	cfg.BucketBits = 10
	for _, shape := range []struct{ dim, labels int }{{8, 2}, {16, 4}, {3, 7}} {
		t.Run(fmt.Sprintf("dim%d_labels%d", shape.dim, shape.labels), func(t *testing.T) {
			w := &runtime.HashnetWeights{Buckets: cfg.Buckets(), Dim: shape.dim, Labels: shape.labels}
			w.Embedding = randFloats(rng, w.Buckets*w.Dim)
			w.Head = randFloats(rng, w.Dim*w.Labels)
			w.Bias = randFloats(rng, w.Labels)
			for d := 0; d < w.Dim; d++ { // the padding row stays zero
				w.Embedding[d] = 0
			}
			p := newProgram(t, env, w, cfg)
			defer p.Close()
			const n = runtime.DefaultMaxBatch
			feats := make([]*runtime.Features, n)
			for i := range feats {
				f := runtime.Features{IDs: make([]int64, cfg.MaxFeatures), Weights: make([]float32, cfg.MaxFeatures)}
				f.Len = 1 + rng.IntN(cfg.MaxFeatures)
				for j := 0; j < f.Len; j++ {
					f.IDs[j] = 1 + rng.Int64N(int64(w.Buckets-1))
					f.Weights[j] = rng.Float32()
				}
				feats[i] = &f
			}
			out := make([]float32, n*w.Labels)
			if err := p.Run(feats, out); err != nil {
				t.Fatal(err)
			}
			ref := make([]float32, w.Labels)
			worst := 0.0
			for i, f := range feats {
				w.Forward(f, ref)
				for k := range ref {
					worst = math.Max(worst, math.Abs(float64(ref[k]-out[i*w.Labels+k])))
				}
			}
			if worst > 1e-5 {
				t.Fatalf("onnx runtime and the Go reference differ by %g (limit 1e-5)", worst)
			}
			t.Logf("max |onnx - reference| = %.2g over %d records", worst, n)
		})
	}
}

func randFloats(rng *rand.Rand, n int) []float32 {
	out := make([]float32, n)
	for i := range out {
		out[i] = float32(rng.NormFloat64())
	}
	return out
}

func newProgram(t testing.TB, env *runtime.Env, w *runtime.HashnetWeights, cfg runtime.FeaturizerConfig) *runtime.Program {
	t.Helper()
	labels := make([]string, w.Labels)
	for i := range labels {
		labels[i] = fmt.Sprintf("l%d", i)
	}
	model, err := runtime.BuildHashnetONNX(w, "test")
	if err != nil {
		t.Fatal(err)
	}
	m := runtime.Manifest{FormatVersion: runtime.FormatVersion, Name: "t", Labels: labels, Interpreter: runtime.InterpreterHashnetV1,
		Featurizer: cfg, Model: runtime.ModelShape{Buckets: w.Buckets, Dim: w.Dim, Temperature: 1}}
	data, err := runtime.EncodeArtifact(&m, []byte("name: t\n"), model)
	if err != nil {
		t.Fatal(err)
	}
	a, err := runtime.DecodeArtifact(data)
	if err != nil {
		t.Fatal(err)
	}
	p, err := runtime.NewProgram(env, a, runtime.ProgramOptions{Sessions: 2})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// compileSpec compiles a small binary spec for runtime tests.
func compileSpec(t testing.TB, name string) *runtime.Artifact {
	t.Helper()
	a, err := runtime.DecodeArtifact(compileBytes(t, name, 0))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// compileBytes compiles the binary test spec with a seed; seeds give
// different artifacts with the same behaviour.
func compileBytes(t testing.TB, name string, seed uint64) []byte {
	t.Helper()
	spec := &compiler.Spec{Name: name, Description: "errors", Labels: []string{"error", "ok"}, Positive: "error"}
	spec.Options.Seed = seed
	for i := 0; i < 8; i++ {
		spec.Examples = append(spec.Examples,
			compiler.Example{Text: fmt.Sprintf("ERROR request %d failed with exception timeout", i), Label: "error"},
			compiler.Example{Text: fmt.Sprintf("INFO request %d completed in %dms", i, i*7), Label: "ok"})
	}
	res, err := compiler.Compile(context.Background(), spec, nil)
	if err != nil {
		t.Fatal(err)
	}
	return res.Artifact
}

func TestBatcherConcurrentCallersGetTheirOwnResults(t *testing.T) {
	env := openEnv(t)
	a := compileSpec(t, "err")
	p, err := runtime.NewProgram(env, a, runtime.ProgramOptions{Sessions: 2, MaxBatch: 64})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	set, _ := runtime.NewProgramSet(p)
	var mu sync.Mutex
	var sizes []int
	b, err := runtime.NewBatcher(set, runtime.BatcherConfig{MaxBatch: 64, MaxDelay: time.Millisecond, Workers: 2,
		OnBatch: func(n int, _ time.Duration) { mu.Lock(); sizes = append(sizes, n); mu.Unlock() }})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := 0; g < 64; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 20; i++ {
				text := fmt.Sprintf("INFO request %d completed in 5ms", g*100+i)
				want := "ok"
				if (g+i)%2 == 0 {
					text, want = fmt.Sprintf("ERROR request %d failed with exception timeout", g*100+i), "error"
				}
				res, err := b.Classify(context.Background(), []byte(text))
				if err != nil {
					errs <- err
					return
				}
				if got := res[0].Decisions[0].Label; got != want {
					errs <- fmt.Errorf("%q: got %s, want %s", text, got, want)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	mu.Lock()
	defer mu.Unlock()
	total, biggest := 0, 0
	for _, n := range sizes {
		total += n
		biggest = max(biggest, n)
	}
	if total != 64*20 {
		t.Errorf("batches scored %d records, want %d", total, 64*20)
	}
	if biggest > 64 {
		t.Errorf("a batch of %d exceeded max_batch 64", biggest)
	}
	if len(sizes) >= total {
		t.Errorf("%d batches for %d records: nothing was batched", len(sizes), total)
	}
}

// programSet loads one compiled program as a set, closed at the test's end.
func programSet(t testing.TB, opts runtime.ProgramOptions) *runtime.ProgramSet {
	t.Helper()
	env := openEnv(t)
	p, err := runtime.NewProgram(env, compileSpec(t, "err"), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	set, err := runtime.NewProgramSet(p)
	if err != nil {
		t.Fatal(err)
	}
	return set
}

func TestBatcherMaxDelayClosesPartialBatch(t *testing.T) {
	set := programSet(t, runtime.ProgramOptions{})
	sizes := make(chan int, 10)
	b, err := runtime.NewBatcher(set, runtime.BatcherConfig{MaxBatch: runtime.DefaultMaxBatch, MaxDelay: 20 * time.Millisecond, Workers: 1,
		OnBatch: func(n int, _ time.Duration) { sizes <- n }})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	// A lone record is answered although the batch never fills.
	if _, err := b.Classify(context.Background(), []byte("ERROR x failed")); err != nil {
		t.Fatal(err)
	}
	if n := <-sizes; n != 1 {
		t.Fatalf("batch of %d, want 1", n)
	}
}

func TestBatcherCancellationBackpressureAndClose(t *testing.T) {
	set := programSet(t, runtime.ProgramOptions{})
	block := make(chan struct{})
	b, _ := runtime.NewBatcher(set, runtime.BatcherConfig{MaxBatch: 1, MaxDelay: time.Millisecond, QueueSize: 1, Workers: 1,
		OnBatch: func(int, time.Duration) { <-block }})
	// The first call occupies the worker, which then blocks in OnBatch;
	// the collector holds one batch and the queue one request. A further
	// call can only wait: backpressure, ended by its context.
	go b.Classify(context.Background(), []byte("a"))
	go b.Classify(context.Background(), []byte("b"))
	go b.Classify(context.Background(), []byte("c"))
	go b.Classify(context.Background(), []byte("d"))
	time.Sleep(50 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	if _, err := b.Classify(ctx, []byte("e")); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("blocked Classify returned %v, want deadline exceeded", err)
	}
	close(block)
	b.Close()
	if _, err := b.Classify(context.Background(), []byte("f")); !errors.Is(err, runtime.ErrClosed) {
		t.Fatalf("Classify after Close returned %v, want ErrClosed", err)
	}
}

func TestSharedFeaturization(t *testing.T) {
	env := openEnv(t)
	a1, a2 := compileSpec(t, "one"), compileSpec(t, "two")
	p1, err := runtime.NewProgram(env, a1, runtime.ProgramOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p2, err := runtime.NewProgram(env, a2, runtime.ProgramOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer p1.Close()
	defer p2.Close()
	set, err := runtime.NewProgramSet(p1, p2)
	if err != nil {
		t.Fatal(err)
	}
	if n := set.Featurizations(); n != 1 {
		t.Fatalf("two programs with one featurizer config featurize %d times per record, want 1", n)
	}
	if _, err := runtime.NewProgramSet(p1, p1); err == nil {
		t.Fatal("duplicate program names accepted")
	}
}

func TestMissingProviderAndLibrary(t *testing.T) {
	env := openEnv(t)
	a := compileSpec(t, "err")
	_, err := runtime.NewProgram(env, a, runtime.ProgramOptions{Device: runtime.Device{Provider: "cuda", ID: 0}})
	if err == nil {
		t.Skip("this ONNX Runtime library provides CUDA and a GPU is present")
	}
	if !strings.Contains(err.Error(), "cuda:0") || !strings.Contains(err.Error(), env.Library()) {
		t.Fatalf("error %q should name the provider and the library %s", err, env.Library())
	}
	t.Setenv(runtime.EnvORTLib, "/nonexistent/libonnxruntime.so")
	_, err = runtime.ResolveORTLib()
	if !errors.Is(err, runtime.ErrORTMissing) || !strings.Contains(err.Error(), "make ort") {
		t.Fatalf("missing library error %v should say how to install it", err)
	}
	for _, bad := range []string{"gpu", "cuda:x", "cuda:-1"} {
		if _, err := runtime.ParseDevice(bad); err == nil {
			t.Errorf("device %q accepted", bad)
		}
	}
}

func BenchmarkInterpreter(b *testing.B) {
	set := programSet(b, runtime.ProgramOptions{Sessions: 2})
	bt, err := runtime.NewBatcher(set, runtime.BatcherConfig{})
	if err != nil {
		b.Fatal(err)
	}
	defer bt.Close()
	lines := make([][]byte, 4096)
	for i := range lines {
		lines[i] = []byte(fmt.Sprintf("2026-03-04T09:00:%02d.%03dZ INFO [orders-api] request %d completed path=/api/v1/orders/%d status=200 duration=%dms", i%60, i%1000, i, i*7, i%300))
	}
	b.ReportAllocs()
	b.ResetTimer()
	var next sync.Mutex
	off := 0
	b.SetParallelism(8)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			next.Lock()
			lo := off % (len(lines) - 64)
			off += 64
			next.Unlock()
			if _, err := bt.Classify(context.Background(), lines[lo:lo+64]...); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N*64)/b.Elapsed().Seconds(), "lines/s")
}
