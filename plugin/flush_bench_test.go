package plugin_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/pawlogs/paw/plugin"
)

// BenchmarkFlush is BenchmarkPlugin in process, without the harness: what
// `go test -bench Flush -cpuprofile` can see.
func BenchmarkFlush(b *testing.B) {
	paths, _ := filepath.Glob(filepath.Join(benchData(b), "chunk-*"))
	chunks := make([][]byte, len(paths))
	for i, p := range paths {
		var err error
		if chunks[i], err = os.ReadFile(p); err != nil {
			b.Fatal(err)
		}
	}
	for _, mode := range benchModes {
		b.Run(mode.name, func(b *testing.B) {
			cfg, err := plugin.ParseConfig(func(k string) string {
				return map[string]string{"pipeline": writePipeline(b, b.TempDir(), "p.yaml", mode.pipeline), "programs_dir": build.programs,
					"output": "file:///dev/null", "template_cache": mode.cache}[k]
			})
			if err != nil {
				b.Fatal(err)
			}
			in, err := plugin.New(cfg, plugin.Options{Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				b.Fatal(err)
			}
			defer in.Close()
			var next atomic.Int64
			b.SetParallelism(1)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					c := chunks[int(next.Add(1))%len(chunks)]
					if st := in.Flush(context.Background(), "app", c); st != plugin.StatusOK {
						b.Errorf("flush: %v", st)
					}
				}
			})
			b.ReportMetric(float64(b.N*benchPer)/b.Elapsed().Seconds(), "records/s")
		})
	}
}
