package compiler

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pawlogs/paw/internal/atomicfile"
	"github.com/pawlogs/paw/runtime"
)

// TeacherConfig names a large model that labels samples_file once, at
// compile time: an OpenAI-compatible chat-completions endpoint (Ollama,
// vLLM, llama.cpp's server, hosted APIs), asked at temperature 0.
type TeacherConfig struct {
	// BaseURL is the API root, e.g. http://localhost:11434/v1. Required.
	BaseURL string `yaml:"base_url" json:"base_url"`
	// Model. Required.
	Model string `yaml:"model" json:"model"`
	// APIKeyEnv names the variable holding the API key, if any.
	APIKeyEnv string `yaml:"api_key_env,omitempty" json:"api_key_env,omitempty"`
	// SampleSize lines are drawn (seeded) from samples_file. Default: 2000.
	SampleSize int `yaml:"sample_size,omitempty" json:"sample_size,omitempty"`
	// Holdout is the share of the sample kept out of training to measure
	// fidelity. Default: 0.2.
	Holdout float64 `yaml:"holdout,omitempty" json:"holdout,omitempty"`
	// MaxCalls is a budget the compile never exceeds. Default: 1000.
	MaxCalls int `yaml:"max_teacher_calls,omitempty" json:"max_teacher_calls,omitempty"`
	// Concurrency bounds calls in flight. Default: 4.
	Concurrency int `yaml:"concurrency,omitempty" json:"concurrency,omitempty"`
	// RatePerSecond bounds call starts; 0: unlimited.
	RatePerSecond float64 `yaml:"rate_per_second,omitempty" json:"rate_per_second,omitempty"`
	// Timeout per request. Default: 60s.
	Timeout time.Duration `yaml:"timeout,omitempty" json:"timeout,omitempty"`
	// CacheDir keeps answers. Default: the user cache folder, paw/teacher.
	CacheDir string `yaml:"cache_dir,omitempty" json:"cache_dir,omitempty"`
}

func (t TeacherConfig) withDefaults() TeacherConfig {
	if t.SampleSize == 0 {
		t.SampleSize = 2000
	}
	if t.Holdout == 0 {
		t.Holdout = 0.2
	}
	if t.MaxCalls == 0 {
		t.MaxCalls = 1000
	}
	if t.Concurrency == 0 {
		t.Concurrency = 4
	}
	if t.Timeout == 0 {
		t.Timeout = 60 * time.Second
	}
	if t.CacheDir == "" {
		if d, err := os.UserCacheDir(); err == nil {
			t.CacheDir = filepath.Join(d, "paw", "teacher")
		}
	}
	return t
}

// TeacherStats is what labelling cost; it is reported, not stored in the
// artifact, so a warm-cache recompile gives the same bytes.
type TeacherStats struct {
	Sampled    int // lines drawn from samples_file
	Clusters   int // distinct masked templates among them
	Calls      int // requests sent, re-asks included
	CacheHits  int // clusters answered from the cache
	Overridden int // clusters whose template is an example's: the example's label wins
	Dropped    int // clusters whose answer stayed outside the labels
	OverBudget int // clusters left unlabelled by max_teacher_calls
	Labelled   int // sampled lines with a label
	Saved      int // calls saved by asking once per template
}

// teaching is the labelled sample split for training and fidelity.
type teaching struct {
	train, holdout []Example
	stats          TeacherStats
	digest         string // SHA-256 over the cache keys used
}

// teach labels a seeded sample of samples_file, one question per masked
// template, with the spec's examples as few-shot demonstrations.
func (s *Spec) teach(ctx context.Context, progress Progress) (*teaching, error) {
	cfg := s.Teacher.withDefaults()
	lines, err := s.readSamples()
	if err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(s.Options.Seed, 0x7eac4e7))
	if len(lines) > cfg.SampleSize {
		idx := rng.Perm(len(lines))[:cfg.SampleSize]
		sort.Ints(idx)
		picked := make([]string, len(idx))
		for i, j := range idx {
			picked[i] = lines[j]
		}
		lines = picked
	}
	holdout := make([]bool, len(lines))
	for i := range holdout {
		holdout[i] = rng.Float64() < cfg.Holdout
	}
	maxBytes := s.featurizerConfig().MaxBytes
	type cluster struct {
		key, rep string
		lines    []int
		label    string
	}
	byKey := map[string]*cluster{}
	var clusters []*cluster
	for i, l := range lines {
		k := runtime.Normalize([]byte(l), maxBytes)
		c := byKey[k]
		if c == nil {
			c = &cluster{key: k, rep: l}
			byKey[k] = c
			clusters = append(clusters, c)
		}
		c.lines = append(c.lines, i)
	}
	sort.Slice(clusters, func(i, j int) bool { return clusters[i].key < clusters[j].key })
	exampleLabel := map[string]string{}
	for _, e := range s.Examples {
		k := runtime.Normalize([]byte(e.Text), maxBytes)
		if _, ok := exampleLabel[k]; !ok {
			exampleLabel[k] = e.Label
		}
	}
	t := newTeacher(cfg, s)
	st := TeacherStats{Sampled: len(lines), Clusters: len(clusters), Saved: len(lines) - len(clusters)}
	var (
		mu       sync.Mutex
		keys     []string
		done     int
		firstErr error
	)
	jobs := make(chan *cluster)
	var wg sync.WaitGroup
	for w := 0; w < cfg.Concurrency; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range jobs {
				label, key, how, err := t.label(ctx, c.rep)
				mu.Lock()
				switch {
				case err != nil:
					if firstErr == nil {
						firstErr = err
					}
				case how == answerOverBudget:
					st.OverBudget++
				case how == answerDropped:
					st.Dropped++
				default:
					if how == answerCached {
						st.CacheHits++
					}
					c.label = label
					keys = append(keys, key)
				}
				done++
				progress("label", done, len(clusters))
				mu.Unlock()
			}
		}()
	}
