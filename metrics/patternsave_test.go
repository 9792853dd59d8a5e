package metrics

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// boardOf is a board of fill's reports.
func boardOf(t0 time.Time) *PatternBoard {
	b := NewPatternBoard()
	fill(b, t0)
	return b
}

// fill files reports of two programs over three minutes, one pattern
// first seen late enough to be new.
func fill(b *PatternBoard, t0 time.Time) {
	for m := 0; m < 3; m++ {
		r := &Report{Time: t0.Add(time.Duration(m) * time.Minute)}
		r.Patterns = []ReportPattern{
			{Program: "errs", ID: "a", Template: "disk <*> failed", Label: "error", Count: int64(10 + m), Share: 1, Novelty: 0.1},
			{Program: "noise", ID: "b", Template: "heartbeat <*>", Label: "noise", Count: 100, Share: 0.9},
		}
		b.Add(r)
	}
	b.Add(&Report{Time: t0.Add(5 * time.Minute), Patterns: []ReportPattern{{Program: "errs", ID: "c", Template: "fan <*> stopped", Label: "error", Count: 2, Share: 1, Novelty: 0.7}}})
}

// A board written and read back answers every window as before, new
// flags included, and the same board always writes the same bytes.
func TestPatternSnapshotRoundTrip(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	b := boardOf(t0)
	var first, again bytes.Buffer
	if err := b.WriteSnapshot(&first); err != nil {
		t.Fatal(err)
	}
	if err := b.WriteSnapshot(&again); err != nil || !bytes.Equal(first.Bytes(), again.Bytes()) {
		t.Fatalf("two snapshots of one board differ (%v)", err)
	}
	read := NewPatternBoard()
	if err := read.ReadSnapshot(bytes.NewReader(first.Bytes())); err != nil {
		t.Fatal(err)
	}
	for _, w := range [][2]time.Time{{t0, t0.Add(10 * time.Minute)}, {t0.Add(4 * time.Minute), t0.Add(6 * time.Minute)}, {t0.Add(time.Minute), t0.Add(time.Minute)}} {
		want, got := b.Top(w[0], w[1], 10, ""), read.Top(w[0], w[1], 10, "")
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("window %v: read back %+v, want %+v", w, got, want)
		}
	}
	if top := read.Top(t0.Add(4*time.Minute), t0.Add(6*time.Minute), 10, "errs")["errs"]; len(top) != 1 || !top[0].New {
		t.Fatalf("the late pattern should still be new: %+v", top)
	}
}

// A snapshot that reports could not have made is refused whole, with the
// reason, and the board keeps what it had.
func TestPatternSnapshotRefusesWhatReportsCannotMake(t *testing.T) {
	pat := func(program, id, template string, buckets string) string {
		return fmt.Sprintf(`{"program":%q,"id":%q,"template":%q,"count":1,"label":"error","share":1,"novelty":0,"first_seen":"2026-12-01T10:00:00Z","last_seen":"2026-12-01T10:00:00Z","buckets":%s}`, program, id, template, buckets)
	}
	snap := func(patterns ...string) string {
		return `{"version":1,"evicted":0,"programs":{"errs":{"first":"2026-12-01T10:00:00Z","patterns":[` + strings.Join(patterns, ",") + `]}}}`
	}
	var many []string
	for i := 0; i <= maxBoardPatterns; i++ {
		many = append(many, pat("errs", fmt.Sprint(i), "t", "[]"))
	}
	tests := []struct{ name, data, want string }{
		{"not JSON", "{", "pattern snapshot"},
		{"another version", `{"version":2}`, "version 2"},
		{"an unknown field", `{"version":1,"extra":1}`, "unknown field"},
		{"an empty template", snap(pat("errs", "a", "", "[]")), "template of 0 bytes"},
		{"filed under another program", snap(pat("other", "a", "t", "[]")), `"other"'s`},
		{"a pattern twice", snap(pat("errs", "a", "t", "[]"), pat("errs", "a", "t", "[]")), "twice"},
		{"buckets out of order", snap(pat("errs", "a", "t", "[[5,1],[4,1]]")), "out of order"},
		{"a negative count", snap(pat("errs", "a", "t", "[[5,-1]]")), "negative"},
		{"a minute twice", snap(pat("errs", "a", "t", "[[5,1],[5,1]]")), "minute twice"},
		{"more buckets than a day", snap(pat("errs", "a", "t", "["+strings.TrimSuffix(strings.Repeat("[1,1],", maxPatternBuckets+1), ",")+"]")), "buckets, want at most"},
		{"more patterns than the board keeps", snap(many...), "over 2000 patterns"},
		{"too big", `{"version":1,"programs":{},"pad":"` + strings.Repeat("x", maxSnapshotBytes) + `"}`, "over"},
	}
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := boardOf(t0)
			before := b.Top(t0, t0.Add(time.Hour), 10, "")
			err := b.ReadSnapshot(strings.NewReader(tc.data))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one saying %q", err, tc.want)
			}
			if after := b.Top(t0, t0.Add(time.Hour), 10, ""); !reflect.DeepEqual(after, before) {
				t.Fatal("a refused snapshot changed the board")
			}
		})
	}
}

