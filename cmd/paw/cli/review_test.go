package cli

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestReviewListsAndAnswers(t *testing.T) {
	specs, progs := t.TempDir(), t.TempDir()
	spec, _ := os.ReadFile("../../../configs/filters/real-error.yaml")
	os.WriteFile(filepath.Join(specs, "real-error.yaml"), spec, 0o644)
	addr := freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() {
		done <- Main(ctx, []string{"serve", "--specs", specs, "--programs", progs, "--listen", addr, "--log-level", "error"}, nil, io.Discard, io.Discard)
	}()
	defer func() { cancel(); <-done }()
	url := "http://" + addr
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(url + "/v1/programs/real-error/answers")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("the sidecar never published real-error")
		}
		time.Sleep(100 * time.Millisecond)
	}
	review := filepath.Join(t.TempDir(), "review.jsonl")
	os.WriteFile(review, []byte(`{"timestamp":"2026-01-01T00:00:00Z","tag":"app","record":{"log":"WARN disk 91% full on sda"}}
{"timestamp":"2026-01-01T00:00:01Z","tag":"app","record":{"log":"WARN disk 93% full on sda"}}
{"timestamp":"2026-01-01T00:00:02Z","tag":"app","record":{"log":"WARN disk 97% full on sdb"}}
{"timestamp":"2026-01-01T00:00:03Z","tag":"app","record":{"log":"NOTICE cert for api.example.com expires in 12 days"}}
`), 0o644)
	// Three records, two masked templates, of one pattern; and another.
	code, out, errs := paw(t, "", "review", "real-error", "--file", review, "--sidecar", url)
	if code != 0 || !strings.Contains(out, "2 escalated patterns of real-error no one has answered") || !strings.Contains(out, "     3  WARN disk <*> full on <*>") {
		t.Fatalf("exit %d\n%s\n%s", code, out, errs)
	}
	// One answer: kept for each of the pattern's two templates.
	code, out, errs = paw(t, "error\n\n", "review", "real-error", "--file", review, "--sidecar", url, "--answer")
	if code != 0 || !strings.Contains(out, "sent 2 answers; the log holds 2") {
		t.Fatalf("--answer: exit %d\n%s\n%s", code, out, errs)
	}
	code, out, _ = paw(t, "", "review", "real-error", "--file", review, "--sidecar", url)
	if code != 0 || !strings.Contains(out, "1 escalated patterns of real-error no one has answered (2 templates answered") {
		t.Fatalf("after answering: exit %d\n%s", code, out)
	}
}

// TestUnanswered groups a review file's unanswered records by pattern,
// within its bounds.
func TestUnanswered(t *testing.T) {
	many := &strings.Builder{}
	for i := range maxReviewPatterns + 5 {
		fmt.Fprintf(many, "event%c%c%c happened\n", 'a'+i%26, 'a'+(i/26)%26, 'a'+(i/676)%26)
	}
	tests := []struct {
		name     string
		file     string
		answered map[string]bool
		patterns int
		lines    int // kept to answer, in all
		unlisted int
	}{
		{"one pattern, two templates", "disk 91% full on sda\ndisk 93% full on sda\ndisk 97% full on sdb\n", nil, 1, 2, 0},
		{"an answered template is left out", "disk 91% full on sda\ndisk 97% full on sdb\n", map[string]bool{"disk <num> full on sda": true}, 1, 1, 0},
		{"patterns past the bound are counted", many.String(), nil, maxReviewPatterns, maxReviewLines, 5},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "review.log")
			if err := os.WriteFile(path, []byte(tc.file), 0o644); err != nil {
				t.Fatal(err)
			}
			items, unlisted, err := unanswered(path, "log", tc.answered)
			if err != nil {
				t.Fatal(err)
			}
			lines := 0
			for _, it := range items {
				lines += len(it.Lines)
			}
			if len(items) != tc.patterns || lines != tc.lines || unlisted != tc.unlisted {
				t.Fatalf("%d patterns, %d lines, %d unlisted; want %d, %d, %d", len(items), lines, unlisted, tc.patterns, tc.lines, tc.unlisted)
			}
		})
	}
}
