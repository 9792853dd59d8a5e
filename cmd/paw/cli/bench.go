package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	goruntime "runtime"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pawlogs/paw/runtime"
)

// BenchResult is what paw bench measures.
type BenchResult struct {
	LinesPerSec   float64 `json:"lines_per_sec"`
	BatchP50Ms    float64 `json:"batch_p50_ms"`
	BatchP99Ms    float64 `json:"batch_p99_ms"`
	AllocsPerLine float64 `json:"allocs_per_line"`
	Threads       int     `json:"threads"`
	Lines         int64   `json:"lines"`
	Batches       int     `json:"batches"`
	MeanBatch     float64 `json:"mean_batch"`
	MeanLineBytes float64 `json:"mean_line_bytes"`
	Seconds       float64 `json:"seconds"`
	// TemplateHitPct is the share of records answered by the template
	// cache (0 with --template-cache -1).
	TemplateHitPct float64 `json:"template_hit_pct"`
}

func runBench(e *env, args []string) error {
	fs := newFlags(e, "bench")
	rf := addRuntimeFlags(fs)
	data := fs.String("data", "", "lines to score: JSONL (text field) or plain text (default: generated 100-200 byte log lines)")
	textField := fs.String("text-field", "text", "JSON field holding the text, for JSONL data")
	duration := fs.Duration("duration", 5*time.Second, "how long to measure")
	chunk := fs.Int("chunk", 64, "records per Classify call")
	clients := fs.Int("clients", 0, "concurrent submitting goroutines (default 8 x workers)")
	asJSON := fs.Bool("json", false, "print one JSON object")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("want one program")
	}
	lines, err := benchLines(*data, *textField)
	if err != nil {
		return err
	}
	var (
		mu      sync.Mutex
		batches []time.Duration
	)
	opts, err := rf.options()
	if err != nil {
		return err
	}
	opts.Batcher.OnBatch = func(n int, d time.Duration) {
		mu.Lock()
		batches = append(batches, d)
		mu.Unlock()
	}
	var stats runtime.BatchStats
	opts.Batcher.Stats = &stats
	p, b, closeAll, err := rf.loadBatcher(pos[0], opts)
	if err != nil {
		return err
	}
	defer closeAll()
	nc := *clients
	if nc <= 0 {
		nc = 8 * opts.Batcher.Workers
	}
	res, err := bench(e.ctx, b, lines, *chunk, nc, *duration)
	if err != nil {
		return err
	}
	mu.Lock()
	sort.Slice(batches, func(i, j int) bool { return batches[i] < batches[j] })
	res.Batches = len(batches)
	if len(batches) > 0 {
		res.BatchP50Ms = ms(batches[len(batches)*50/100])
		res.BatchP99Ms = ms(batches[min(len(batches)-1, len(batches)*99/100)])
		res.MeanBatch = float64(res.Lines) / float64(len(batches))
	}
	mu.Unlock()
	res.Threads = opts.Batcher.Workers
	if c := stats.Counts(); c.Lookups > 0 {
		res.TemplateHitPct = 100 * float64(c.Hits) / float64(c.Lookups)
	}
	var total int
	for _, l := range lines {
		total += len(l)
	}
	res.MeanLineBytes = float64(total) / float64(len(lines))
	if *asJSON {
		return writeJSON(e.stdout, res)
	}
	fmt.Fprintf(e.stdout, "program      %s (%s)\n", p.Name(), runtime.ShortID(p.ID))
	fmt.Fprintf(e.stdout, "lines/s      %.0f (%d lines in %.2fs, mean %.0f bytes)\n", res.LinesPerSec, res.Lines, res.Seconds, res.MeanLineBytes)
	fmt.Fprintf(e.stdout, "batch p50    %.3f ms\nbatch p99    %.3f ms (%d batches, mean %.0f records)\n", res.BatchP50Ms, res.BatchP99Ms, res.Batches, res.MeanBatch)
	fmt.Fprintf(e.stdout, "allocs/line  %.2f\nthreads      %d (device %s, max_batch %d, max_delay %s)\n", res.AllocsPerLine, res.Threads, opts.Program.Device, opts.Batcher.MaxBatch, rf.maxDelay)
	fmt.Fprintf(e.stdout, "cache hits   %.1f%% of records (template cache; --template-cache -1 turns it off)\n", res.TemplateHitPct)
	return nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// bench drives the batcher from nc goroutines for d and counts lines.
