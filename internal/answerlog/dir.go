package answerlog

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
)

// Dir is a folder of answer logs, one per program (<name>.answers.jsonl),
// each opened on first use and kept open. Safe for concurrent use.
type Dir struct {
	path string
	mu   sync.Mutex
	logs map[string]*Log
}

// NewDir keeps logs in path, created when the first one is opened.
func NewDir(path string) *Dir { return &Dir{path: path, logs: map[string]*Log{}} }

// Log returns the named program's log; name must be a validated program
// name (a slug), as it names a file.
func (d *Dir) Log(name string) (*Log, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if lg, ok := d.logs[name]; ok {
		return lg, nil
	}
	if err := os.MkdirAll(d.path, 0o755); err != nil {
		return nil, fmt.Errorf("answer logs: %w", err)
	}
	lg, err := Open(filepath.Join(d.path, name+".answers.jsonl"), 0)
	if err != nil {
		return nil, err
	}
	d.logs[name] = lg
	return lg, nil
}

// Close closes the logs opened.
func (d *Dir) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(d.logs)) {
		errs = append(errs, d.logs[name].Close())
	}
	clear(d.logs)
	return errors.Join(errs...)
}