feed:
	for _, c := range clusters {
		if l, ok := exampleLabel[c.key]; ok {
			c.label = l
			st.Overridden++
			mu.Lock()
			done++
			progress("label", done, len(clusters))
			mu.Unlock()
			continue
		}
		select {
		case jobs <- c:
		case <-ctx.Done():
			break feed
		}
		mu.Lock()
		failed := firstErr != nil
		mu.Unlock()
		if failed {
			break
		}
	}
	close(jobs)
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	st.Calls = int(t.calls.Load())
	out := &teaching{stats: st}
	for _, c := range clusters {
		if c.label == "" {
			continue
		}
		for _, i := range c.lines {
			e := Example{Text: lines[i], Label: c.label}
			if holdout[i] {
				out.holdout = append(out.holdout, e)
			} else {
				out.train = append(out.train, e)
			}
			out.stats.Labelled++
		}
	}
	sort.Strings(keys)
	sum := sha256.Sum256([]byte(strings.Join(keys, "\n")))
	out.digest = hex.EncodeToString(sum[:])
	return out, nil
}

// readSamples reads samples_file: JSONL records (the spec's input
// selector, else "text") or plain lines.
func (s *Spec) readSamples() ([]string, error) {
	data, err := readLimited(s.samplesPath, 256<<20)
	if err != nil {
		return nil, fmt.Errorf("samples_file: %w", err)
	}
	in, err := runtime.ParseInput(s.Input)
	if err != nil {
		return nil, err
	}
	if in.WholeLine() {
		in, _ = runtime.ParseInput("text")
	}
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64<<10), maxExampleLength*4)
	for sc.Scan() {
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		if b[0] == '{' {
			if t, err := in.Extract(b); err == nil {
				b = t
			}
		}
		if len(b) > maxExampleLength {
			b = b[:maxExampleLength]
		}
		lines = append(lines, string(b))
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("samples_file: %w", err)
	}
	if len(lines) == 0 {
		return nil, errors.New("samples_file holds no lines")
	}
	return lines, nil
}

// errOverBudget: max_teacher_calls is spent.
var errOverBudget = errors.New("max_teacher_calls spent")

type answer int

const (
	answerAsked answer = iota
	answerCached
	answerDropped
	answerOverBudget
)

// teacher asks the endpoint, within the budget, the rate and the
// concurrency, with retries, and caches the answers.
type teacher struct {
	cfg    TeacherConfig
	spec   *Spec
	key    string
	client *http.Client
	system string
	calls  atomic.Int64 // requests sent; never more than MaxCalls
	tick   <-chan time.Time
}

func newTeacher(cfg TeacherConfig, s *Spec) *teacher {
	t := &teacher{cfg: cfg, spec: s, client: &http.Client{}, system: systemPrompt(s)}
	if cfg.APIKeyEnv != "" {
		t.key = os.Getenv(cfg.APIKeyEnv)
	}
	if cfg.RatePerSecond > 0 {
		t.tick = time.NewTicker(time.Duration(float64(time.Second) / cfg.RatePerSecond)).C
	}
	return t
}

// systemPrompt states the task, the labels and the few-shot examples.
func systemPrompt(s *Spec) string {
	var b strings.Builder
	fmt.Fprintf(&b, "You label log lines.\nTask: %s\nAnswer with exactly one of these labels and nothing else: %s\n", strings.TrimSpace(s.Description), strings.Join(s.Labels, ", "))
	n := 0
	for _, e := range s.Examples {
		if n == 40 {
			break
		}
		if n == 0 {
			b.WriteString("\nExamples:\n")
		}
		fmt.Fprintf(&b, "Line: %s\nLabel: %s\n", e.Text, e.Label)
		n++
	}
	return b.String()
}

