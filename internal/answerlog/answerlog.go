// Package answerlog keeps a program's answers: the labels the teacher or a
// person gave to lines the program escalated. It is an append-only JSON
// Lines file, synced on every append, so an answer acknowledged is an
// answer kept; bounded, by compacting to the best answer per template when
// it grows past its limit; and safe for concurrent appends.
package answerlog

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/pawlogs/paw/compiler"
	"github.com/pawlogs/paw/internal/atomicfile"
	"github.com/pawlogs/paw/runtime"
)

// NewAnswer is an answer as the logs keep it, with its line's template.
func NewAnswer(line, label, by, programID string, at time.Time) compiler.Answer {
	return compiler.Answer{Template: runtime.Normalize([]byte(line), runtime.DefaultMaxBytes), Line: line, Label: label, By: by, Time: at, ProgramID: programID}
}

// DefaultMaxEntries bounds a log before it is compacted.
const DefaultMaxEntries = 100_000

// MaxBytes bounds a log's size the same way: a line may be 64 KiB.
const MaxBytes = 64 << 20

// Log is one program's answers.
type Log struct {
	path     string
	max      int
	maxBytes int // MaxBytes; tests lower it

	mu      sync.Mutex
	f       *os.File
	entries []compiler.Answer
	bytes   int // of the file
}

// Open opens or creates the log at path. A line torn by a crash is
// dropped; the rest is kept.
func Open(path string, maxEntries int) (*Log, error) {
	if maxEntries <= 0 {
		maxEntries = DefaultMaxEntries
	}
	l := &Log{path: path, max: maxEntries, maxBytes: MaxBytes}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("answer log: %w", err)
	}
	data, err := io.ReadAll(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("answer log %s: %w", path, err)
	}
	good := 0
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		var a compiler.Answer
		if json.Unmarshal(sc.Bytes(), &a) != nil {
			break
		}
		l.entries = append(l.entries, a)
		good += len(sc.Bytes()) + 1
	}
	l.bytes = good
	if good < len(data) {
		if err := f.Truncate(int64(good)); err != nil {
			f.Close()
			return nil, fmt.Errorf("answer log %s: %w", path, err)
		}
	}
	if _, err := f.Seek(int64(good), io.SeekStart); err != nil {
		f.Close()
		return nil, fmt.Errorf("answer log %s: %w", path, err)
	}
	l.f = f
	return l, nil
}

// Append adds answers and syncs them to disk before returning.
func (l *Log) Append(as ...compiler.Answer) error {
	if len(as) == 0 {
		return nil
	}
	var buf bytes.Buffer
	for _, a := range as {
		b, err := json.Marshal(a)
		if err != nil {
			return err
		}
		buf.Write(append(b, '\n'))
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, err := l.f.Write(buf.Bytes()); err != nil {
		return fmt.Errorf("answer log %s: %w", l.path, err)
	}
	if err := l.f.Sync(); err != nil {
		return fmt.Errorf("answer log %s: %w", l.path, err)
	}
	l.entries = append(l.entries, as...)
	l.bytes += buf.Len()
	if len(l.entries) > l.max || l.bytes > l.maxBytes {
		return l.compactLocked()
	}
	return nil
}

// All returns the answers, oldest first.
func (l *Log) All() []compiler.Answer {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.entries)
}

// Len is how many answers the log holds.
func (l *Log) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.entries)
}

// compactLocked keeps the best answer per masked template (a person's over
// a model's, then the latest), as a compile would, and rewrites the file
// atomically; if that is still too many, the oldest go.
func (l *Log) compactLocked() error {
	keep, _ := compiler.BestPerTemplate(l.entries, runtime.DefaultMaxBytes)
	if len(keep) > l.max {
		keep = keep[len(keep)-l.max:]
	}
	var lines [][]byte
	size := 0
	for _, a := range keep {
		b, _ := json.Marshal(a)
		lines = append(lines, append(b, '\n'))
		size += len(b) + 1
	}
	for size > l.maxBytes/2 && len(lines) > 0 { // the oldest go, with room to grow
		size -= len(lines[0])
		lines, keep = lines[1:], keep[1:]
	}
	buf := bytes.Join(lines, nil)
	if err := atomicfile.WriteFile(l.path, buf); err != nil {
		return fmt.Errorf("compact answer log %s: %w", l.path, err)
	}
	f, err := os.OpenFile(l.path, os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("answer log %s: %w", l.path, err)
	}
	l.f.Close()
	l.f, l.entries, l.bytes = f, keep, size
	return nil
}

// Close closes the file.
func (l *Log) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.f.Close()
}