func bench(ctx context.Context, b *runtime.Batcher, lines [][]byte, chunk, nc int, d time.Duration) (BenchResult, error) {
	var done atomic.Int64
	var firstErr atomic.Value
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var ms0, ms1 goruntime.MemStats
	goruntime.ReadMemStats(&ms0)
	start := time.Now()
	var wg sync.WaitGroup
	for c := 0; c < nc; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			off := c * chunk
			for ctx.Err() == nil {
				lo := off % len(lines)
				hi := min(lo+chunk, len(lines))
				if _, err := b.Classify(ctx, lines[lo:hi]...); err != nil {
					if ctx.Err() == nil {
						firstErr.CompareAndSwap(nil, err)
						cancel()
					}
					return
				}
				done.Add(int64(hi - lo))
				off = hi
			}
		}()
	}
	wg.Wait()
	took := time.Since(start)
	goruntime.ReadMemStats(&ms1)
	if err, ok := firstErr.Load().(error); ok {
		return BenchResult{}, err
	}
	n := done.Load()
	r := BenchResult{Lines: n, Seconds: took.Seconds()}
	if n > 0 {
		r.LinesPerSec = float64(n) / took.Seconds()
		r.AllocsPerLine = float64(ms1.Mallocs-ms0.Mallocs) / float64(n)
	}
	return r, nil
}

// benchLines loads --data, or generates realistic 100-200 byte log lines.
func benchLines(path, textField string) ([][]byte, error) {
	if path == "" {
		return GenerateLogLines(20000, 1), nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open data: %w", err)
	}
	defer f.Close()
	var lines [][]byte
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), maxDataLine)
	for sc.Scan() {
		b := append([]byte(nil), sc.Bytes()...)
		var obj map[string]any
		if json.Unmarshal(b, &obj) == nil {
			if s, ok := obj[textField].(string); ok {
				b = []byte(s)
			}
		}
		lines = append(lines, b)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read data: %w", err)
	}
	if len(lines) == 0 {
		return nil, fmt.Errorf("%s holds no lines", path)
	}
	return lines, nil
}

// GenerateLogLines makes n synthetic application log lines of about 100-200
// bytes, seeded, for benchmarks that must not depend on ../shared.
func GenerateLogLines(n int, seed uint64) [][]byte {
	rng := rand.New(rand.NewPCG(seed, 99))
	services := []string{"payment-svc", "orders-api", "inventory", "auth", "gateway", "scheduler"}
	levels := []string{"INFO", "INFO", "INFO", "DEBUG", "WARN", "ERROR"}
	msgs := []string{
		"request completed path=/api/v1/orders/%d status=200 duration=%dms user=%d",
		"charge failed for order %d: upstream timeout after %ds, retry %d scheduled",
		"cache miss for key session:%d, loading from store shard %d took %dms",
		"connection to 10.0.%d.%d:5432 refused, pool exhausted after %d attempts",
		"job nightly-export-%d finished, %d rows written in %ds",
		"user %d logged in from 198.51.100.%d via sso provider okta-%d",
	}
	out := make([][]byte, n)
	for i := range out {
		ts := fmt.Sprintf("2026-03-%02dT%02d:%02d:%02d.%03dZ", 1+rng.IntN(28), rng.IntN(24), rng.IntN(60), rng.IntN(60), rng.IntN(1000))
		msg := fmt.Sprintf(msgs[rng.IntN(len(msgs))], rng.IntN(100000), rng.IntN(255), rng.IntN(1000))
		out[i] = []byte(fmt.Sprintf("%s %s [%s] trace=%016x %s", ts, levels[rng.IntN(len(levels))], services[rng.IntN(len(services))], rng.Uint64(), msg))
	}
	return out
}
