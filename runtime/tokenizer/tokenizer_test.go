package tokenizer

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/pawlogs/paw/runtime/encodertest"
)

func vocabOf(tokens ...string) map[string]int64 {
	v := map[string]int64{}
	for i, t := range tokens {
		v[t] = int64(i)
	}
	return v
}

func bertJSON(t testing.TB, lowercase bool) []byte {
	vocab := vocabOf("[PAD]", "[UNK]", "[CLS]", "[SEP]", "connection", "refused", "to", "db", "##1", "##2", "un", "##able", "!", ".", "cafe", "时", "error", "err", "##or", "##s")
	data, err := json.Marshal(map[string]any{
		"added_tokens":  []map[string]any{{"id": 0, "content": "[PAD]", "special": true}},
		"normalizer":    map[string]any{"type": "BertNormalizer", "clean_text": true, "handle_chinese_chars": true, "strip_accents": nil, "lowercase": lowercase},
		"pre_tokenizer": map[string]any{"type": "BertPreTokenizer"},
		"post_processor": map[string]any{"type": "TemplateProcessing",
			"single":         []any{map[string]any{"SpecialToken": map[string]any{"id": "[CLS]", "type_id": 0}}, map[string]any{"Sequence": map[string]any{"id": "A", "type_id": 0}}, map[string]any{"SpecialToken": map[string]any{"id": "[SEP]", "type_id": 0}}},
			"special_tokens": map[string]any{"[CLS]": map[string]any{"id": "[CLS]", "ids": []int{2}}, "[SEP]": map[string]any{"id": "[SEP]", "ids": []int{3}}}},
		"model": map[string]any{"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##", "max_input_chars_per_word": 100, "vocab": vocab},
	})
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestWordPiece(t *testing.T) {
	tok, err := Parse(bertJSON(t, true))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		text string
		max  int
		want []int64
	}{
		{"Connection REFUSED to db!", 0, []int64{2, 4, 5, 6, 7, 12, 3}},
		{"unable", 0, []int64{2, 10, 11, 3}},
		{"errors", 0, []int64{2, 16, 19, 3}},            // longest match first: error + ##s
		{"db12", 0, []int64{2, 7, 8, 9, 3}},             // subwords
		{"dbx", 0, []int64{2, 1, 3}},                    // one unknown piece: the whole word is [UNK]
		{"Café\tto\x00 db", 0, []int64{2, 14, 6, 7, 3}}, // accents stripped, control chars dropped
		{"时", 0, []int64{2, 15, 3}},
		{"connection refused to db", 4, []int64{2, 4, 5, 3}}, // cut, specials kept
		{"", 0, []int64{2, 3}},
	}
	for _, tc := range tests {
		got := tok.Encode(nil, tc.text, tc.max)
		if !slices.Equal(got, tc.want) {
			t.Errorf("Encode(%q, %d) = %v, want %v", tc.text, tc.max, got, tc.want)
		}
	}
	if tok.PadID() != 0 || tok.VocabSize() != 20 {
		t.Fatalf("pad %d, vocab %d", tok.PadID(), tok.VocabSize())
	}
	cased, err := Parse(bertJSON(t, false))
	if err != nil {
		t.Fatal(err)
	}
	if got := cased.Encode(nil, "Connection", 0); !slices.Equal(got, []int64{2, 1, 3}) {
		t.Errorf("cased tokenizer lowercased: %v", got)
	}
}

