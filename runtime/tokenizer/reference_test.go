package tokenizer

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/pawlogs/paw/runtime/encodertest"
)

// referenceKit is where scripts/install-tokref.sh put Hugging Face
// tokenizers and the BERT vocabulary; make test installs it. Without it the
// test skips, except under CI, where it must run.
func referenceKit(t *testing.T) (dir, node string) {
	dir = os.Getenv("PAW_TOKREF_DIR")
	if dir == "" {
		base := os.Getenv("XDG_DATA_HOME")
		if base == "" {
			home, _ := os.UserHomeDir()
			base = filepath.Join(home, ".local", "share")
		}
		dir = filepath.Join(base, "paw", "tokref")
	}
	node, err := exec.LookPath("node")
	if _, serr := os.Stat(filepath.Join(dir, "VERSION")); serr != nil || err != nil {
		msg := fmt.Sprintf("no tokenizer reference (%v, %v): run scripts/install-tokref.sh (make tokref)", serr, err)
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return dir, node
}

// trickyTexts exercise normalization and splitting at their edges.
var trickyTexts = []string{
	"Connection REFUSED to db-01:5432 after 3 retries!",
	"Café Münster naïve façade résumé Ångström",
	"e\u0301 combining marks: a\u0308 o\u0302",
	"日本語のテキスト 时间 한국어 텍스트",
	"🔥 disk on fire 🚒 ✔ ✘ ★",
	"\x00nul \x01soh \x7fdel \u200bzero\u200dwidth \ufeffbom",
	"tabs\tand\nnewlines\r\nand  double  spaces",
	"   leading and trailing   ",
	"it's don't we'll I'M you'RE they've she'd",
	"'quoted' \"double\" `back` ''empty''",
	"a\u00a0b nbsp and\u2028line separator",
	"ﬁ ligature, Ⅻ roman, ² superscript, ½ fraction",
	"مرحبا بالعالم שלום עולם สวัสดีชาวโลก",
	"¿Qué? ¡Sí! «quotes» — dash … ellipsis",
	"3.14 1,000,000 0x1F -42 +7 1e-9 127.0.0.1 ::1",
	"https://example.com/path?q=a&b=c#frag /var/log/syslog C:\\Windows",
	strings.Repeat("supercalifragilistic", 8) + " after a very long word",
	"ERROR [main] o.a.h.s.DataNode: java.io.IOException: Connection reset by peer",
	"",
	" ",
	"\u3000ideographic space",
	"Ελληνικά Кириллица Ünïcödé",
}

// referenceTexts are the tricky texts and, when ../shared is there, every
// Loghub line.
func referenceTexts(t *testing.T) []string {
	return append(slices.Clone(trickyTexts), loghubLines(t)...)
}

// loghubLines are the Loghub sample lines of ../shared; none without it.
func loghubLines(tb testing.TB) []string {
	var lines []string
	files, _ := filepath.Glob("../../../shared/data/loghub/*/*.log")
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			tb.Fatal(err)
		}
		sc := bufio.NewScanner(bytes.NewReader(data))
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			lines = append(lines, sc.Text())
		}
	}
	return lines
}

func runNode(t *testing.T, kit, node string, args ...string) {
	t.Helper()
	cmd := exec.Command(node, append([]string{"../../scripts/tokref.js"}, args...)...)
	cmd.Env = append(os.Environ(), "NODE_PATH="+filepath.Join(kit, "node_modules"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("node tokref.js %v: %v\n%s", args, err, out)
	}
}

// TestMatchesHuggingFace encodes the same texts with the Hugging Face
// tokenizers library and with this package, for a real BERT uncased
// vocabulary, a byte-level BPE the library trained, and the tiny test
// tokenizer, and wants the same ids for every text.
func TestMatchesHuggingFace(t *testing.T) {
	kit, node := referenceKit(t)
	dir := t.TempDir()
	texts := referenceTexts(t)
	var jsonl, plain bytes.Buffer
	for _, s := range texts {
		b, _ := json.Marshal(s)
		jsonl.Write(append(b, '\n'))
		plain.WriteString(strings.ReplaceAll(s, "\n", " ") + "\n")
	}
	linesPath, trainPath := filepath.Join(dir, "lines.jsonl"), filepath.Join(dir, "train.txt")
	os.WriteFile(linesPath, jsonl.Bytes(), 0o644)
	os.WriteFile(trainPath, plain.Bytes(), 0o644)

	tiny, _ := encodertest.TokenizerJSON(encodertest.DefaultWords)
	os.WriteFile(filepath.Join(dir, "tiny.json"), tiny, 0o644)
	runNode(t, kit, node, "bert", filepath.Join(kit, "bert", "vocab.json"), filepath.Join(dir, "bert.json"))
	runNode(t, kit, node, "bpe", trainPath, filepath.Join(dir, "bpe.json"))

	for _, name := range []string{"bert", "bpe", "tiny"} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(dir, name+".json")
			refPath := filepath.Join(dir, name+".ids")
			runNode(t, kit, node, "encode", path, linesPath, refPath)
			tok, err := Load(path)
			if err != nil {
				t.Fatal(err)
			}
			data, err := os.ReadFile(refPath)
			if err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
			if len(lines) != len(texts) {
				t.Fatalf("%d reference encodings for %d texts", len(lines), len(texts))
			}
			mismatches, tokens := 0, 0
			var buf []int64
			for i, l := range lines {
				var want []int64
				if err := json.Unmarshal([]byte(l), &want); err != nil {
					t.Fatal(err)
				}
				buf = tok.Encode(buf[:0], texts[i], 0)
				tokens += len(want)
				if !slices.Equal(buf, want) {
					if mismatches < 5 {
						t.Errorf("%q:\n go %v\n hf %v", texts[i], buf, want)
					}
					mismatches++
				}
			}
			t.Logf("%s (%s): %d texts, %d tokens, %d mismatches", name, tok, len(texts), tokens, mismatches)
			if mismatches > 0 {
				t.Fatalf("%d of %d texts tokenized differently from Hugging Face tokenizers", mismatches, len(texts))
			}
		})
	}
}
