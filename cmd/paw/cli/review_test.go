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
	var rb strings.Builder
	for i, dev := range []string{"sda", "sdb", "sdc", "sdd", "sde", "sda"} {
		fmt.Fprintf(&rb, `{"timestamp":"2026-01-01T00:00:0%dZ","tag":"app","record":{"log":"WARN disk 9%d%% full on %s"}}`+"\n", i, i, dev)
	}
	rb.WriteString(`{"timestamp":"2026-01-01T00:00:09Z","tag":"app","record":{"log":"NOTICE cert for api.example.com expires in 12 days"}}` + "\n")
	os.WriteFile(review, []byte(rb.String()), 0o644)
	// Six records, five templates (a disk name each: values, not kinds),
	// of one pattern; and another.
	code, out, errs := paw(t, "", "review", "real-error", "--file", review, "--sidecar", url)
	if code != 0 || !strings.Contains(out, "2 escalated patterns of real-error no one has answered") || !strings.Contains(out, "     6  WARN disk <*> full on <*>") {
		t.Fatalf("exit %d\n%s\n%s", code, out, errs)
	}
	// One answer: kept for each of the pattern's five templates.
	code, out, errs = paw(t, "error\n\n", "review", "real-error", "--file", review, "--sidecar", url, "--answer")
	if code != 0 || !strings.Contains(out, "sent 5 answers; the log holds 5") {
		t.Fatalf("--answer: exit %d\n%s\n%s", code, out, errs)
	}
	code, out, _ = paw(t, "", "review", "real-error", "--file", review, "--sidecar", url)
	if code != 0 || !strings.Contains(out, "1 escalated patterns of real-error no one has answered (5 templates answered") {
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
		patterns int // patterns and kinds
		lines    int // kept to answer, in all
		unlisted int
	}{
		{"a pattern's kinds apart", "7 gige7 gige temperature 11461 1 critical\n8 gige7 gige temperature 11462 1 warning\n9 gige7 gige temperature 11463 1 critical\n", nil, 2, 2, 0},
		{"values together", "disk 91% full on sda\ndisk 93% full on sdb\ndisk 97% full on sdc\ndisk 95% full on sdd\n", nil, 1, 4, 0},
		{"an answered template is left out", "disk 91% full on sda\ndisk 97% full on sda\n", map[string]bool{"disk <num> full on sda": true}, 0, 0, 0},
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
