package plugin_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pawlogs/paw/internal/devbroker"
	"github.com/pawlogs/paw/internal/testkit"
	"github.com/pawlogs/paw/runtime"
)

// readTopics reads every record of the topics from the start until none
// arrives for quiet, with franz-go.
func readTopics(t *testing.T, addr string, quiet time.Duration, topics ...string) map[string][][]byte {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(topics...), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	out := map[string][][]byte{}
	last := time.Now()
	for time.Since(last) < quiet {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		fs := cl.PollFetches(ctx)
		cancel()
		fs.EachRecord(func(r *kgo.Record) {
			out[r.Topic] = append(out[r.Topic], r.Value)
			last = time.Now()
		})
	}
	return out
}

// TestKafkaOutputRetries: the broker goes away, the flush answers
// FLB_RETRY, the broker comes back, the same chunk succeeds; routed labels
// choose the topic.
func TestKafkaOutputRetries(t *testing.T) {
	const per = 300
	dir := t.TempDir()
	data := t.TempDir()
	pipe := writePipeline(t, dir, "p.yaml", filterPipeline)
	writeChunks(t, filepath.Join(dir, "one"), 0, per, per)
	writeChunks(t, filepath.Join(dir, "two"), per, 2*per, per)
	topics := []string{"app-logs:2", "security-events:1"}
	b, err := devbroker.Start(devbroker.Config{DataDir: data, Topics: topics})
	if err != nil {
		t.Fatal(err)
	}
	addr := b.Addr()
	h := startHarness(t)
	if got := h.instance(1, map[string]string{"pipeline": pipe, "programs_dir": build.programs, "output": "kafka://" + addr + "/app-logs", "alias": "to-kafka"}); got != "init 1 1" {
		t.Fatalf("init: %s\n%s", got, h.stderr.String())
	}
	chunk := func(name string) string {
		files, _ := filepath.Glob(filepath.Join(dir, name, "chunk-*"))
		return files[0]
	}
	if got := h.do("flush 1 app " + chunk("one")); got != "flush 1 1" {
		t.Fatalf("first chunk: %s", got)
	}
	b.Close()
	start := time.Now()
	if got := h.do("flush 1 app " + chunk("two")); got != "flush 1 2" {
		t.Fatalf("with the broker down: %s, want FLB_RETRY (2)", got)
	}
	t.Logf("FLB_RETRY after %v with the broker down", time.Since(start).Round(time.Millisecond))
	b2, err := devbroker.Start(devbroker.Config{Listen: addr, DataDir: data})
	if err != nil {
		t.Fatal(err)
	}
	defer b2.Close()
	if got := h.do("flush 1 app " + chunk("two")); got != "flush 1 1" {
		t.Fatalf("after the broker came back: %s\n%s", got, h.stderr.String())
	}
	h.do("exit 1")
	// Counted once per chunk delivered, whatever the retries; every line
	// names the instance; the delivery failure is one short line.
	stopped := h.stderrContains(`msg="out_paw stopped"`) && h.stderrContains(`chunks=2 records=600`) && h.stderrContains(`instance=to-kafka after=`)
	logs := h.stderr.String()
	if !stopped || !strings.Contains(logs, "retries=1") {
		t.Errorf("totals or instance missing from the logs:\n%s", logs)
	}
	for _, line := range strings.Split(logs, "\n") {
		if strings.Contains(line, "chunk will be retried") && (len(line) > 1000 || !strings.Contains(line, "instance=to-kafka") || !strings.Contains(line, "records not delivered; first error:")) {
			t.Errorf("retry log line (%d bytes): %.300s", len(line), line)
		}
	}

	texts := make([][]byte, 2*per)
	for seq := range texts {
		texts[seq] = []byte(testRecord(seq)["log"].(string))
	}
	want := oracle(t, pipe, texts)
	got := readTopics(t, addr, time.Second, "app-logs", "security-events")
	count := make([]int, 2*per)
	for topic, vals := range got {
		for _, v := range vals {
			var l outputLine
			if err := json.Unmarshal(v, &l); err != nil {
				t.Fatal(err)
			}
			seq := seqOf(t, l)
			if o := want[seq]; !o.Keep || o.Destination != topic {
				t.Fatalf("record %d in %s; pipeline says keep=%v destination %q", seq, topic, o.Keep, o.Destination)
			}
			count[seq]++
		}
	}
	dups := 0
	for seq, o := range want {
		switch {
		case o.Keep && count[seq] == 0:
			t.Fatalf("record %d lost", seq)
		case count[seq] > 1 && seq < per:
			t.Fatalf("record %d of the first chunk, which was not retried, arrived %d times", seq, count[seq])
		case count[seq] > 1:
			dups += count[seq] - 1
		}
	}
	t.Logf("app-logs %d, security-events %d records; %d duplicates, all from the retried chunk", len(got["app-logs"]), len(got["security-events"]), dups)
}

