// Package teachertest provides an OpenAI-compatible chat-completions
// server that labels lines by a known rule, for tests of code that asks a
// teacher, as net/http/httptest does for HTTP.
package teachertest

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// Model is the only model name the server accepts.
const Model = "teach-1"

// Server answers POST /v1/chat/completions for Model at temperature 0 with
// the label Rule gives the line of the user message ("Line: ...").
type Server struct {
	*httptest.Server
	// Rule labels a line. Set it before the first request.
	Rule func(line string) string

	mu       sync.Mutex
	requests int
	perLine  map[string]int
	fail     int // answer 503 to this many requests first
}

// ErrorRule calls lines that say failed, refused or timeout "error" and
// every other line "ok".
func ErrorRule(line string) string {
	for _, w := range []string{"failed", "refused", "timeout"} {
		if strings.Contains(line, w) {
			return "error"
		}
	}
	return "ok"
}

// NewServer starts a server with rule; it is closed when the test ends.
func NewServer(t testing.TB, rule func(line string) string) *Server {
	s := Start(rule)
	t.Cleanup(s.Close)
	return s
}

// Start starts a server with rule outside a test (pawdev quality's replay);
// the caller closes it.
func Start(rule func(line string) string) *Server {
	s := &Server{Rule: rule, perLine: map[string]int{}}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// BaseURL is the API root to configure a client with.
func (s *Server) BaseURL() string { return s.URL + "/v1" }

// FailNext makes the next n requests fail with 503 Service Unavailable.
func (s *Server) FailNext(n int) {
	s.mu.Lock()
	s.fail = n
	s.mu.Unlock()
}

// Requests is how many requests arrived, failed ones included.
func (s *Server) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

// PerLine is how many times each line was answered (a copy).
func (s *Server) PerLine() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.perLine))
	for l, n := range s.perLine {
		out[l] = n
	}
	return out
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Model       string  `json:"model"`
		Temperature float64 `json:"temperature"`
		Messages    []struct{ Role, Content string }
	}
	if r.URL.Path != "/v1/chat/completions" || json.NewDecoder(r.Body).Decode(&req) != nil || req.Model != Model || req.Temperature != 0 || len(req.Messages) != 2 {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	s.requests++
	if s.fail > 0 {
		s.fail--
		s.mu.Unlock()
		http.Error(w, "busy", http.StatusServiceUnavailable)
		return
	}
	line := strings.TrimPrefix(strings.SplitN(req.Messages[1].Content, "\n", 2)[0], "Line: ")
	s.perLine[line]++
	s.mu.Unlock()
	json.NewEncoder(w).Encode(map[string]any{"choices": []any{map[string]any{"message": map[string]string{"role": "assistant", "content": " " + s.Rule(line) + "\n"}}}})
}
