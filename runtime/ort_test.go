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

	"github.com/pawlogs/paw/runtime"
	"github.com/pawlogs/paw/runtime/graph"
	"github.com/pawlogs/paw/runtime/runtimetest"
)

// openEnv loads ONNX Runtime. It fails rather than skips: make test
// installs the library first (make ort), so a missing one is a real defect.
func openEnv(t testing.TB) *runtime.Env { return runtimetest.Env(t) }

func TestONNXMatchesReference(t *testing.T) {
	env := openEnv(t)
	rng := rand.New(rand.NewPCG(3, 4))
	cfg := runtime.DefaultFeaturizerConfig()
	cfg.BucketBits = 10
	for _, shape := range []struct{ dim, labels int }{{8, 2}, {16, 4}, {3, 7}} {
		t.Run(fmt.Sprintf("dim%d_labels%d", shape.dim, shape.labels), func(t *testing.T) {
			// Fewer labels than dimensions: a folded table, as the compiler writes it.
			w := &graph.Hashnet{Rows: cfg.Buckets(), Width: shape.dim, Bias: randFloats(rng, shape.labels)}
			if shape.labels < shape.dim {
				w.Width = shape.labels
			} else {
				w.Head = randFloats(rng, shape.dim*shape.labels)
			}
			w.Table = randFloats(rng, w.Rows*w.Width)
			clear(w.Table[:w.Width]) // the padding row stays zero
			labels := len(w.Bias)
			p := newProgram(t, env, w, shape.dim, cfg)
			defer p.Close()
			if err := p.RunEmbeddings(make([]float32, shape.dim), 1, make([]float32, labels)); err == nil || !strings.Contains(err.Error(), "run it on features") {
				t.Fatalf("a hashnet-v1 program ran on embeddings: %v", err)
			}
			const n = runtime.DefaultMaxBatch
			feats := make([]*runtime.Features, n)
			for i := range feats {
				f := runtime.Features{IDs: make([]int64, cfg.MaxFeatures), Weights: make([]float32, cfg.MaxFeatures)}
				f.Len = 1 + rng.IntN(cfg.MaxFeatures)
				for j := 0; j < f.Len; j++ {
					f.IDs[j] = 1 + rng.Int64N(int64(w.Rows-1))
					f.Weights[j] = rng.Float32()
				}
				feats[i] = &f
			}
			out := make([]float32, n*labels)
			if err := p.Run(feats, out); err != nil {
				t.Fatal(err)
			}
			ref := make([]float32, labels)
			worst := 0.0
			for i, f := range feats {
				w.Forward(f.IDs[:f.Len], f.Weights[:f.Len], ref)
				for k := range ref {
					worst = math.Max(worst, math.Abs(float64(ref[k]-out[i*labels+k])))
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

func newProgram(t testing.TB, env *runtime.Env, w *graph.Hashnet, dim int, cfg runtime.FeaturizerConfig) *runtime.Program {
	t.Helper()
	a := runtimetest.Hashnet(t, w, nil, dim, cfg)
	p, err := runtime.NewProgram(env, a, runtime.ProgramOptions{Sessions: 2})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// errorsProgram is the runtime tests' usual program (runtimetest.Errors),
// built without the compiler.
func errorsProgram(t testing.TB, name string) *runtime.Artifact {
	t.Helper()
	return runtimetest.Program(t, runtimetest.Errors(name, 0))
}

// errorsArtifact is errorsProgram's bytes; seeds give different artifacts
// with the same behaviour.
func errorsArtifact(t testing.TB, name string, seed uint64) []byte {
	t.Helper()
	return runtimetest.Build(t, runtimetest.Errors(name, seed))
}

func TestBatcherConcurrentCallersGetTheirOwnResults(t *testing.T) {
	env := openEnv(t)
	a := errorsProgram(t, "err")
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
	p, err := runtime.NewProgram(env, errorsProgram(t, "err"), opts)
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

// TestBatcherNegativeMaxDelayNeverWaits: a negative MaxDelay stays in
// effect (it is not a zero value to default), and a call's partial last
// batch is answered.
func TestBatcherNegativeMaxDelayNeverWaits(t *testing.T) {
	set := programSet(t, runtime.ProgramOptions{})
	b, err := runtime.NewBatcher(set, runtime.BatcherConfig{MaxBatch: 8, MaxDelay: -1, Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if d := b.Config().MaxDelay; d >= 0 {
		t.Fatalf("MaxDelay in effect %v, want the negative given", d)
	}
	texts := make([][]byte, 13) // a full batch of 8 and a partial one of 5
	for i := range texts {
		texts[i] = fmt.Appendf(nil, "ERROR request %d failed", i)
	}
	done := make(chan error, 1)
	go func() {
		_, err := b.Classify(context.Background(), texts...)
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(time.Minute): // a failure, not a measurement
		t.Fatal("the partial batch waited")
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
	a1, a2 := errorsProgram(t, "one"), errorsProgram(t, "two")
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
	a := errorsProgram(t, "err")
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

// BenchmarkInterpreter measures Classify throughput, featurization
// included, with and without the template cache, on one synthetic
// template (the cache's best case) and on the Loghub sample lines in
// ../shared (skipped when absent).
func BenchmarkInterpreter(b *testing.B) {
	data := map[string][][]byte{"one-template": benchTexts(4096)}
	if lines := loghubLines(b); len(lines) > 0 {
		data["loghub"] = lines
	}
	for _, name := range []string{"one-template", "loghub"} {
		lines, ok := data[name]
		if !ok {
			continue
		}
		for _, cache := range []int{-1, 0} {
			b.Run(fmt.Sprintf("%s/cache=%v", name, cache == 0), func(b *testing.B) {
				benchClassify(b, programSet(b, runtime.ProgramOptions{Sessions: 2}), lines, cache)
			})
		}
	}
}

func benchClassify(b *testing.B, set *runtime.ProgramSet, lines [][]byte, cache int) {
	var st runtime.BatchStats
	bt, err := runtime.NewBatcher(set, runtime.BatcherConfig{TemplateCache: cache, Stats: &st})
	if err != nil {
		b.Fatal(err)
	}
	defer bt.Close()
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
	c := st.Counts()
	if c.Lookups > 0 {
		b.ReportMetric(100*float64(c.Hits)/float64(c.Lookups), "%hits")
	}
	b.ReportMetric(float64(c.InferenceP99)/1e6, "batch-p99-ms")
}

// BenchmarkPrograms is the cost of tagging with 1, 3 and 10 programs in
// one pipeline, without the template cache (unique lines): programs with
// one featurizer config share the scan and the features, and each adds
// its own inference.
func BenchmarkPrograms(b *testing.B) {
	env := openEnv(b)
	lines := loghubLines(b)
	if len(lines) < 1024 {
		lines = benchTexts(4096)
	}
	var progs []*runtime.Program
	for i := 0; i < 10; i++ {
		a, err := runtime.DecodeArtifact(errorsArtifact(b, fmt.Sprintf("p%d", i), uint64(i)))
		if err != nil {
			b.Fatal(err)
		}
		p, err := runtime.NewProgram(env, a, runtime.ProgramOptions{Sessions: 2})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { p.Close() })
		progs = append(progs, p)
	}
	for _, n := range []int{1, 3, 10} {
		b.Run(fmt.Sprintf("programs=%d", n), func(b *testing.B) {
			set, err := runtime.NewProgramSet(progs[:n]...)
			if err != nil {
				b.Fatal(err)
			}
			benchClassify(b, set, lines, -1)
		})
	}
}

// loghubLines reads the Loghub sample logs of ../shared, if present.
func loghubLines(t testing.TB) [][]byte { return runtimetest.LoghubLines("../../shared") }

func TestTemplateCacheGivesTheModelsResults(t *testing.T) {
	env := openEnv(t)
	var progs []*runtime.Program
	other := runtimetest.Errors("c", 3) // another featurizer: a second group
	other.Featurizer = runtime.DefaultFeaturizerConfig()
	other.Featurizer.WordNgrams, other.Featurizer.BucketBits = 1, 12
	// One with keywords, which read each record's words beside its model.
	described := runtimetest.Errors("d", 4)
	described.Keywords = map[string][]string{"error": {"fail", "disk", "time out"}, "ok": {"login"}}
	described.KeywordRates = map[string]runtime.KeywordRates{"error": {Hit: 0.7, False: 0.1}, "ok": {Hit: 0.3, False: 0.05}}
	for _, spec := range []runtimetest.Spec{runtimetest.Errors("a", 1), runtimetest.Errors("b", 2), other, described} {
		progs = append(progs, loadProgram(t, env, runtimetest.Build(t, spec)))
	}
	set, err := runtime.NewProgramSet(progs...)
	if err != nil {
		t.Fatal(err)
	}
	if set.Featurizations() != 2 {
		t.Fatalf("want two featurizer groups, got %d", set.Featurizations())
	}
	rng := rand.New(rand.NewPCG(5, 6))
	words := []string{"ERROR", "INFO", "request", "failed", "completed", "timeout", "disk", "user", "login"}
	var texts [][]byte
	for i := 0; i < 5000; i++ {
		// Few templates (variables vary), plus unique word salads.
		if i%4 == 3 {
			var b strings.Builder
			for j := 0; j < 3+rng.IntN(8); j++ {
				fmt.Fprintf(&b, "%s%d ", words[rng.IntN(len(words))], rng.IntN(3))
			}
			texts = append(texts, []byte(b.String()))
			continue
		}
		texts = append(texts, []byte(fmt.Sprintf("%s request %d %s in %d ms from 10.0.%d.%d", words[i%2], rng.IntN(1e6), words[2+i%5], rng.IntN(999), rng.IntN(255), rng.IntN(255))))
	}
	// The Loghub lines, if present, and again with what the key memo is
	// blind to rewritten.
	if lines := loghubLines(t); len(lines) > 0 {
		texts = append(append(texts, lines...), rewrite(lines, 1)...)
		texts = texts[:len(texts)/100*100]
	}
	classify := func(cache int) ([]runtime.Result, runtime.BatchCounts) {
		var st runtime.BatchStats
		b, err := runtime.NewBatcher(set, runtime.BatcherConfig{TemplateCache: cache, Stats: &st, Workers: 2})
		if err != nil {
			t.Fatal(err)
		}
		var out []runtime.Result
		for lo := 0; lo < len(texts); lo += 100 {
			rs, err := b.Classify(context.Background(), texts[lo:lo+100]...)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, rs...)
		}
		// A worker adds a batch to the stats after its callers have their
		// results: read them once the workers have stopped.
		b.Close()
		return out, st.Counts()
	}
	plain, off := classify(-1)
	cached, on := classify(0)
	for i := range plain {
		for pi := range plain[i].Decisions {
			a, b := plain[i].Decisions[pi].Probs, cached[i].Decisions[pi].Probs
			for k := range a {
				if math.Float32bits(a[k]) != math.Float32bits(b[k]) {
					t.Fatalf("record %d program %d: cached %v, model %v", i, pi, b, a)
				}
			}
		}
	}
	// The keywords were read: where a program with the same model and no
	// keywords decides otherwise, a novel record with a keyword.
	moved := 0
	for i := range plain {
		a, d := plain[i].Decisions[0], plain[i].Decisions[3]
		if d.Novelty > 0 && a.Probs[0] != d.Probs[0] {
			moved++
		}
	}
	if moved == 0 {
		t.Fatal("the keywords moved no record's scores")
	}
	if off.Hits != 0 || on.Hits == 0 || on.Records != int64(len(texts)) || on.Lookups != 2*int64(len(texts)) {
		t.Fatalf("counts without cache %+v, with %+v", off, on)
	}
	t.Logf("template cache: %d of %d lookups hit (%.0f%%), results identical", on.Hits, on.Lookups, 100*float64(on.Hits)/float64(on.Lookups))
}

// BenchmarkProgramRun is ONNX Runtime alone: one session, pre-featurized
// batches of DefaultMaxBatch lines.
func BenchmarkProgramRun(b *testing.B) {
	env := openEnv(b)
	p, err := runtime.NewProgram(env, errorsProgram(b, "errs"), runtime.ProgramOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	lines := benchTexts(runtime.DefaultMaxBatch)
	feats := make([]*runtime.Features, len(lines))
	for i, l := range lines {
		ft := p.Featurizer().NewFeatures()
		feats[i] = &ft
		p.Featurizer().Featurize(l, feats[i])
	}
	out := make([]float32, len(lines)*len(p.Labels()))
	b.ResetTimer()
	for b.Loop() {
		if err := p.Run(feats, out); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(lines))/b.Elapsed().Seconds(), "lines/s")
}

func benchTexts(n int) [][]byte { return runtimetest.Lines(n) }

// featurizeAll featurizes each line into features of its own.
func featurizeAll(f *runtime.Featurizer, lines [][]byte) []*runtime.Features {
	feats := make([]*runtime.Features, len(lines))
	for i, l := range lines {
		ft := f.NewFeatures()
		f.Featurize(l, &ft)
		feats[i] = &ft
	}
	return feats
}

// TestCompactTableScoresBitIdentical runs programs over their compact
// tables and over the artifacts' own graphs, folded (fewer labels than
// dimensions) and not, and wants the same bits for every probability of
// every line (the Loghub samples of ../shared when present).
func TestCompactTableScoresBitIdentical(t *testing.T) {
	env := openEnv(t)
	lines := append(benchTexts(512), loghubLines(t)...)
	for _, c := range []struct {
		name string
		spec runtimetest.Spec
	}{{"folded", runtimetest.Errors("err", 1)}, {"unfolded", func() runtimetest.Spec {
		s := runtimetest.Errors("err", 2)
		s.Dim, s.Featurizer = 2, runtime.DefaultFeaturizerConfig()
		s.Featurizer.BucketBits = 12
		return s
	}()}} {
		t.Run(c.name, func(t *testing.T) {
			art := runtimetest.Build(t, c.spec)
			compact := loadProgram(t, env, art)
			dense := loadProgram(t, env, art, runtime.WithDenseTable(runtime.ProgramOptions{}))
			f := compact.Featurizer()
			k := len(compact.Labels())
			for lo := 0; lo < len(lines); lo += runtime.DefaultMaxBatch {
				batch := lines[lo:min(lo+runtime.DefaultMaxBatch, len(lines))]
				feats := featurizeAll(f, batch)
				got, want := make([]float32, len(batch)*k), make([]float32, len(batch)*k)
				if err := compact.Run(feats, got); err != nil {
					t.Fatal(err)
				}
				if err := dense.Run(feats, want); err != nil {
					t.Fatal(err)
				}
				for i := range got {
					if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
						t.Fatalf("%q: label %d scores %v compact, %v dense", batch[i/k], i%k, got[i], want[i])
					}
				}
			}
		})
	}
}

// TestBatchOfOneScoresAsInABatch scores every line alone and in batches,
// folded and not, and wants the same bits: ONNX Runtime runs a batch of
// one with other kernels, and a record must not score by whether it had
// company (a live stream's quiet moments, a template cache's lone miss).
func TestBatchOfOneScoresAsInABatch(t *testing.T) {
	env := openEnv(t)
	rng := rand.New(rand.NewPCG(8, 8))
	words := []string{"ERROR", "INFO", "request", "failed", "completed", "timeout", "disk", "user", "login", "node7", "0x1f"}
	lines := loghubLines(t)
	for range 2000 {
		var b []byte
		for range 1 + rng.IntN(40) {
			b = fmt.Appendf(b, "%s%d ", words[rng.IntN(len(words))], rng.IntN(1000))
		}
		lines = append(lines, b)
	}
	unfolded := runtimetest.Errors("err", 2)
	unfolded.Dim, unfolded.Featurizer = 2, runtime.DefaultFeaturizerConfig()
	unfolded.Featurizer.BucketBits = 12
	for name, spec := range map[string]runtimetest.Spec{"folded": runtimetest.Errors("err", 1), "unfolded": unfolded} {
		t.Run(name, func(t *testing.T) {
			p := loadProgram(t, env, runtimetest.Build(t, spec))
			k := len(p.Labels())
			together, alone := runBatches(t, p, lines), make([]float32, k)
			ft := p.Featurizer().NewFeatures()
			for i, l := range lines {
				p.Featurizer().Featurize(l, &ft)
				if err := p.Run([]*runtime.Features{&ft}, alone); err != nil {
					t.Fatal(err)
				}
				for j := range alone {
					if math.Float32bits(alone[j]) != math.Float32bits(together[i*k+j]) {
						t.Fatalf("%q: label %d scores %v alone, %v in a batch", l, j, alone[j], together[i*k+j])
					}
				}
			}
		})
	}
}

// loadProgram decodes and loads an artifact, closed with the test.
func loadProgram(t testing.TB, env *runtime.Env, artifact []byte, opts ...runtime.ProgramOptions) *runtime.Program {
	t.Helper()
	a, err := runtime.DecodeArtifact(artifact)
	if err != nil {
		t.Fatal(err)
	}
	var o runtime.ProgramOptions
	if len(opts) > 0 {
		o = opts[0]
	}
	p, err := runtime.NewProgram(env, a, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// TestFusedGroupScoresBitIdentical runs programs of 5 and 2 labels
// through a batcher, which fuses programs that
// share a featurizer into one graph, and wants each probability's bits
// as each program alone gives them, on every line (those of ../shared
// too when present).
func TestFusedGroupScoresBitIdentical(t *testing.T) {
	env := openEnv(t)
	var progs []*runtime.Program
	load := func(artifact []byte) { progs = append(progs, loadProgram(t, env, artifact)) }
	five := runtimetest.Spec{Name: "five", Labels: []string{"auth", "disk", "net", "ok", "noise"}}
	for i, l := range []string{"login failed for user %d", "disk %d is full", "connection %d reset by peer", "request %d completed", "heartbeat %d"} {
		for j := 0; j < 4; j++ {
			five.Examples = append(five.Examples, runtimetest.Example{Text: fmt.Sprintf(l, i*10+j), Label: five.Labels[i]})
		}
	}
	load(runtimetest.Build(t, five))
	for i := 0; i < 3; i++ {
		load(errorsArtifact(t, fmt.Sprintf("seed%d", i), uint64(i)))
	}
	bt := runtimetest.Batcher(t, runtime.BatcherConfig{TemplateCache: -1}, progs...)
	if !bt.Fused() {
		t.Fatal("the programs were not fused")
	}
	lines := append(benchTexts(512), loghubLines(t)...)
	results, err := bt.Classify(context.Background(), lines...)
	if err != nil {
		t.Fatal(err)
	}
	for pi, p := range progs {
		k := len(p.Labels())
		want := runBatches(t, p, lines)
		for i, r := range results {
			got := r.Decisions[pi].Probs
			for j := range k {
				if math.Float32bits(got[j]) != math.Float32bits(want[i*k+j]) {
					t.Fatalf("%s on %q: label %d %v fused, %v alone", p.Name(), lines[i], j, got[j], want[i*k+j])
				}
			}
		}
	}
}

// runBatches scores lines with p alone, in batches of DefaultMaxBatch: k
// probabilities a line.
func runBatches(t *testing.T, p *runtime.Program, lines [][]byte) []float32 {
	t.Helper()
	k := len(p.Labels())
	probs := make([]float32, len(lines)*k)
	for lo := 0; lo < len(lines); lo += runtime.DefaultMaxBatch {
		hi := min(lo+runtime.DefaultMaxBatch, len(lines))
		if err := p.Run(featurizeAll(p.Featurizer(), lines[lo:hi]), probs[lo*k:hi*k]); err != nil {
			t.Fatal(err)
		}
	}
	return probs
}

// TestEnvStaysLoaded: closing an Env leaves ONNX Runtime loaded for the
// process's life (unloading it could deadlock at exit), so a second
// library is refused and the first is reused.
func TestEnvStaysLoaded(t *testing.T) {
	env, err := runtime.OpenEnv("")
	if err != nil {
		t.Fatal(err)
	}
	lib := env.Library()
	env.Close()
	if _, err := runtime.OpenEnv("/bin/true"); err == nil || !strings.Contains(err.Error(), "already loaded from "+lib) {
		t.Fatalf("another library after Close: %v", err)
	}
	again, err := runtime.OpenEnv("")
	if err != nil || again.Library() != lib {
		t.Fatalf("reopen: %v", err)
	}
	again.Close()
}
