package sidecar

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pawlogs/paw/compiler"
	"github.com/pawlogs/paw/internal/atomicfile"
	"github.com/pawlogs/paw/runtime"
	"github.com/pawlogs/paw/runtime/encodertest"
)

// specYAML is a small spec; seed changes the artifact, not the behaviour.
func specYAML(name string, seed int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "name: %s\ndescription: errors or not\nlabels: [error, ok]\npositive: error\noptions: {seed: %d, epochs: 20}\nexamples:\n", name, seed)
	for i := 0; i < 6; i++ {
		fmt.Fprintf(&b, "  - {label: error, text: \"ERROR request %d failed with exception timeout\"}\n", i)
		fmt.Fprintf(&b, "  - {label: ok, text: \"INFO request %d completed in %dms\"}\n", i, i*7)
	}
	return b.String()
}

type server struct {
	t        *testing.T
	addr     string
	specs    string
	programs string
	token    string
	stop     context.CancelFunc
	done     chan error

	mu        sync.Mutex
	active    map[string]int
	maxActive map[string]int
}

func startServer(t *testing.T, token string, specs map[string]string) *server {
	t.Helper()
	return startServerWith(t, Config{Token: token}, specs)
}

// startServerWith starts a sidecar with cfg's settings over the tests'
// defaults.
func startServerWith(t *testing.T, cfg Config, specs map[string]string) *server {
	t.Helper()
	token := cfg.Token
	s := &server{t: t, specs: t.TempDir(), programs: t.TempDir(), token: token, active: map[string]int{}, maxActive: map[string]int{}}
	for file, content := range specs {
		if err := os.WriteFile(filepath.Join(s.specs, file), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.stop, s.done = cancel, make(chan error, 1)
	addr := make(chan string, 1)
	go func() {
		cfg.SpecsDir, cfg.ProgramsDir, cfg.Listen, cfg.Debounce, cfg.DriftInterval = s.specs, s.programs, "127.0.0.1:0", 50*time.Millisecond, 100*time.Millisecond
		if cfg.MaxBodyBytes == 0 {
			cfg.MaxBodyBytes = 64 << 10
		}
		if cfg.MaxSpecBytes == 0 {
			cfg.MaxSpecBytes = 64 << 10
		}
		s.done <- Run(ctx, cfg, Options{Logger: testLogger(), OnListen: func(a string) { addr <- a }, compileHook: s.hook})
	}()
	select {
	case s.addr = <-addr:
	case err := <-s.done:
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		if err := <-s.done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return s
}

func testLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func (s *server) hook(spec string, start bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if start {
		s.active[spec]++
		s.maxActive[spec] = max(s.maxActive[spec], s.active[spec])
	} else {
		s.active[spec]--
	}
}

func (s *server) request(method, path string, body io.Reader, header map[string]string) (*http.Response, []byte) {
	s.t.Helper()
	req, err := http.NewRequest(method, "http://"+s.addr+path, body)
	if err != nil {
		s.t.Fatal(err)
	}
	if s.token != "" {
		req.Header.Set("Authorization", "Bearer "+s.token)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp, data
}

func (s *server) programsList() map[string]Program {
	s.t.Helper()
	resp, data := s.request("GET", "/v1/programs", nil, nil)
	if resp.StatusCode != 200 {
		s.t.Fatalf("GET /v1/programs: %d %s", resp.StatusCode, data)
	}
	var ps []Program
	if err := json.Unmarshal(data, &ps); err != nil {
		s.t.Fatal(err)
	}
	out := map[string]Program{}
	for _, p := range ps {
		out[p.Spec] = p
	}
	return out
}

// waitFor polls the program list until cond holds.
func (s *server) waitFor(what string, cond func(map[string]Program) bool) map[string]Program {
	s.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ps := s.programsList()
		if cond(ps) {
			return ps
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("timed out waiting for %s: %+v", what, ps)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *server) writeSpec(file, content string) {
	s.t.Helper()
	if err := atomicfile.WriteFile(filepath.Join(s.specs, file), []byte(content)); err != nil {
		s.t.Fatal(err)
	}
}

func (s *server) onDisk(name string) string {
	s.t.Helper()
	data, err := os.ReadFile(filepath.Join(s.programs, name+".paw"))
	if err != nil {
		s.t.Fatal(err)
	}
	return runtime.ArtifactID(data)
}

// compileID compiles a spec in-process: the ID the sidecar must publish.
func compileID(t *testing.T, content string) string {
	t.Helper()
	spec, err := compiler.ParseSpec("x.yaml", []byte(content), compiler.LoadOptions{NoFiles: true})
	if err != nil {
		t.Fatal(err)
	}
	res, err := compiler.Compile(context.Background(), spec, nil)
	if err != nil {
		t.Fatal(err)
	}
	return res.ID
}

func TestPublishEditBreakFix(t *testing.T) {
	s := startServer(t, "", map[string]string{"a.yaml": specYAML("a", 1), "b.yaml": specYAML("b", 1)})
	ps := s.waitFor("both published", func(ps map[string]Program) bool { return ps["a.yaml"].Status == "ok" && ps["b.yaml"].Status == "ok" })
	first := ps["a.yaml"].ID
	if first != compileID(t, specYAML("a", 1)) || s.onDisk("a") != first || ps["a.yaml"].Metrics == nil {
		t.Fatalf("published %+v, on disk %s", ps["a.yaml"], s.onDisk("a"))
	}

	s.writeSpec("a.yaml", specYAML("a", 2))
	edited := compileID(t, specYAML("a", 2))
	s.waitFor("the edit", func(ps map[string]Program) bool { return ps["a.yaml"].ID == edited })
	if s.onDisk("a") != edited {
		t.Fatal("the edit is not on disk")
	}

	s.writeSpec("a.yaml", "name: a\nlabels: [error, ok\n")
	ps = s.waitFor("the break", func(ps map[string]Program) bool { return ps["a.yaml"].Status == "error" })
	e := ps["a.yaml"].LastError
	if len(e) == 0 || e[0].Line != 2 || e[0].Column == 0 || ps["a.yaml"].ID != edited || s.onDisk("a") != edited {
		t.Fatalf("broken spec: %+v (on disk %s)", ps["a.yaml"], s.onDisk("a"))
	}
	resp, data := s.request("GET", "/v1/programs/a", nil, nil)
	if resp.StatusCode != 200 || runtime.ArtifactID(data) != edited {
		t.Fatalf("the last good program is not served: %d", resp.StatusCode)
	}
	_, metrics := s.request("GET", "/metrics", nil, nil)
	if !strings.Contains(string(metrics), `paw_sidecar_spec_broken{spec="a.yaml"} 1`) {
		t.Fatalf("no broken-spec metric:\n%s", metrics)
	}

	s.writeSpec("a.yaml", specYAML("a", 3))
	fixed := compileID(t, specYAML("a", 3))
	s.waitFor("the fix", func(ps map[string]Program) bool { return ps["a.yaml"].Status == "ok" && ps["a.yaml"].ID == fixed })
	if ps := s.programsList(); ps["b.yaml"].ID != compileID(t, specYAML("b", 1)) {
		t.Fatal("b changed")
	}
}

func TestConcurrentEditsCompileOnceAtATime(t *testing.T) {
	s := startServer(t, "", map[string]string{"a.yaml": specYAML("a", 1)})
	s.waitFor("published", func(ps map[string]Program) bool { return ps["a.yaml"].Status == "ok" })
	for seed := 2; seed <= 9; seed++ {
		s.writeSpec("a.yaml", specYAML("a", seed))
		time.Sleep(time.Duration(seed*13) * time.Millisecond) // some land mid-compile
	}
	final := compileID(t, specYAML("a", 9))
	s.waitFor("the last edit", func(ps map[string]Program) bool { return ps["a.yaml"].ID == final })
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.maxActive["a.yaml"] != 1 {
		t.Fatalf("spec compiled %d times at once", s.maxActive["a.yaml"])
	}
}

var yamlType = map[string]string{"Content-Type": "application/yaml"}

func TestAPI(t *testing.T) {
	s := startServer(t, "s3cret", map[string]string{"a.yaml": specYAML("a", 1)})
	s.waitFor("published", func(ps map[string]Program) bool { return ps["a.yaml"].Status == "ok" })
	id := s.programsList()["a.yaml"].ID
	big := strings.Repeat("# padding\n", 8<<10)
	tests := []struct {
		name   string
		method string
		path   string
		body   string
		header map[string]string
		code   int
		want   string
	}{
		{"healthz needs no token", "GET", "/healthz", "", map[string]string{"Authorization": ""}, 200, `"ok"`},
		{"no token", "GET", "/v1/programs", "", map[string]string{"Authorization": ""}, 401, "bearer token"},
		{"wrong token", "GET", "/v1/programs", "", map[string]string{"Authorization": "Bearer nope"}, 401, "bearer token"},
		{"artifact with ETag", "GET", "/v1/programs/a", "", nil, 200, ""},
		{"not modified", "GET", "/v1/programs/a", "", map[string]string{"If-None-Match": `"` + id + `"`}, 304, ""},
		{"unknown program", "GET", "/v1/programs/zzz", "", nil, 404, "no published program"},
		{"compile", "POST", "/v1/compile", specYAML("c", 4), yamlType, 200, ""},
		{"bad yaml", "POST", "/v1/compile", "name: c\nlabels: [a\n", yamlType, 422, `"line": 2`},
		{"invalid spec", "POST", "/v1/compile", "name: c\ndescription: x\nlabels: [a]\n", yamlType, 422, `"error"`},
		{"files refused", "POST", "/v1/compile", "name: c\ndescription: x\nlabels: [a, b]\nexamples_file: /etc/passwd\n", yamlType, 422, "examples_file"},
		{"oversized", "POST", "/v1/compile", big, yamlType, 413, "larger than"},
		{"text/plain refused", "POST", "/v1/compile", specYAML("c", 4), map[string]string{"Content-Type": "text/plain"}, 415, "application/yaml"},
		{"no content type", "POST", "/v1/report", "{}", nil, 415, "application/json"},
		{"metrics behind the token", "GET", "/metrics", "", map[string]string{"Authorization": ""}, 401, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, data := s.request(tc.method, tc.path, strings.NewReader(tc.body), tc.header)
			if resp.StatusCode != tc.code || !strings.Contains(string(data), tc.want) {
				t.Fatalf("%s %s: %d %s; want %d containing %q", tc.method, tc.path, resp.StatusCode, data, tc.code, tc.want)
			}
			if tc.code == 200 && tc.path != "/healthz" {
				if etag := resp.Header.Get("ETag"); etag != `"`+runtime.ArtifactID(data)+`"` {
					t.Fatalf("ETag %s is not the artifact's ID", etag)
				}
			}
		})
	}
}

// Without a token, the API refuses what a hostile web page can make a
// browser send: cross-origin POSTs and DNS-rebound Host names.
func TestNoTokenRefusesBrowserAttacks(t *testing.T) {
	s := startServerWith(t, Config{AllowedHosts: []string{"sidecar"}}, nil)
	tests := []struct {
		name   string
		method string
		header map[string]string
		host   string
		code   int
		want   string
	}{
		{"same origin", "GET", map[string]string{"Origin": "http://" + "HOST"}, "", 200, ""},
		{"cross origin post", "POST", map[string]string{"Origin": "http://evil.example", "Content-Type": "application/yaml"}, "", 403, "cross-origin"},
		{"cross origin get", "GET", map[string]string{"Origin": "http://evil.example"}, "", 403, "cross-origin"},
		{"rebound host", "GET", nil, "evil.example:8080", 403, "is not allowed without a token"},
		{"allowed name", "GET", nil, "sidecar:8080", 200, ""},
		{"localhost", "GET", nil, "localhost:8080", 200, ""},
		{"healthz for any host", "GET", nil, "evil.example", 200, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path, body := "/v1/programs", ""
			if tc.method == "POST" {
				path, body = "/v1/compile", specYAML("c", 1)
			}
			if tc.name == "healthz for any host" {
				path = "/healthz"
			}
			req, _ := http.NewRequest(tc.method, "http://"+s.addr+path, strings.NewReader(body))
			for k, v := range tc.header {
				req.Header.Set(k, strings.ReplaceAll(v, "HOST", s.addr))
			}
			if tc.host != "" {
				req.Host = tc.host
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			data, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.code || !strings.Contains(string(data), tc.want) {
				t.Fatalf("%d %s; want %d containing %q", resp.StatusCode, data, tc.code, tc.want)
			}
		})
	}
}

// HTTP compiles have a slot of their own and a time limit: a heavy one
// neither blocks the spec folder's recompiles nor runs forever, and one
// more is told to come back.
func TestHTTPCompilesAreBounded(t *testing.T) {
	s := startServerWith(t, Config{HTTPCompiles: 1, HTTPCompileTimeout: 3 * time.Second, MaxSpecBytes: 1 << 20}, map[string]string{"a.yaml": specYAML("a", 1)})
	s.waitFor("published", func(ps map[string]Program) bool { return ps["a.yaml"].Status == "ok" })
	heavy := strings.Replace(specYAML("h", 1), "epochs: 20", "epochs: 10000", 1)
	var b strings.Builder
	b.WriteString(heavy)
	for i := 0; i < 3000; i++ {
		fmt.Fprintf(&b, "  - {label: ok, text: \"INFO job %d step %d finished\"}\n", i, i*3)
	}
	heavy = b.String()
	type answer struct {
		code  int
		retry string
		body  string
		at    time.Time
	}
	answers := make(chan answer, 2)
	for range 2 {
		go func() {
			resp, data := s.request("POST", "/v1/compile", strings.NewReader(heavy), yamlType)
			answers <- answer{resp.StatusCode, resp.Header.Get("Retry-After"), string(data), time.Now()}
		}()
	}
	// The spec folder still compiles while the HTTP slot is held.
	old := s.programsList()["a.yaml"].ID
	os.WriteFile(filepath.Join(s.specs, "a.yaml"), []byte(specYAML("a", 2)), 0o644)
	s.waitFor("recompiled", func(ps map[string]Program) bool { return ps["a.yaml"].ID != old })
	recompiled := time.Now()
	a, b2 := <-answers, <-answers
	if a.code == 503 {
		a, b2 = b2, a
	}
	if b2.code != 503 || b2.retry == "" || !strings.Contains(b2.body, "retry later") {
		t.Fatalf("second HTTP compile: %d Retry-After %q %s", b2.code, b2.retry, b2.body)
	}
	if a.code != 422 || !strings.Contains(a.body, "compile stopped after 3s") {
		t.Fatalf("heavy compile: %d %s", a.code, a.body)
	}
	if !recompiled.Before(a.at) {
		t.Fatalf("the spec folder recompiled only after the HTTP compile ended")
	}
}

// An unusable metrics folder costs the metrics' history, never the
// programs: the sidecar starts with metrics in memory.
func TestUnusableMetricsDirStillServesPrograms(t *testing.T) {
	notADir := filepath.Join(t.TempDir(), "file")
	os.WriteFile(notADir, []byte("x"), 0o644)
	s := startServerWith(t, Config{MetricsDir: notADir}, map[string]string{"a.yaml": specYAML("a", 1)})
	s.waitFor("published", func(ps map[string]Program) bool { return ps["a.yaml"].Status == "ok" })
}

// Answers pushed by many reporters at once are all kept; a label the
// program lacks is refused; enough new answers recompile the program with
// them, and it says how many it learned.
func TestAnswersAreLoggedAndLearned(t *testing.T) {
	// The spec's own learn settings win over the sidecar's (1000 answers).
	spec := specYAML("a", 1) + "learn: {min_new_answers: 50, interval: 1ms}\n"
	s := startServerWith(t, Config{LearnMinAnswers: 1000}, map[string]string{"a.yaml": spec})
	first := s.waitFor("published", func(ps map[string]Program) bool { return ps["a.yaml"].Status == "ok" })["a.yaml"]
	post := func(body string) (int, string) {
		resp, data := s.request("POST", "/v1/programs/a/answers", strings.NewReader(body), map[string]string{"Content-Type": "application/json"})
		return resp.StatusCode, string(data)
	}
	if code, body := post(`{"answers": [{"line": "x", "label": "maybe"}]}`); code != 422 || !strings.Contains(body, `label \"maybe\" is not one of`) {
		t.Fatalf("unknown label: %d %s", code, body)
	}
	if code, _ := post(`{"answers": []}`); code != 422 {
		t.Fatalf("no answers: %d", code)
	}
	if resp, _ := s.request("POST", "/v1/programs/zzz/answers", strings.NewReader(`{"answers": [{"line": "x", "label": "ok"}]}`), map[string]string{"Content-Type": "application/json"}); resp.StatusCode != 404 {
		t.Fatalf("unknown program: %d", resp.StatusCode)
	}
	var wg sync.WaitGroup
	for r := 0; r < 8; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 25; i++ {
				// Answers a program can learn, so the held-out gate passes
				// the learned one whichever answers the recompile sees.
				label, what := "ok", "finished cleanly"
				if i%2 == 0 {
					label, what = "error", "crashed with fatal exception"
				}
				body := fmt.Sprintf(`{"answers": [{"line": "service%c%c step %d %s", "label": %q, "by": "model"}]}`, 'a'+r, 'a'+i, i, what, label)
				if code, resp := post(body); code != 200 {
					t.Errorf("answer: %d %s", code, resp)
				}
			}
		}()
	}
	wg.Wait()
	data, err := os.ReadFile(filepath.Join(s.programs, ".answers", "a.answers.jsonl"))
	if err != nil || strings.Count(string(data), "\n") != 200 {
		t.Fatalf("answer log: %d lines, %v", strings.Count(string(data), "\n"), err)
	}
	learned := s.waitFor("learned", func(ps map[string]Program) bool { return ps["a.yaml"].Learned > 0 && ps["a.yaml"].ID != first.ID })["a.yaml"]
	if learned.Status != "ok" || learned.Learned < 1 || learned.Learned > 200 {
		t.Fatalf("after learning: %+v", learned)
	}
}

// A learned program that does worse than the published one on the
// held-out answers is refused; one that does as well passes.
func TestCheckLearnedRefusesWorse(t *testing.T) {
	compile := func(yaml string) *compiler.Result {
		s, err := compiler.ParseSpec("s.yaml", []byte(yaml), compiler.LoadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		res, err := compiler.Compile(context.Background(), s, nil)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	good := compile(specYAML("a", 1))
	flipped := strings.NewReplacer("label: error", "label: TMP", "label: ok", "label: error").Replace(specYAML("a", 1))
	flipped = strings.ReplaceAll(flipped, "label: TMP", "label: ok")
	bad := compile(flipped)
	held := []compiler.Answer{
		{Line: "ERROR request 901 failed with exception timeout", Label: "error"},
		{Line: "INFO request 902 completed in 5ms", Label: "ok"},
	}
	if err := checkLearned(bad, good.Artifact, held, ""); !errors.Is(err, errLearnedWorse) {
		t.Fatalf("a worse program passed: %v", err)
	}
	if err := checkLearned(good, good.Artifact, held, ""); err != nil {
		t.Fatalf("an equal program refused: %v", err)
	}
}

// An encoder-v1 program that learned wrong labels is refused too: its
// held-out answers are scored through ONNX Runtime with its encoder.
func TestCheckLearnedRefusesWorseEncoder(t *testing.T) {
	dir := t.TempDir()
	if _, err := encodertest.Write(filepath.Join(dir, "encoders", "tiny"), encodertest.Options{Seed: 3}); err != nil {
		t.Fatal(err)
	}
	spec := func(flip bool) string {
		errLabel, okLabel := "error", "ok"
		if flip {
			errLabel, okLabel = "ok", "error"
		}
		var b strings.Builder
		fmt.Fprintf(&b, "name: a\ndescription: errors or not\nlabels: [error, ok]\npositive: error\ninterpreter: encoder-v1\nencoder: {name: tiny, dir: encoders, max_tokens: 32}\nexamples:\n")
		for i, w := range []string{"disk", "db", "cache", "queue", "auth", "job", "worker", "node"} {
			fmt.Fprintf(&b, "  - {label: %s, text: \"error %s failed fatal exception %d\"}\n", errLabel, w, i)
			fmt.Fprintf(&b, "  - {label: %s, text: \"info %s completed ok success %d\"}\n", okLabel, w, i)
		}
		return b.String()
	}
	compile := func(yaml string) (*compiler.Result, *compiler.Spec) {
		path := filepath.Join(dir, "a.yaml")
		write(t, path, yaml)
		s, err := compiler.LoadSpec(path, compiler.LoadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		res, err := compiler.Compile(context.Background(), s, nil)
		if err != nil {
			t.Fatal(err)
		}
		return res, s
	}
	good, s := compile(spec(false))
	bad, _ := compile(spec(true))
	var held []compiler.Answer
	for _, w := range []string{"session", "server", "client", "memory", "cpu"} {
		held = append(held, compiler.Answer{Line: "error " + w + " failed fatal exception", Label: "error"},
			compiler.Answer{Line: "info " + w + " completed ok success", Label: "ok"})
	}
	if err := checkLearned(bad, good.Artifact, held, s.EncodersDir()); !errors.Is(err, errLearnedWorse) {
		t.Fatalf("a worse encoder-v1 program passed: %v", err)
	}
	if err := checkLearned(good, good.Artifact, held, s.EncodersDir()); err != nil {
		t.Fatalf("an equal program refused: %v", err)
	}
}

// GET /readyz, unauthenticated like /healthz, answers 200 once the first
// scan of the specs folder has queued every spec.
func TestReadyz(t *testing.T) {
	s := startServer(t, "secret", map[string]string{"a.yaml": specYAML("a", 1)})
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get("http://" + s.addr + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == 200 && strings.TrimSpace(string(body)) == "ready" {
			return
		}
		if resp.StatusCode != 503 || strings.TrimSpace(string(body)) != "starting" || time.Now().After(deadline) {
			t.Fatalf("/readyz: %d %q", resp.StatusCode, body)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
