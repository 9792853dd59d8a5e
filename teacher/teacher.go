// Package teacher asks a large model to label log lines through an
// OpenAI-compatible chat-completions endpoint (Ollama, vLLM, llama.cpp's
// server, hosted APIs). The compiler uses it once per log pattern at compile
// time; the runtime uses it for the low-confidence records a pipeline
// escalates. Either way every call is budgeted, rate limited, retried and
// cached.
package teacher

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/pawlogs/paw/internal/atomicfile"
)

// Endpoint is a teacher: an OpenAI-compatible chat-completions API and
// the model to ask. A spec's teacher: and a pipeline's escalate.teacher:
// name one with the same keys.
type Endpoint struct {
	// BaseURL is the API root, e.g. http://localhost:11434/v1. Required.
	BaseURL string `yaml:"base_url,omitempty" json:"base_url"`
	// Model. Required.
	Model string `yaml:"model,omitempty" json:"model"`
	// APIKeyEnv names the variable holding the API key, if any.
	APIKeyEnv string `yaml:"api_key_env,omitempty" json:"api_key_env,omitempty"`
}

// CheckURL returns what is wrong with an endpoint's BaseURL ("" when
// nothing is), for a config's located errors.
func (e Endpoint) CheckURL() string {
	if !strings.HasPrefix(e.BaseURL, "http://") && !strings.HasPrefix(e.BaseURL, "https://") {
		return fmt.Sprintf("%q: want the http(s) root of an OpenAI-compatible API, e.g. http://localhost:11434/v1", e.BaseURL)
	}
	return ""
}

// Config is an endpoint and how it may be called. Zero values take the
// defaults.
type Config struct {
	Endpoint
	// Timeout per request. Default: 60s.
	Timeout time.Duration
	// Retries after a network error, a 429 or a 5xx, with exponential
	// backoff from 200ms. Every attempt is a call against the budget.
	// Default: 3; negative: none.
	Retries int
	// CacheDir keeps answers on disk, keyed by endpoint, model, prompt and
	// line. Empty: no disk cache.
	CacheDir string
	// Budget bounds the calls. Required.
	Budget *Budget
}

// DefaultCacheDir is the user cache folder's paw/teacher, shared by
// compile and run time so that answers are paid for once.
func DefaultCacheDir() string {
	d, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	return filepath.Join(d, "paw", "teacher")
}

// Task is what the teacher is asked: the spec's description, its labels
// and few-shot examples.
type Task struct {
	Description string
	Labels      []string
	Examples    []Example
}

// Example is one few-shot demonstration.
type Example struct{ Text, Label string }

// maxShots bounds the few-shot examples in a prompt.
const maxShots = 40

// SystemPrompt states the task, the labels and the few-shot examples.
func SystemPrompt(t Task) string {
	var b strings.Builder
	fmt.Fprintf(&b, "You label log lines.\nTask: %s\nAnswer with exactly one of these labels and nothing else: %s\n", strings.TrimSpace(t.Description), strings.Join(t.Labels, ", "))
	for i, e := range t.Examples {
		if i == maxShots {
			break
		}
		if i == 0 {
			b.WriteString("\nExamples:\n")
		}
		fmt.Fprintf(&b, "Line: %s\nLabel: %s\n", e.Text, e.Label)
	}
	return b.String()
}

func userPrompt(line string) string { return "Line: " + line + "\nLabel:" }

// How says where an answer came from.
type How int

const (
	Asked      How = iota // the endpoint answered with a label
	Cached                // the disk cache held the answer
	Dropped               // the answer was not a label, even when re-asked
	OverBudget            // no call was allowed: the budget or the rate is spent
)

func (h How) String() string {
	switch h {
	case Asked:
		return "asked"
	case Cached:
		return "cached"
	case Dropped:
		return "dropped"
	case OverBudget:
		return "over_budget"
	}
	return fmt.Sprintf("How(%d)", int(h))
}

// Answer is the teacher's label for one line.
type Answer struct {
	Label string // empty unless How is Asked or Cached
	Key   string // the cache key: endpoint, model, prompt and line
	How   How
}

// Client labels lines for one task. Safe for concurrent use.
type Client struct {
	cfg    Config
	labels []string
	system string
	key    string
	url    string
	client *http.Client
}

// New returns a client for task. It sends nothing yet.
func New(cfg Config, task Task) (*Client, error) {
	return NewWithPrompt(cfg, task.Labels, SystemPrompt(task))
}

