package lifecycle

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func readyz(t *testing.T, l *Lifecycle) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	l.ReadyHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	return rec.Code, strings.TrimSpace(rec.Body.String())
}

func TestPhasesAndReadiness(t *testing.T) {
	var logs bytes.Buffer
	l := New("part", slog.New(slog.NewTextHandler(&logs, nil)), "programs", 3)
	steps := []struct {
		do    func()
		phase Phase
		code  int
	}{
		{func() {}, Starting, 503},
		{func() { l.Ready() }, Ready, 200},
		{func() { l.Ready() }, Ready, 200}, // once
		{func() { l.Drain("signal") }, Draining, 503},
		{func() { l.Ready() }, Draining, 503}, // never back
		{func() { l.Stop(nil) }, Stopped, 503},
		{func() { l.Drain("again") }, Stopped, 503},
	}
	for i, s := range steps {
		s.do()
		if got := l.Phase(); got != s.phase {
			t.Fatalf("step %d: phase %v, want %v", i, got, s.phase)
		}
		if code, body := readyz(t, l); code != s.code || body != s.phase.String() {
			t.Fatalf("step %d: /readyz %d %q", i, code, body)
		}
	}
	for _, line := range []string{`msg="part starting" programs=3`, `msg="part ready"`, `msg="part draining" why=signal`, `msg="part stopped"`} {
		if strings.Count(logs.String(), line) != 1 {
			t.Errorf("want one %q in the log:\n%s", line, logs.String())
		}
	}
}

// Feeding tasks stop when the drain begins; reporting tasks run until the
// part has stopped, even when the caller's context ended first.
func TestTasksStopInOrder(t *testing.T) {
	l := New("part", slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	var fed, watched atomic.Bool
	feedDone, watchDone := make(chan struct{}), make(chan struct{})
	l.Feed(ctx, func(ctx context.Context) { <-ctx.Done(); fed.Store(true); close(feedDone) })
	l.Watch(ctx, func(ctx context.Context) { <-ctx.Done(); watched.Store(true); close(watchDone) })
	cancel() // the caller's context ends: the feeder sees it, the watcher does not
	<-feedDone
	select {
	case <-watchDone:
		t.Fatal("the reporting task stopped with the caller's context")
	case <-time.After(20 * time.Millisecond):
	}
	l.Drain("signal")
	if watched.Load() {
		t.Fatal("the reporting task stopped at the drain")
	}
	if err := l.Stop(nil); err != nil {
		t.Fatal(err)
	}
	if !fed.Load() || !watched.Load() {
		t.Fatalf("fed %v watched %v after Stop", fed.Load(), watched.Load())
	}
	// Too late to start: the task never runs.
	ran := make(chan struct{}, 2)
	l.Feed(context.Background(), func(context.Context) { ran <- struct{}{} })
	l.Watch(context.Background(), func(context.Context) { ran <- struct{}{} })
	select {
	case <-ran:
		t.Fatal("a task started after Stop")
	case <-time.After(20 * time.Millisecond):
	}
}

func TestStopReportsTheError(t *testing.T) {
	var logs bytes.Buffer
	l := New("part", slog.New(slog.NewTextHandler(&logs, nil)))
	err := l.Stop(context.DeadlineExceeded)
	if err != context.DeadlineExceeded || !strings.Contains(logs.String(), `level=ERROR msg="part stopped"`) || !strings.Contains(logs.String(), "err=\"context deadline exceeded\"") {
		t.Fatalf("err %v, log:\n%s", err, logs.String())
	}
}

// TestEvery ticks until its context ends, then returns.
func TestEvery(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	ticks := 0
	done := make(chan struct{})
	go func() {
		defer close(done)
		Every(ctx, time.Millisecond, func() {
			if ticks++; ticks >= 3 {
				cancel()
			}
		})
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Every did not return once its context ended")
	}
	// A tick due as the context ends may still run: select picks either.
	if ticks < 3 || ticks > 4 {
		t.Fatalf("%d ticks, want 3 (or 4)", ticks)
	}
}
