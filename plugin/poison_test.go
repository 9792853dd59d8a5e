package plugin_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pawlogs/paw/internal/testkit"
	"github.com/pawlogs/paw/plugin"
)

// poisonRecord: every fourth record lacks the field, has a number there,
// or a map; the rest are good.
func poisonRecord(seq int) (map[string]interface{}, string) {
	rec := testRecord(seq)
	switch seq % 4 {
	case 1:
		delete(rec, "log")
		return rec, "field_missing"
	case 2:
		rec["log"] = seq
		return rec, "not_string"
	case 3:
		rec["log"] = map[string]interface{}{"nested": "x"}
		return rec, "not_string"
	}
	return rec, ""
}

func writePoisonChunks(t *testing.T, dir string, n, per int) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	h := plugin.EncodeHandle()
	for lo := 0; lo < n; lo += per {
		var buf []byte
		for seq := lo; seq < min(lo+per, n); seq++ {
			rec, _ := poisonRecord(seq)
			if err := plugin.EncodeEvent(h, &buf, eventTime(seq), rec); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("chunk-%06d", lo)), buf, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestPoisonRecordsNeverFailAChunk(t *testing.T) {
	const n, per = 2000, 100
	dir := t.TempDir()
	pipe := writePipeline(t, dir, "tag.yaml", tagPipeline)
	writePoisonChunks(t, filepath.Join(dir, "chunks"), n, per)
	// A chunk that is not msgpack at all, and one cut short.
	good := testkit.ReadFile(t, filepath.Join(dir, "chunks", "chunk-000000"))
	if err := os.WriteFile(filepath.Join(dir, "garbage"), []byte("\xc1\xc1 not msgpack"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "truncated"), good[:len(good)-7], 0o644); err != nil {
		t.Fatal(err)
	}
	h := startHarness(t)
	out, dl := filepath.Join(dir, "out.jsonl"), filepath.Join(dir, "dead.jsonl")
	passOut := filepath.Join(dir, "pass.jsonl")
	if got := h.instance(1, map[string]string{"pipeline": pipe, "programs_dir": build.programs, "output": "file://" + out, "dead_letter": dl}); got != "init 1 1" {
		t.Fatalf("init: %s", got)
	}
	if got := h.instance(2, map[string]string{"pipeline": pipe, "programs_dir": build.programs, "output": "file://" + passOut}); got != "init 2 1" {
		t.Fatalf("init: %s", got)
	}
	for _, inst := range []int{1, 2} {
		if got := h.do(fmt.Sprintf("flushdir %d app %s 2", inst, filepath.Join(dir, "chunks"))); !strings.Contains(got, fmt.Sprintf("ok=%d retry=0 error=0", n/per)) {
			t.Fatalf("flush: %s", got)
		}
	}
	for _, f := range []string{"garbage", "truncated"} {
		if got := h.do(fmt.Sprintf("flush 1 app %s", filepath.Join(dir, f))); got != "flush 1 1" {
			t.Fatalf("%s chunk: %s, want FLB_OK: a bad chunk must not be retried forever", f, got)
		}
	}
	h.do("exit 1")
	h.do("exit 2")

	// With dead_letter: good records tagged in out, poison with reasons in
	// dl. The truncated chunk adds its records before the cut (0..98).
	wantGood, wantPoison := 0, 0
	for seq := 0; seq < n+per-1; seq++ {
		if _, reason := poisonRecord(seq % n); reason == "" {
			wantGood++
		} else {
			wantPoison++
		}
	}
	lines := readLines(t, out)
	if len(lines) != wantGood {
		t.Fatalf("%d tagged records, want %d", len(lines), wantGood)
	}
	for _, l := range lines {
		if _, reason := poisonRecord(seqOf(t, l)); reason != "" || l.Paw["noise"].Label == "" {
			t.Fatalf("record %d in the output: %+v", seqOf(t, l), l)
		}
	}
	reasons := map[string]int{}
	chunks := 0
	for _, raw := range readRaw(t, dl) {
		var dd map[string]interface{}
		if err := json.Unmarshal(raw, &dd); err != nil {
			t.Fatal(err)
		}
		reason := dd["reason"].(string)
		if reason == "malformed_chunk" {
			if dd["chunk_base64"] == "" || dd["error"] == "" {
				t.Fatalf("malformed chunk dead letter without the bytes: %s", raw)
			}
			chunks++
			continue
		}
		rec := dd["record"].(map[string]interface{})
		seq := int(rec["seq"].(float64))
		if _, want := poisonRecord(seq); want != reason {
			t.Fatalf("record %d dead-lettered as %s, want %s", seq, reason, want)
		}
		reasons[reason]++
	}
	if chunks != 2 || reasons["field_missing"]+reasons["not_string"] != wantPoison {
		t.Fatalf("dead letters: %v and %d chunks", reasons, chunks)
	}
	// Without dead_letter: poison records pass through untagged.
	pass := readLines(t, passOut)
	untagged := 0
	for _, l := range pass {
		if len(l.Paw) == 0 {
			untagged++
			if _, reason := poisonRecord(seqOf(t, l)); reason == "" {
				t.Fatalf("good record %d untagged", seqOf(t, l))
			}
		}
	}
	if len(pass) != n || untagged != 3*n/4 {
		t.Fatalf("pass-through instance: %d records, %d untagged; want %d and %d", len(pass), untagged, n, 3*n/4)
	}
	t.Logf("dead letters by reason: %v, malformed chunks: %d; without dead_letter %d poison records passed untagged", reasons, chunks, untagged)
}

func readRaw(t *testing.T, path string) [][]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out [][]byte
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		out = append(out, append([]byte(nil), sc.Bytes()...))
	}
	return out
}