// NewWithPrompt returns a client that asks with a given system prompt, such
// as the one a program's manifest recorded at compile time.
func NewWithPrompt(cfg Config, labels []string, system string) (*Client, error) {
	switch {
	case cfg.CheckURL() != "":
		return nil, fmt.Errorf("teacher base_url %s", cfg.CheckURL())
	case cfg.Model == "":
		return nil, errors.New("teacher model is required")
	case cfg.Budget == nil:
		return nil, errors.New("teacher needs a call budget")
	case len(labels) < 2:
		return nil, fmt.Errorf("teacher needs at least 2 labels, got %v", labels)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 60 * time.Second
	}
	if cfg.Retries == 0 {
		cfg.Retries = 3
	}
	c := &Client{
		cfg: cfg, labels: labels, system: system, client: &http.Client{},
		url: strings.TrimSuffix(cfg.BaseURL, "/") + "/chat/completions",
	}
	if cfg.APIKeyEnv != "" {
		c.key = os.Getenv(cfg.APIKeyEnv)
	}
	return c, nil
}

// Endpoint names the endpoint and model, for messages.
func (c *Client) Endpoint() string { return c.cfg.BaseURL + " (model " + c.cfg.Model + ")" }

// Label answers one line: from the disk cache, or by asking, and re-asking
// once if the answer is not one of the labels. An error means the endpoint
// failed (unreachable, or refused every attempt); the budget running out is
// not an error but an answer, How OverBudget.
func (c *Client) Label(ctx context.Context, line string) (Answer, error) {
	a := Answer{Key: c.cacheKey(line)}
	if l, ok := c.cached(a.Key); ok {
		a.Label, a.How = l, Cached
		return a, nil
	}
	prompt := userPrompt(line)
	for attempt := 0; attempt < 2; attempt++ {
		text, err := c.ask(ctx, prompt)
		if errors.Is(err, ErrOverBudget) {
			a.How = OverBudget
			return a, nil
		}
		if err != nil {
			return a, err
		}
		if l, ok := MatchLabel(text, c.labels); ok {
			c.store(a.Key, l)
			a.Label, a.How = l, Asked
			return a, nil
		}
		prompt = userPrompt(line) + "\n(Answer with exactly one of: " + strings.Join(c.labels, ", ") + ")"
	}
	a.How = Dropped
	return a, nil
}

// MatchLabel finds the label an answer names, ignoring case, quotes,
// punctuation and anything after the first line.
func MatchLabel(text string, labels []string) (string, bool) {
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

func (c *Client) cacheKey(line string) string {
	h := sha256.New()
	for _, part := range []string{strings.TrimSuffix(c.cfg.BaseURL, "/"), c.cfg.Model, c.system, userPrompt(line)} {
		h.Write([]byte(part))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}

func (c *Client) cachePath(key string) string { return filepath.Join(c.cfg.CacheDir, key[:2], key) }

func (c *Client) cached(key string) (string, bool) {
	if c.cfg.CacheDir == "" {
		return "", false
	}
	b, err := os.ReadFile(c.cachePath(key))
	if err != nil {
		return "", false
	}
	return MatchLabel(string(b), c.labels)
}

func (c *Client) store(key, label string) {
	if c.cfg.CacheDir == "" {
		return
	}
	atomicfile.WriteFile(c.cachePath(key), []byte(label)) // a cache: a failed write only costs a call later
}

// ask sends one chat completion, retrying network errors, 429 and 5xx
// with backoff. Each attempt takes a call from the budget first.
func (c *Client) ask(ctx context.Context, prompt string) (string, error) {
	body, err := json.Marshal(map[string]any{
		"model": c.cfg.Model, "temperature": 0,
		"messages": []map[string]string{{"role": "system", "content": c.system}, {"role": "user", "content": prompt}},
	})
	if err != nil {
		return "", fmt.Errorf("encode request: %w", err)
	}
	backoff := 200 * time.Millisecond
	var last error
	for attempt := 0; attempt <= max(c.cfg.Retries, 0); attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return "", ctx.Err()
			case <-time.After(backoff):
			}
			backoff *= 2
		}
		if err := c.cfg.Budget.take(ctx); err != nil {
			return "", err
		}
		text, retry, err := c.post(ctx, body)
		if err == nil {
			return text, nil
		}
		last = err
		if !retry {
			break
		}
	}
	return "", fmt.Errorf("teacher %s: %w", c.Endpoint(), last)
}

func (c *Client) post(ctx context.Context, body []byte) (text string, retry bool, err error) {
	rctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return "", false, err
	}
	req.Header.Set("Content-Type", "application/json")
	if c.key != "" {
		req.Header.Set("Authorization", "Bearer "+c.key)
	}
	resp, err := c.client.Do(req)
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
