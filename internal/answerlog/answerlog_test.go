package answerlog

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pawlogs/paw/compiler"
)

// Eight reporters pushing 1,000 answers each at once lose none, and the
// log reopens with all of them.
func TestConcurrentAppendsLoseNothing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "errs.answers.jsonl")
	l, err := Open(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for r := 0; r < 8; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 1000; i++ {
				a := compiler.Answer{Line: fmt.Sprintf("reporter%c event%c%c happened", 'a'+r, 'a'+i%26, 'a'+i/26), Label: "error", By: compiler.ByModel, Time: time.Unix(int64(i), 0)}
				if err := l.Append(a); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	l.Close()
	l, err = Open(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if n := l.Len(); n != 8000 {
		t.Fatalf("%d answers after reopening, want 8000", n)
	}
}

// A line torn by a crash is dropped, the rest kept; appends go on.
func TestTornLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.jsonl")
	l, _ := Open(path, 0)
	l.Append(compiler.Answer{Line: "disk failed", Label: "error", By: compiler.ByPerson})
	l.Close()
	f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(`{"line":"half`)
	f.Close()
	l, err := Open(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	l.Append(compiler.Answer{Line: "all good", Label: "ok", By: compiler.ByModel})
	l.Close()
	l, _ = Open(path, 0)
	defer l.Close()
	if got := l.All(); len(got) != 2 || got[1].Line != "all good" {
		t.Fatalf("answers %+v", got)
	}
}

// Past its bound the log keeps the best answer per template.
func TestCompactionBoundsTheLog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.jsonl")
	l, _ := Open(path, 100)
	defer l.Close()
	for i := 0; i < 1000; i++ {
		by := compiler.ByModel
		if i == 500 {
			by = compiler.ByPerson
		}
		l.Append(compiler.Answer{Line: fmt.Sprintf("request %d failed", i), Label: "error", By: by, Time: time.Unix(int64(i), 0)})
	}
	got := l.All()
	if len(got) > 100 || got[0].By != compiler.ByPerson || got[0].Line != "request 500 failed" {
		t.Fatalf("%d answers, the first %+v: want at most 100, the person's kept", len(got), got[0])
	}
}

// TestByteBound: past its byte bound a log keeps its newest answers in
// half the bound, on disk and after reopening.
func TestByteBound(t *testing.T) {
	path := filepath.Join(t.TempDir(), "errs.answers.jsonl")
	l, err := Open(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	l.maxBytes = 8 << 10
	pad := strings.Repeat("x", 400)
	for i := 0; i < 100; i++ { // about 50 KiB, each line its own template
		if err := l.Append(NewAnswer(fmt.Sprintf("service%c%c failed %s", 'a'+i%26, 'a'+i/26, pad), "error", compiler.ByModel, "id", time.Unix(int64(i), 0))); err != nil {
			t.Fatal(err)
		}
		if st, err := os.Stat(path); err != nil || st.Size() > int64(l.maxBytes) {
			t.Fatalf("after %d answers the file is %v bytes (%v), over %d", i+1, st.Size(), err, l.maxBytes)
		}
	}
	l.Close()
	l, err = Open(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	all := l.All()
	if len(all) == 0 || len(all) > 20 || !strings.HasPrefix(all[len(all)-1].Line, "servicevd failed") {
		t.Fatalf("%d answers kept, the last %q; want the newest few", len(all), all[len(all)-1].Line)
	}
}

// TestDir: a program's log is opened once, in a folder made on first use,
// and closed with the folder.
func TestDir(t *testing.T) {
	path := filepath.Join(t.TempDir(), "deep", ".answers")
	d := NewDir(path)
	a, err := d.Log("errs")
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := d.Log("errs"); again != a {
		t.Fatal("a second Log opened the file again")
	}
	if err := a.Append(NewAnswer("disk failed", "error", compiler.ByModel, "id", time.Unix(1, 0))); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Append(NewAnswer("disk failed again", "error", compiler.ByModel, "id", time.Unix(2, 0))); err == nil {
		t.Fatal("a closed log took an answer")
	}
	data, err := os.ReadFile(filepath.Join(path, "errs.answers.jsonl"))
	if err != nil || strings.Count(string(data), "\n") != 1 {
		t.Fatalf("log file: %q, %v", data, err)
	}
}
