package plugin_test

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"testing"
)

var (
	benchOnce   sync.Once
	benchChunks string
)

const benchRecords, benchPer = 100_000, 1000

// benchData writes 100 chunks of 1,000 records once per test binary.
func benchData(b testing.TB) string {
	benchOnce.Do(func() {
		benchChunks = filepath.Join(build.dir, "bench-chunks")
		writeChunks(b, benchChunks, 0, benchRecords, benchPer)
	})
	return benchChunks
}

// benchModes are the pipelines the benchmarks flush through.
var benchModes = []struct{ name, pipeline, cache string }{
	{"pass-through", "steps: []\n", ""},
	// The peer: the keyword rule a real-error program replaces, as Fluent
	// Bit's filter_grep runs it, through the same decode and write.
	{"regex", "steps:\n  - grep: {regex: '(?i)(error|fail|fatal|exception)'}\n", ""},
	{"filter", "steps:\n  - filter: {program: real-error, keep: [error]}\n", ""},
	{"tag", "steps:\n  - tag: {programs: [real-error]}\n", ""},
	{"filter-nocache", "steps:\n  - filter: {program: real-error, keep: [error]}\n", "-1"},
}

var flushdirReply = regexp.MustCompile(`^flushdir \d+ ok=(\d+) retry=0 error=0 ns=(\d+) cpu_ns=(\d+)$`)

// BenchmarkPlugin flushes 100,000 records through out_paw.so in the C
// harness, from 2 threads, to /dev/null: the same plugin with a
// pass-through pipeline, a real-error filter (which drops half of these
// records, so it writes less), a real-error tag step (every record
// classified and written, the like-for-like cost of inference), and the
// filter without the template cache.
func BenchmarkPlugin(b *testing.B) {
	chunks := benchData(b)
	baseline := map[string]float64{} // CPU µs per record of the modes run so far
	for _, mode := range benchModes {
		b.Run(mode.name, func(b *testing.B) {
			pipe := writePipeline(b, b.TempDir(), "p.yaml", mode.pipeline)
			h := startHarnessB(b)
			props := map[string]string{"pipeline": pipe, "programs_dir": build.programs, "output": "file:///dev/null"}
			if mode.cache != "" {
				props["template_cache"] = mode.cache
			}
			if got := h.instance(1, props); got != "init 1 1" {
				b.Fatalf("init: %s", got)
			}
			var ns, cpu int64
			for b.Loop() {
				got := h.do(fmt.Sprintf("flushdir 1 app %s 2", chunks))
				m := flushdirReply.FindStringSubmatch(got)
				if m == nil {
					b.Fatalf("flush: %s", got)
				}
				n, _ := strconv.ParseInt(m[2], 10, 64)
				c, _ := strconv.ParseInt(m[3], 10, 64)
				ns, cpu = ns+n, cpu+c
			}
			h.do("exit 1")
			rate, cpuPer := float64(b.N*benchRecords)/(float64(ns)/1e9), float64(cpu)/1e3/float64(b.N*benchRecords)
			b.ReportMetric(rate, "records/s")
			b.ReportMetric(cpuPer, "cpu-µs/record")
			// Absolute figures vary by ±20% on a shared machine; the ratios
			// to the baselines measured in the same run hold better.
			if base, ok := baseline["pass-through"]; ok {
				b.ReportMetric(cpuPer/base, "cpu-x-passthrough")
			}
			if base, ok := baseline["regex"]; ok {
				b.ReportMetric(cpuPer/base, "cpu-x-regex")
			}
			baseline[mode.name] = cpuPer
		})
	}
}

var rssReply = regexp.MustCompile(`^rss (\d+) (\d+) (\d+) (\d+)$`)

// TestPluginMemory reports the harness's resident memory before and after
// an instance with three programs starts, and after 100,000 records.
func TestPluginMemory(t *testing.T) {
	chunks := benchData(t)
	pipe := writePipeline(t, t.TempDir(), "p.yaml", "steps:\n  - tag: {programs: [real-error, security-event, noise]}\n")
	h := startHarness(t)
	// RSS, its peak, and its anonymous and file-backed parts, in KiB.
	status := func() [4]int {
		m := rssReply.FindStringSubmatch(h.do("rss"))
		if m == nil {
			t.Fatal("rss reply")
		}
		var v [4]int
		for i := range v {
			v[i], _ = strconv.Atoi(m[i+1])
		}
		return v
	}
	rss := func() (int, int) { v := status(); return v[0], v[1] }
	bare := status()
	before := bare[0]
	if got := h.instance(1, map[string]string{"pipeline": pipe, "programs_dir": build.programs, "output": "file:///dev/null"}); got != "init 1 1" {
		t.Fatalf("init: %s", got)
	}
	init := status()
	loaded := init[0]
	// Most of what loading adds is ONNX Runtime's code, file-backed pages
	// shared with every process that maps the library.
	t.Logf("after init: %d MiB anonymous (%d bare), %d MiB file-backed (%d bare)", init[2]>>10, bare[2]>>10, init[3]>>10, bare[3]>>10)
	if got := h.do(fmt.Sprintf("flushdir 1 app %s 2", chunks)); flushdirReply.FindStringSubmatch(got) == nil {
		t.Fatalf("flush: %s", got)
	}
	after, _ := rss()
	// 900,000 more, a flush of 100,000 at a time (the harness holds a
	// flushdir's chunks): a million in all. What a flush holds is per
	// chunk (pooled buffers, the template cache's bounded rows), so RSS
	// stays where the first 100,000 records took it.
	for i := 0; i < 9; i++ {
		if got := h.do(fmt.Sprintf("flushdir 1 app %s 2", chunks)); flushdirReply.FindStringSubmatch(got) == nil {
			t.Fatalf("flush: %s", got)
		}
	}
	million, peak := rss()
	h.do("exit 1")
	t.Logf("harness RSS: %d MiB with out_paw.so loaded, %d MiB with 3 programs, %d MiB after 100,000 records, %d MiB after 1,000,000 (peak %d MiB)",
		before>>10, loaded>>10, after>>10, million>>10, peak>>10)
	if peak > 1<<20 { // 1 GiB: an order of magnitude above what it takes
		t.Fatalf("peak RSS %d MiB", peak>>10)
	}
	if grew := million - after; grew > 32<<10 {
		t.Fatalf("RSS grew %d MiB from 100,000 to 1,000,000 records", grew>>10)
	}
}