func bpeJSON(t testing.TB, merges any) []byte {
	// Byte-level symbols: Ġ is the space.
	vocab := vocabOf("<s>", "</s>", "<pad>", "<unk>", "e", "r", "o", "Ġ", "d", "b", "er", "err", "erro", "error", "Ġd", "Ġdb", "!", "1", "2", "12", "'", "s", "'s", "Ċ")
	data, err := json.Marshal(map[string]any{
		"added_tokens":   []map[string]any{{"id": 2, "content": "<pad>", "special": true}},
		"normalizer":     nil,
		"pre_tokenizer":  map[string]any{"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true},
		"post_processor": map[string]any{"type": "RobertaProcessing", "sep": []any{"</s>", 1}, "cls": []any{"<s>", 0}},
		"model":          map[string]any{"type": "BPE", "dropout": nil, "unk_token": "<unk>", "vocab": vocab, "merges": merges},
	})
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestBPE(t *testing.T) {
	for _, merges := range []any{
		[]string{"e r", "er r", "err o", "erro r", "Ġ d", "Ġd b", "1 2", "' s"},
		[][2]string{{"e", "r"}, {"er", "r"}, {"err", "o"}, {"erro", "r"}, {"Ġ", "d"}, {"Ġd", "b"}, {"1", "2"}, {"'", "s"}},
	} {
		tok, err := Parse(bpeJSON(t, merges))
		if err != nil {
			t.Fatal(err)
		}
		tests := []struct {
			text string
			want []int64
		}{
			{"error db!", []int64{0, 13, 15, 16, 1}},
			{"error's 12", []int64{0, 13, 22, 7, 19, 1}},
			{"db\n", []int64{0, 8, 9, 23, 1}},
			{"x", []int64{0, 3, 1}}, // not in the vocab: unk
		}
		for _, tc := range tests {
			if got := tok.Encode(nil, tc.text, 0); !slices.Equal(got, tc.want) {
				t.Errorf("Encode(%q) = %v, want %v", tc.text, got, tc.want)
			}
		}
		if tok.PadID() != 2 {
			t.Errorf("pad %d", tok.PadID())
		}
	}
}

// TestText spells ids back as their pieces, words apart.
func TestText(t *testing.T) {
	bert, err := Parse(bertJSON(t, true))
	if err != nil {
		t.Fatal(err)
	}
	bp, err := Parse(bpeJSON(t, []string{"e r", "er r", "err o", "erro r", "Ġ d", "Ġd b", "1 2", "' s"}))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		tok        *Tokenizer
		text, want string
	}{
		{bert, "Connection REFUSED to db12!", "connection refused to db12 !"},
		{bert, "errors dbx", "errors [UNK]"},
		{bert, "", ""},
		{bp, "error db!", "error db!"},
		{bp, "error's 12", "error's 12"},
	}
	for _, tc := range tests {
		ids := tc.tok.Encode(nil, tc.text, 0)
		if got := tc.tok.Text(ids); got != tc.want {
			t.Errorf("Text(Encode(%q)) = %q, want %q", tc.text, got, tc.want)
		}
	}
	if got := bert.Text([]int64{4, 999}); got != "connection [?]" {
		t.Errorf("an id outside the vocab spelled %q", got)
	}
}

func TestGPT2Split(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"Hello world", []string{"Hello", " world"}},
		{"it's 42 ok!!", []string{"it", "'s", " 42", " ok", "!!"}},
		{"a  b", []string{"a", " ", " b"}},
		{"a\nb", []string{"a", "\n", "b"}},
		{"a \n b", []string{"a", " \n", " b"}},
		{"end  ", []string{"end", "  "}},
		{"x'y", []string{"x", "'", "y"}},
	}
	for _, tc := range tests {
		var got []string
		gpt2Split(tc.in, func(w string) bool { got = append(got, w); return true })
		if !slices.Equal(got, tc.want) {
			t.Errorf("split(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if strings.Join(got, "") != tc.in {
			t.Errorf("split(%q) lost text", tc.in)
		}
	}
}

func TestParseRefuses(t *testing.T) {
	tests := []struct{ name, json, want string }{
		{"not json", "{", "not a tokenizer.json"},
		{"unigram", `{"model": {"type": "Unigram"}}`, `type "Unigram" is not supported`},
		{"no model", `{}`, "model"},
		{"unk missing", `{"model": {"type": "WordPiece", "unk_token": "[UNK]", "vocab": {"a": 0}}}`, "unk_token"},
		{"metaspace", `{"pre_tokenizer": {"type": "Metaspace"}, "model": {"type": "WordPiece", "unk_token": "a", "vocab": {"a": 0}}}`, `pre_tokenizer: type "Metaspace"`},
		{"dropout", `{"model": {"type": "BPE", "dropout": 0.1, "vocab": {"a": 0}, "merges": []}}`, "dropout"},
		{"bad merge", `{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["ab"]}}`, "merge 0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Parse([]byte(tc.json)); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}

func FuzzEncode(f *testing.F) {
	bert, _ := Parse(bertJSON(f, true))
	bp, _ := Parse(bpeJSON(f, []string{"e r", "er r", "Ġ d"}))
	for _, s := range []string{"Connection refused!", "error's 12\n", "时间 café", "\xff\xfe", "   "} {
		f.Add(s, 8)
	}
	f.Fuzz(func(t *testing.T, s string, max int) {
		max %= 64
		for _, tok := range []*Tokenizer{bert, bp} {
			ids := tok.Encode(nil, s, max)
			if max >= 2 && len(ids) > max {
				t.Fatalf("%d ids over max %d", len(ids), max)
			}
			for _, id := range ids {
				if id < 0 || int(id) >= tok.VocabSize() {
					t.Fatalf("id %d outside the vocab of %d", id, tok.VocabSize())
				}
			}
			_ = tok.Text(ids) // must not panic
		}
	})
}

func FuzzParse(f *testing.F) {
	f.Add(bertJSON(f, true))
	f.Add(bpeJSON(f, []string{"e r"}))
	f.Fuzz(func(t *testing.T, data []byte) {
		tok, err := Parse(data)
		if err != nil {
			return
		}
		tok.Encode(nil, "connection refused 12 times!", 16)
	})
}

// BenchmarkEncode tokenizes Loghub lines (or a built-in line) with the
// tiny test WordPiece tokenizer.
func BenchmarkEncode(b *testing.B) {
	data, _ := encodertest.TokenizerJSON(encodertest.DefaultWords)
	tok, err := Parse(data)
	if err != nil {
		b.Fatal(err)
	}
	lines := append([]string{"2026-03-04T09:00:01.123Z ERROR [orders-api] request 77 failed: connection to db-01 refused after 3 retries"}, loghubLines(b)...)
	var buf []int64
	bytes := 0
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		l := lines[i%len(lines)]
		buf = tok.Encode(buf[:0], l, 128)
		bytes += len(l)
	}
	b.ReportMetric(float64(bytes)/float64(b.N), "bytes/line")
}
