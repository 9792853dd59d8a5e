package runtime

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"time"

	"github.com/pawlogs/paw/internal/dirwatch"
	"github.com/pawlogs/paw/internal/lifecycle"
)

// WatchOptions configure WatchPrograms. Zero values take the defaults.
type WatchOptions struct {
	// Debounce is how long a program file must stay unchanged before it is
	// reloaded, so a file still being written is not read half-way.
	// Default: 250ms.
	Debounce time.Duration
	// Logger receives one line per reload or rejected file. Default: slog.Default().
	Logger *slog.Logger
	// OnReload, if set, is called after every reload attempt: err is nil
	// when the program now running has ID id.
	OnReload func(program, id string, err error)
	// PollInterval is how often a sidecar source is asked for new
	// programs. Default: 5s.
	PollInterval time.Duration
}

// WatchPrograms reloads a pipeline's programs when their source changes,
// until ctx ends: a folder is watched (fsnotify), a sidecar is polled with
// If-None-Match. A program that fails to load or validate leaves the
// running one in place; the error goes to the log and OnReload. Folder
// publishers should write a temporary file and rename it in (paw compile
// and paw serve do); the debounce covers writers that do not.
func WatchPrograms(ctx context.Context, pl *Pipeline, opts WatchOptions) error {
	if opts.Debounce <= 0 {
		opts.Debounce = 250 * time.Millisecond
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = 5 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	switch src := pl.Source().(type) {
	case DirSource:
		return watchDir(ctx, pl, src.Dir, opts)
	case nil:
		return errors.New("watch programs: the pipeline has no program source")
	default:
		return poll(ctx, pl, opts)
	}
}

// poll asks the source for every program each PollInterval.
func poll(ctx context.Context, pl *Pipeline, opts WatchOptions) error {
	lifecycle.Every(ctx, opts.PollInterval, func() {
		for _, name := range pl.cfg.ProgramNames() {
			reloadOne(ctx, pl, name, opts)
		}
	})
	return nil
}

func watchDir(ctx context.Context, pl *Pipeline, dir string, opts WatchOptions) error {
	names := map[string]bool{}
	for _, n := range pl.cfg.ProgramNames() {
		names[n+".paw"] = true
	}
	return dirwatch.Watch(ctx, dir, dirwatch.Options{
		Debounce: opts.Debounce,
		Match:    func(file string) bool { return names[file] },
		Changed:  func(file string) { reloadOne(ctx, pl, strings.TrimSuffix(file, ".paw"), opts) },
		Logger:   opts.Logger,
	})
}

func reloadOne(ctx context.Context, pl *Pipeline, name string, opts WatchOptions) {
	id, changed, err := pl.Reload(ctx, name)
	switch {
	case err != nil:
		opts.Logger.Error("program reload rejected; the running program stays", "program", name, "running_id", ShortID(id), "err", err)
	case changed:
		opts.Logger.Info("program reloaded", "program", name, "id", ShortID(id))
	default:
		return // same artifact rewritten: nothing to report
	}
	if opts.OnReload != nil {
		opts.OnReload(name, id, err)
	}
}

// ShortID abbreviates an artifact ID for logs and terminals.
func ShortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