func TestHotReloadInPlugin(t *testing.T) {
	dir := t.TempDir()
	progs := filepath.Join(dir, "programs")
	if err := os.MkdirAll(progs, 0o755); err != nil {
		t.Fatal(err)
	}
	copyFile(t, filepath.Join(build.programs, "noise.paw"), filepath.Join(progs, "noise.paw"))
	pipe := writePipeline(t, dir, "p.yaml", tagPipeline)
	writeChunks(t, filepath.Join(dir, "c"), 0, 400, 100)
	out := filepath.Join(dir, "out.jsonl")
	h := startHarness(t)
	if got := h.instance(1, map[string]string{"pipeline": pipe, "programs_dir": progs, "output": "file://" + out}); got != "init 1 1" {
		t.Fatalf("init: %s", got)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "c", "chunk-*"))
	h.do("flush 1 app " + files[0])

	// A broken file is refused; a recompiled program (another seed) is
	// swapped in. Both are published by rename, as paw compile does.
	oldID := runtime.ArtifactID(testkit.ReadFile(t, filepath.Join(progs, "noise.paw")))
	publish(t, progs, "noise.paw", []byte("not a program"))
	if !h.stderrContains("program reload rejected") {
		t.Fatalf("a broken program was not reported:\n%s", h.stderr.String())
	}
	h.do("flush 1 app " + files[1])
	next := recompile(t, "../configs/filters/noise.yaml", 99)
	publish(t, progs, "noise.paw", next)
	if !h.stderrContains("program reloaded") {
		t.Fatalf("no reload:\n%s", h.stderr.String())
	}
	h.do("flush 1 app " + files[2])
	h.do("flush 1 app " + files[3])
	h.do("exit 1")
	ids := map[string]int{}
	for _, l := range readLines(t, out) {
		ids[l.Paw["noise"].ID]++
	}
	newID := runtime.ArtifactID(next)
	if ids[oldID] != 200 || ids[newID] != 200 {
		t.Fatalf("records by program ID: %v; want 200 with %s then 200 with %s", ids, oldID[:12], newID[:12])
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	if err := os.WriteFile(to, testkit.ReadFile(t, from), 0o644); err != nil {
		t.Fatal(err)
	}
}

func publish(t *testing.T, dir, name string, data []byte) {
	t.Helper()
	tmp := filepath.Join(dir, "."+name+".tmp")
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		t.Fatal(err)
	}
}

// TestProgramsFromTheSidecar: with programs_url the plugin fetches its
// programs over HTTP (token, ETag) and polls for new ones.
func TestProgramsFromTheSidecar(t *testing.T) {
	var mu sync.Mutex
	current := testkit.ReadFile(t, filepath.Join(build.programs, "noise.paw"))
	polls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer tk" || r.URL.Path != "/v1/programs/noise" {
			http.Error(w, "no", 401)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		polls++
		etag := `"` + runtime.ArtifactID(current) + `"`
		w.Header().Set("ETag", etag)
		if r.Header.Get("If-None-Match") == etag {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Write(current)
	}))
	defer srv.Close()
	dir := t.TempDir()
	pipe := writePipeline(t, dir, "p.yaml", "programs_dir: /nonexistent\n"+tagPipeline)
	writeChunks(t, filepath.Join(dir, "c"), 0, 200, 100)
	out := filepath.Join(dir, "out.jsonl")
	h := startHarness(t)
	if got := h.instance(1, map[string]string{"pipeline": pipe, "programs_url": srv.URL, "programs_token": "tk", "programs_poll": "100ms", "output": "file://" + out}); got != "init 1 1" {
		t.Fatalf("init: %s\n%s", got, h.stderr.String())
	}
	files, _ := filepath.Glob(filepath.Join(dir, "c", "chunk-*"))
	h.do("flush 1 app " + files[0])
	next := recompile(t, "../configs/filters/noise.yaml", 7)
	mu.Lock()
	oldID := runtime.ArtifactID(current)
	current = next
	mu.Unlock()
	if !h.stderrContains("program reloaded") {
		t.Fatalf("no reload from the sidecar:\n%s", h.stderr.String())
	}
	h.do("flush 1 app " + files[1])
	h.do("exit 1")
	ids := map[string]int{}
	for _, l := range readLines(t, out) {
		ids[l.Paw["noise"].ID]++
	}
	if ids[oldID] != 100 || ids[runtime.ArtifactID(next)] != 100 {
		t.Fatalf("records by program ID %v", ids)
	}
	mu.Lock()
	defer mu.Unlock()
	if polls < 3 {
		t.Fatalf("%d requests: the plugin did not poll", polls)
	}
}