func userPrompt(line string) string { return "Line: " + line + "\nLabel:" }

// label answers one line: from the cache, or by asking (and re-asking
// once if the answer is not a label).
func (t *teacher) label(ctx context.Context, line string) (label, key string, how answer, err error) {
	key = t.cacheKey(line)
	if l, ok := t.cached(key); ok {
		return l, key, answerCached, nil
	}
	prompt := userPrompt(line)
	for attempt := 0; attempt < 2; attempt++ {
		text, err := t.ask(ctx, prompt)
		if errors.Is(err, errOverBudget) {
			return "", key, answerOverBudget, nil
		}
		if err != nil {
			return "", key, 0, err
		}
		if l, ok := matchLabel(text, t.spec.Labels); ok {
			t.store(key, l)
			return l, key, answerAsked, nil
		}
		prompt = userPrompt(line) + "\n(Answer with exactly one of: " + strings.Join(t.spec.Labels, ", ") + ")"
	}
	return "", key, answerDropped, nil
}

func matchLabel(text string, labels []string) (string, bool) {
	t := strings.Trim(strings.TrimSpace(text), "\"'`.*: \n")
	if i := strings.IndexAny(t, "\n"); i >= 0 {
		t = strings.TrimSpace(t[:i])
	}
	for _, l := range labels {
		if strings.EqualFold(t, l) {
			return l, true
		}
	}
	return "", false
}

func (t *teacher) cacheKey(line string) string {
	h := sha256.New()
	for _, part := range []string{strings.TrimSuffix(t.cfg.BaseURL, "/"), t.cfg.Model, t.system, userPrompt(line)} {
		h.Write([]byte(part))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}

func (t *teacher) cachePath(key string) string { return filepath.Join(t.cfg.CacheDir, key[:2], key) }

func (t *teacher) cached(key string) (string, bool) {
	if t.cfg.CacheDir == "" {
		return "", false
	}
	b, err := os.ReadFile(t.cachePath(key))
	if err != nil {
		return "", false
	}
	l, ok := matchLabel(string(b), t.spec.Labels)
	return l, ok
}

func (t *teacher) store(key, label string) {
	if t.cfg.CacheDir == "" {
		return
	}
	atomicfile.WriteFile(t.cachePath(key), []byte(label)) // a cache: a failed write only costs a call later
}

// ask sends one chat completion, retrying network errors, 429 and 5xx
// with backoff.
func (t *teacher) ask(ctx context.Context, prompt string) (string, error) {
	body, _ := json.Marshal(map[string]any{
		"model": t.cfg.Model, "temperature": 0,
		"messages": []map[string]string{{"role": "system", "content": t.system}, {"role": "user", "content": prompt}},
	})
	url := strings.TrimSuffix(t.cfg.BaseURL, "/") + "/chat/completions"
	backoff := 200 * time.Millisecond
	var last error
	for attempt := 0; attempt < 4; attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return "", ctx.Err()
			case <-time.After(backoff):
			}
			backoff *= 2
		}
		if t.tick != nil {
			select {
			case <-ctx.Done():
				return "", ctx.Err()
			case <-t.tick:
			}
		}
		if t.calls.Add(1) > int64(t.cfg.MaxCalls) {
			t.calls.Add(-1)
			return "", errOverBudget
		}
		text, retry, err := t.post(ctx, url, body)
		if err == nil {
			return text, nil
		}
		last = err
		if !retry {
			break
		}
	}
	return "", fmt.Errorf("teacher %s (model %s): %w", t.cfg.BaseURL, t.cfg.Model, last)
}

func (t *teacher) post(ctx context.Context, url string, body []byte) (text string, retry bool, err error) {
	rctx, cancel := context.WithTimeout(ctx, t.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return "", false, err
	}
	req.Header.Set("Content-Type", "application/json")
	if t.key != "" {
		req.Header.Set("Authorization", "Bearer "+t.key)
	}
	resp, err := t.client.Do(req)
	if err != nil {
		return "", ctx.Err() == nil, fmt.Errorf("unreachable: %w", err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		retry := resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500
		return "", retry, fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(data[:min(len(data), 200)])))
	}
	var out struct {
		Choices []struct {
			Message struct {
				Content string `json:"content"`
			} `json:"message"`
		} `json:"choices"`
	}
	if err := json.Unmarshal(data, &out); err != nil || len(out.Choices) == 0 {
		return "", false, fmt.Errorf("not a chat-completions answer: %.200s", data)
	}
	return out.Choices[0].Message.Content, false, nil
}
