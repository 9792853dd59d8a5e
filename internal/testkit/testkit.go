// Package testkit holds small helpers that tests of several packages
// share; no production code imports it.
package testkit

import (
	"bytes"
	"os"
	"sync"
	"testing"
)

// LockedBuffer is a bytes.Buffer that a child process's output, or a
// logger on another goroutine, may write while the test reads it.
type LockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *LockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String returns what was written so far.
func (l *LockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// ReadFile reads path, failing the test if it cannot.
func ReadFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