// A store on disk keeps its pattern board across a restart; a damaged
// snapshot is moved aside and the store opens with an empty board.
func TestStoreKeepsPatternsAcrossRestarts(t *testing.T) {
	dir := t.TempDir()
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	want := boardOf(t0).Top(t0, t0.Add(time.Hour), 10, "")
	s, err := Open(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	fill(s.Patterns(), t0)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Patterns().Top(t0, t0.Add(time.Hour), 10, ""); !reflect.DeepEqual(got, want) {
		t.Fatalf("after a restart: %+v, want %+v", got, want)
	}
	s.Close()

	if err := os.WriteFile(filepath.Join(dir, "patterns.json"), []byte(`{"version":1,"programs":{"errs":{"patterns":[{"id":""}]}}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err = Open(dir, 0)
	if err != nil {
		t.Fatalf("a damaged snapshot kept the store from opening: %v", err)
	}
	defer s.Close()
	if len(s.Quarantined) != 1 || !strings.Contains(s.Quarantined[0], "patterns.json") {
		t.Fatalf("quarantined %v", s.Quarantined)
	}
	if got := s.Patterns().Top(t0, t0.Add(time.Hour), 10, ""); len(got) != 0 {
		t.Fatalf("board after a damaged snapshot: %+v", got)
	}
}

// FuzzPatternSnapshot: whatever the bytes, reading a snapshot never
// panics, and one that is accepted writes back to bytes that read to the
// same board.
func FuzzPatternSnapshot(f *testing.F) {
	var buf bytes.Buffer
	boardOf(time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)).WriteSnapshot(&buf)
	f.Add(buf.Bytes())
	f.Add([]byte(`{"version":1,"programs":{}}`))
	f.Add([]byte(`{"version":1,"programs":{"p":{"patterns":[{"program":"p","id":"1","template":"t","label":"x","buckets":[[1,2]]}]}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		b := NewPatternBoard()
		if b.ReadSnapshot(bytes.NewReader(data)) != nil {
			return
		}
		var out bytes.Buffer
		if err := b.WriteSnapshot(&out); err != nil {
			t.Fatal(err)
		}
		again := NewPatternBoard()
		if err := again.ReadSnapshot(bytes.NewReader(out.Bytes())); err != nil {
			t.Fatalf("an accepted snapshot wrote one that is refused: %v", err)
		}
		var out2 bytes.Buffer
		again.WriteSnapshot(&out2)
		if !bytes.Equal(out.Bytes(), out2.Bytes()) {
			t.Fatalf("snapshot not stable:\n%s\n%s", out.Bytes(), out2.Bytes())
		}
	})
}

// SavePatternsEvery writes the snapshot on its own, before any Close.
func TestSavePatternsEvery(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	fill(s.Patterns(), time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.SavePatternsEvery(ctx, 10*time.Millisecond, slog.New(slog.DiscardHandler)); close(done) }()
	defer func() { cancel(); <-done }()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		data, err := os.ReadFile(filepath.Join(dir, "patterns.json"))
		if err == nil && bytes.Contains(data, []byte("disk <*> failed")) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no snapshot written: %v", err)
		}
	}
}
