package runtime_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pawlogs/paw/runtime"
)

// openFolderPipeline writes the errs program into a temporary programs
// folder and opens a pipeline tagging with it.
func openFolderPipeline(t *testing.T) (*runtime.Pipeline, string) {
	t.Helper()
	dir := t.TempDir()
	writeProgram(t, dir, "errs", errorsArtifact(t, "errs", 1))
	cfgPath := filepath.Join(dir, "pipeline.yaml")
	if err := os.WriteFile(cfgPath, []byte("steps:\n  - tag: {programs: [errs]}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := runtime.LoadPipelineConfig(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	pl, err := runtime.OpenPipeline(openEnv(t), cfg, runtime.PipelineOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pl.Close() })
	return pl, dir
}

// writeProgram publishes a program the way paw compile does: a temporary
// file renamed into place.
func writeProgram(t *testing.T, dir, name string, data []byte) {
	t.Helper()
	tmp := filepath.Join(dir, "."+name+".tmp")
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, name+".paw")); err != nil {
		t.Fatal(err)
	}
}

func TestReloadUnderTraffic(t *testing.T) {
	pl, dir := openFolderPipeline(t)
	oldID := pl.ProgramIDs()["errs"]
	next := errorsArtifact(t, "errs", 2)
	newID := runtime.ArtifactID(next)
	if newID == oldID {
		t.Fatal("seeds 1 and 2 gave the same artifact")
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	seen := make([]map[string]int, 4)
	errs := make(chan error, len(seen))
	for w := range seen {
		seen[w] = map[string]int{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			recs := [][]byte{[]byte("ERROR request 1 failed with exception timeout"), []byte("INFO request 2 completed in 4ms")}
			for ctx.Err() == nil {
				outs, err := pl.Process(context.Background(), recs)
				if err != nil {
					errs <- err
					return
				}
				for i, o := range outs {
					if want := [2]string{"error", "ok"}[i]; o.Tags[0].Label != want {
						errs <- fmt.Errorf("record %d labelled %s, want %s", i, o.Tags[0].Label, want)
						return
					}
					seen[w][o.Tags[0].ID]++
				}
			}
		}()
	}
	time.Sleep(50 * time.Millisecond)
	writeProgram(t, dir, "errs", next)
	id, changed, err := pl.Reload(context.Background(), "errs")
	if err != nil || !changed || id != newID {
		t.Fatalf("Reload = %s, %v, %v; want %s, true, nil", id, changed, err, newID)
	}
	time.Sleep(50 * time.Millisecond)
	cancel()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	total := map[string]int{}
	for _, m := range seen {
		for id, n := range m {
			total[id] += n
		}
	}
	if total[oldID] == 0 || total[newID] == 0 || len(total) != 2 {
		t.Fatalf("records per program ID = %v; want both %s and %s", total, oldID[:12], newID[:12])
	}
	t.Logf("records per program ID across the swap: old %d, new %d", total[oldID], total[newID])
}

func TestReloadRejectsBadFiles(t *testing.T) {
	pl, dir := openFolderPipeline(t)
	good := pl.ProgramIDs()["errs"]
	other := errorsArtifact(t, "other", 1)
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"corrupt", []byte("PK\x03\x04 not really a zip"), "invalid artifact"},
		{"wrong program", other, `holds program "other"`},
		{"empty", nil, "invalid artifact"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			writeProgram(t, dir, "errs", tc.data)
			id, changed, err := pl.Reload(context.Background(), "errs")
			if err == nil || changed || id != good {
				t.Fatalf("Reload = %s, %v, %v; want the old program kept and an error", id, changed, err)
			}
			if !strings.Contains(strings.ToLower(err.Error()), strings.ToLower(tc.want)) {
				t.Fatalf("error %q does not mention %q", err, tc.want)
			}
			outs, err := pl.ProcessTexts(context.Background(), [][]byte{[]byte("ERROR disk failed")})
			if err != nil || outs[0].Tags[0].ID != good {
				t.Fatalf("after a rejected reload: %+v, %v", outs, err)
			}
		})
	}
	if err := pl.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := pl.ProcessTexts(context.Background(), [][]byte{[]byte("x")}); !errors.Is(err, runtime.ErrClosed) {
		t.Fatalf("Process after Close: %v, want ErrClosed", err)
	}
}

func TestWatchProgramsReloadsOnRename(t *testing.T) {
	pl, dir := openFolderPipeline(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type event struct {
		id  string
		err error
	}
	events := make(chan event, 4)
	done := make(chan error, 1)
	go func() {
		done <- runtime.WatchPrograms(ctx, pl, runtime.WatchOptions{
			Debounce: 20 * time.Millisecond,
			OnReload: func(_, id string, err error) { events <- event{id, err} },
		})
	}()
	time.Sleep(100 * time.Millisecond) // let the watch start
	writeProgram(t, dir, "errs", []byte("garbage"))
	if ev := <-events; ev.err == nil {
		t.Fatal("a garbage file was accepted")
	}
	next := errorsArtifact(t, "errs", 3)
	writeProgram(t, dir, "errs", next)
	if ev := <-events; ev.err != nil || ev.id != runtime.ArtifactID(next) {
		t.Fatalf("reload event %+v, want id %s", ev, runtime.ArtifactID(next)[:12])
	}
	if got := pl.ProgramIDs()["errs"]; got != runtime.ArtifactID(next) {
		t.Fatalf("running %s after the watch reloaded", got[:12])
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