// Invalid UTF-8 in the text or anywhere in a record is set aside as
// invalid_utf8, as the processor does with such JSON records, and counted;
// it was written on with U+FFFD in place of the bytes.
func TestInvalidUTF8IsDeadLettered(t *testing.T) {
	dir := t.TempDir()
	pipe := writePipeline(t, dir, "tag.yaml", tagPipeline)
	recs := []map[string]interface{}{
		{"log": "ERROR disk \xff\xfe failed", "seq": 0},
		{"log": "INFO fine", "seq": 1, "host": "web-\xc3\x28"},
		{"log": "INFO fine", "seq": 2, "kubernetes": map[string]interface{}{"pod": "a\xffb"}},
		{"log": "INFO all good", "seq": 3},
	}
	h := plugin.EncodeHandle()
	var buf []byte
	for i, r := range recs {
		if err := plugin.EncodeEvent(h, &buf, eventTime(i), r); err != nil {
			t.Fatal(err)
		}
	}
	chunk := filepath.Join(dir, "chunk")
	os.WriteFile(chunk, buf, 0o644)
	out, dl := filepath.Join(dir, "out.jsonl"), filepath.Join(dir, "dead.jsonl")
	hs := startHarness(t)
	if got := hs.instance(1, map[string]string{"pipeline": pipe, "programs_dir": build.programs, "output": "file://" + out, "dead_letter": dl}); got != "init 1 1" {
		t.Fatalf("init: %s", got)
	}
	if got := hs.do("flush 1 app " + chunk); got != "flush 1 1" {
		t.Fatalf("flush: %s", got)
	}
	hs.do("exit 1")
	if lines := readLines(t, out); len(lines) != 1 || seqOf(t, lines[0]) != 3 {
		t.Fatalf("output %+v, want record 3 only", lines)
	}
	dead := readRaw(t, dl)
	if len(dead) != 3 {
		t.Fatalf("%d dead letters, want 3", len(dead))
	}
	for _, raw := range dead {
		if !strings.Contains(string(raw), `"reason":"invalid_utf8"`) {
			t.Errorf("dead letter %s", raw)
		}
	}
	if !hs.stderrContains("poison=3 dead_lettered=3") {
		t.Errorf("not counted: %s", hs.stderr.String())
	}
}
