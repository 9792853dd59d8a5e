// Package bounded reads whole inputs under a size limit. paw refuses an
// input past its limit whole, never a truncated prefix, and reads at most
// one byte past the limit to know.
package bounded

import (
	"errors"
	"fmt"
	"io"
	"os"
)

// ErrTooLarge is wrapped by the error for an input past its limit.
var ErrTooLarge = errors.New("too large")

// ReadAll reads r to its end, refusing more than limit bytes. A size in
// (0, limit], such as a declared length, presizes the buffer: an honest
// size costs one allocation where io.ReadAll's doubling leaves garbage
// several times the input (a program's model is megabytes).
func ReadAll(r io.Reader, limit, size int64) ([]byte, error) {
	n := int64(512)
	if size > 0 && size <= limit {
		n = size + 1 // the read that finds the end then needs no room
	}
	lr := io.LimitReader(r, limit+1)
	b := make([]byte, 0, n)
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		m, err := lr.Read(b[len(b):cap(b)])
		b = b[:len(b)+m]
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%w: over %d bytes", ErrTooLarge, limit)
	}
	return b, nil
}

// ReadFile reads the file at path with ReadAll, presized by its size.
func ReadFile(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var size int64
	if st, err := f.Stat(); err == nil {
		size = st.Size()
	}
	b, err := ReadAll(f, limit, size)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return b, nil
}
