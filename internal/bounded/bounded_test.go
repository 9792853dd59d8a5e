package bounded

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"
)

func TestReadAll(t *testing.T) {
	tests := []struct {
		name        string
		in          string
		limit, size int64
		tooLarge    bool
	}{
		{"empty", "", 4, 0, false},
		{"under the limit", "abc", 4, 0, false},
		{"at the limit", "abcd", 4, 0, false},
		{"past the limit", "abcde", 4, 0, true},
		{"honest size", "abcd", 4, 4, false},
		{"size that understates", "abcd", 4, 1, false},
		{"size that overstates", "ab", 4, 4, false},
		{"size past the limit is ignored", "abcde", 4, 99, true},
		{"negative size", "abc", 4, -1, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// One byte a read: no reader hands over all at once.
			got, err := ReadAll(iotest.OneByteReader(strings.NewReader(tc.in)), tc.limit, tc.size)
			if tc.tooLarge {
				if !errors.Is(err, ErrTooLarge) || got != nil {
					t.Fatalf("got %q, %v; want ErrTooLarge", got, err)
				}
				return
			}
			if err != nil || string(got) != tc.in {
				t.Fatalf("got %q, %v; want %q", got, err, tc.in)
			}
		})
	}
}

func TestReadAllStopsPastTheLimit(t *testing.T) {
	r := strings.NewReader(strings.Repeat("x", 1000))
	if _, err := ReadAll(r, 10, 0); !errors.Is(err, ErrTooLarge) {
		t.Fatal(err)
	}
	if left := r.Len(); left != 1000-11 {
		t.Fatalf("read %d bytes for a limit of 10", 1000-left)
	}
}

func TestReadAllPresized(t *testing.T) {
	in := bytes.Repeat([]byte("y"), 1<<20)
	allocs := testing.AllocsPerRun(5, func() {
		if _, err := ReadAll(bytes.NewReader(in), 2<<20, int64(len(in))); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 2 {
		t.Fatalf("%.0f allocations to read a presized 1 MiB", allocs)
	}
}

func TestReadFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	if err := os.WriteFile(path, []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	if b, err := ReadFile(path, 5); err != nil || string(b) != "hello" {
		t.Fatalf("%q, %v", b, err)
	}
	if _, err := ReadFile(path, 4); !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), path) {
		t.Fatalf("want ErrTooLarge naming the file, got %v", err)
	}
	if _, err := ReadFile(filepath.Join(dir, "none"), 4); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("want ErrNotExist, got %v", err)
	}
}
