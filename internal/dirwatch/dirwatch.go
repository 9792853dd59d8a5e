// Package dirwatch watches a folder and reports each file that changed
// once it has stopped changing for a while: editors and publishers write
// a file in several steps, and a reader wants the result, not the steps.
package dirwatch

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"sort"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Options configure Watch.
type Options struct {
	// Debounce is how long a file must stay unchanged. Required.
	Debounce time.Duration
	// Match selects the file names (base names) to report.
	Match func(name string) bool
	// Ready, if set, runs once the watch is in place and before any
	// event: a caller that also scans the folder does it here, so no
	// change falls between its scan and the watch. Its error ends Watch.
	Ready func() error
	// Changed receives each settled file's base name, from Watch's own
	// goroutine, in name order when several settle at once.
	Changed func(name string)
	Logger  *slog.Logger
}

// Watch runs until ctx ends.
func Watch(ctx context.Context, dir string, opts Options) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watch %s: %w", dir, err)
	}
	defer w.Close()
	if err := w.Add(dir); err != nil {
		return fmt.Errorf("watch %s: %w", dir, err)
	}
	if opts.Ready != nil {
		if err := opts.Ready(); err != nil {
			return err
		}
	}
	due := map[string]time.Time{} // file -> when it counts as settled
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case err, ok := <-w.Errors:
			if !ok {
				return nil
			}
			opts.Logger.Warn("watching a folder", "dir", dir, "err", err)
		case ev, ok := <-w.Events:
			if !ok {
				return nil
			}
			name := filepath.Base(ev.Name)
			if ev.Op == fsnotify.Chmod || !opts.Match(name) {
				continue
			}
			due[name] = time.Now().Add(opts.Debounce)
			timer.Reset(opts.Debounce)
		case now := <-timer.C:
			names := make([]string, 0, len(due))
			for name := range due {
				names = append(names, name)
			}
			sort.Strings(names)
			next := time.Duration(0)
			for _, name := range names {
				if wait := due[name].Sub(now); wait > 0 {
					if next == 0 || wait < next {
						next = wait
					}
					continue
				}
				delete(due, name)
				opts.Changed(name)
			}
			if next > 0 {
				timer.Reset(next)
			}
		}
	}
}
