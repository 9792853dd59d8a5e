// Package encodertest writes tiny random-weight BERT-style encoders, as
// ONNX graphs with a WordPiece tokenizer.json, for tests of the encoder-v1
// interpreter: nothing can be downloaded in tests, and a real encoder's
// weights do not matter to what they check.
package encodertest

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/pawlogs/paw/internal/onnxpb"
)

// Options size the encoder. Zero values take the defaults.
type Options struct {
	// Seed draws the weights. Different seeds give different encoders.
	Seed uint64
	// Dim is the hidden width. Default: 32.
	Dim int
	// Words are the tokenizer's whole-word vocabulary, besides the special
	// tokens, single characters and a few ## suffixes. Default: DefaultWords.
	Words []string
	// MaxPositions bounds the sequence length. Default: 128.
	MaxPositions int
	// Pooled makes the encoder output one vector per record
	// (sentence_embedding [batch, dim]) instead of last_hidden_state.
	Pooled bool
}

// DefaultWords is a small log vocabulary.
var DefaultWords = strings.Fields(`error failed failure refused timeout timed out exception fatal panic denied
unable cannot lost crash crashed killed abort aborted invalid corrupt reset broken
info ok success succeeded completed started starting finished done ready connected
accepted loaded saved healthy running stopped request response connection user job
disk memory cpu db database cache queue auth login session server client node worker
to from for of on in at the a is was with after by`)

// Write writes model.onnx and tokenizer.json into dir (created) and
// returns dir.
func Write(dir string, o Options) (string, error) {
	if o.Dim == 0 {
		o.Dim = 32
	}
	if o.MaxPositions == 0 {
		o.MaxPositions = 128
	}
	if o.Words == nil {
		o.Words = DefaultWords
	}
	tok, vocab := TokenizerJSON(o.Words)
	model := Model(o, vocab)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, "model.onnx"), model, 0o644); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, "tokenizer.json"), tok, 0o644); err != nil {
		return "", err
	}
	return dir, nil
}

// TokenizerJSON is a BERT-style (uncased WordPiece) tokenizer.json over
// words, and its vocabulary size.
func TokenizerJSON(words []string) ([]byte, int) {
	vocab := map[string]int{}
	add := func(t string) {
		if _, ok := vocab[t]; !ok {
			vocab[t] = len(vocab)
		}
	}
	for _, t := range []string{"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"} {
		add(t)
	}
	sorted := append([]string(nil), words...)
	sort.Strings(sorted)
	for _, w := range sorted {
		add(strings.ToLower(w))
	}
	for c := '!'; c <= '~'; c++ {
		if c >= 'A' && c <= 'Z' {
			continue
		}
		add(string(c))
		add("##" + string(c))
	}
	for _, s := range []string{"##s", "##ed", "##ing", "##er", "##ion"} {
		add(s)
	}
	special := func(id int, content string) map[string]any {
		return map[string]any{"id": id, "content": content, "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true}
	}
	data, err := json.MarshalIndent(map[string]any{
		"version":       "1.0",
		"truncation":    nil,
		"padding":       nil,
		"added_tokens":  []any{special(0, "[PAD]"), special(1, "[UNK]"), special(2, "[CLS]"), special(3, "[SEP]"), special(4, "[MASK]")},
		"normalizer":    map[string]any{"type": "BertNormalizer", "clean_text": true, "handle_chinese_chars": true, "strip_accents": nil, "lowercase": true},
		"pre_tokenizer": map[string]any{"type": "BertPreTokenizer"},
		"post_processor": map[string]any{
			"type":   "TemplateProcessing",
			"single": []any{map[string]any{"SpecialToken": map[string]any{"id": "[CLS]", "type_id": 0}}, map[string]any{"Sequence": map[string]any{"id": "A", "type_id": 0}}, map[string]any{"SpecialToken": map[string]any{"id": "[SEP]", "type_id": 0}}},
			"pair":   []any{},
			"special_tokens": map[string]any{
				"[CLS]": map[string]any{"id": "[CLS]", "ids": []int{2}, "tokens": []string{"[CLS]"}},
				"[SEP]": map[string]any{"id": "[SEP]", "ids": []int{3}, "tokens": []string{"[SEP]"}},
			},
		},
		"decoder": map[string]any{"type": "WordPiece", "prefix": "##", "cleanup": true},
		"model":   map[string]any{"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##", "max_input_chars_per_word": 100, "vocab": vocab},
	}, "", " ")
	if err != nil {
		panic(err) // maps of strings and ints always marshal
	}
	return data, len(vocab)
}

// Model is a one-layer, single-head BERT-style encoder over vocab ids:
// word, position and type embeddings, layer norm, masked self-attention
// and a feed-forward block, each with a residual and a layer norm.
func Model(o Options, vocab int) []byte {
	h := o.Dim
	rng := rand.New(rand.NewPCG(o.Seed, 0xe4c0de7))
	randn := func(n int, scale float64) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(rng.NormFloat64() * scale)
		}
		return v
	}
	ones := func(n int) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = 1
		}
		return v
	}
	H, V, P := int64(h), int64(vocab), int64(o.MaxPositions)
	g := &onnxpb.Graph{}
	mm := func(name, x, w, b string) string {
		g.Node("MatMul", name+"_mm", []string{x, w}, []string{name + "_xw"})
		g.Node("Add", name+"_add", []string{name + "_xw", b}, []string{name})
		return name
	}
	ln := func(name, x string) string {
		g.Node("LayerNormalization", name, []string{x, name + "_g", name + "_b"}, []string{name + "_out"}, onnxpb.IntAttr("axis", -1), onnxpb.FloatAttr("epsilon", 1e-12))
		return name + "_out"
	}
	g.Node("Gather", "word", []string{"word_emb", "input_ids"}, []string{"we"}, onnxpb.IntAttr("axis", 0))
	g.Node("Gather", "type", []string{"type_emb", "token_type_ids"}, []string{"te"}, onnxpb.IntAttr("axis", 0))
	g.Node("Shape", "shape", []string{"input_ids"}, []string{"ids_shape"})
	g.Node("Slice", "seqlen", []string{"ids_shape", "one", "two", "zero"}, []string{"seq_len"})
	g.Node("Slice", "positions", []string{"pos_emb", "zero", "seq_len", "zero"}, []string{"pe"})
	g.Node("Add", "we_te", []string{"we", "te"}, []string{"wt"})
	g.Node("Add", "wt_pe", []string{"wt", "pe"}, []string{"emb"})
	x := ln("ln0", "emb")
	q, k, v := mm("q", x, "wq", "bq"), mm("k", x, "wk", "bk"), mm("v", x, "wv", "bv")
	g.Node("Transpose", "kt", []string{k}, []string{"k_t"}, onnxpb.IntsAttr("perm", 0, 2, 1))
	g.Node("MatMul", "scores", []string{q, "k_t"}, []string{"qk"})
	g.Node("Mul", "scale", []string{"qk", "inv_sqrt_h"}, []string{"qk_scaled"})
	g.Node("Cast", "maskf", []string{"attention_mask"}, []string{"mask_f"}, onnxpb.IntAttr("to", onnxpb.Float))
	g.Node("Unsqueeze", "mask3", []string{"mask_f", "one"}, []string{"mask_3"})
	g.Node("Sub", "mask_inv", []string{"mask_3", "onef"}, []string{"mask_neg"})
	g.Node("Mul", "mask_big", []string{"mask_neg", "big"}, []string{"mask_bias"})
	g.Node("Add", "masked", []string{"qk_scaled", "mask_bias"}, []string{"qk_masked"})
	g.Node("Softmax", "attn", []string{"qk_masked"}, []string{"attn_p"}, onnxpb.IntAttr("axis", -1))
	g.Node("MatMul", "ctx", []string{"attn_p", v}, []string{"context"})
	ao := mm("ao", "context", "wo", "bo")
	g.Node("Add", "res1", []string{x, ao}, []string{"r1"})
	x1 := ln("ln1", "r1")
	f1 := mm("f1", x1, "w1", "b1")
	g.Node("Tanh", "act", []string{f1}, []string{"f1_act"})
	f2 := mm("f2", "f1_act", "w2", "b2")
	g.Node("Add", "res2", []string{x1, f2}, []string{"r2"})
	g.Node("LayerNormalization", "ln2", []string{"r2", "ln2_g", "ln2_b"}, []string{"last_hidden_state"}, onnxpb.IntAttr("axis", -1), onnxpb.FloatAttr("epsilon", 1e-12))
	if o.Pooled {
		g.Node("ReduceMean", "pool", []string{"last_hidden_state", "one"}, []string{"sentence_embedding"}, onnxpb.IntAttr("keepdims", 0))
	}
	g.Name("tiny_bert")
	s := 1 / math.Sqrt(float64(h))
	for _, t := range []struct {
		name string
		dims []int64
		data []float32
	}{
		{"word_emb", []int64{V, H}, randn(vocab*h, 1)},
		{"type_emb", []int64{2, H}, randn(2*h, 0.1)},
		{"pos_emb", []int64{P, H}, randn(o.MaxPositions*h, 0.1)},
		{"ln0_g", []int64{H}, ones(h)}, {"ln0_b", []int64{H}, make([]float32, h)},
		{"ln1_g", []int64{H}, ones(h)}, {"ln1_b", []int64{H}, make([]float32, h)},
		{"ln2_g", []int64{H}, ones(h)}, {"ln2_b", []int64{H}, make([]float32, h)},
		{"wq", []int64{H, H}, randn(h*h, s)}, {"bq", []int64{H}, make([]float32, h)},
		{"wk", []int64{H, H}, randn(h*h, s)}, {"bk", []int64{H}, make([]float32, h)},
		{"wv", []int64{H, H}, randn(h*h, s)}, {"bv", []int64{H}, make([]float32, h)},
		{"wo", []int64{H, H}, randn(h*h, s)}, {"bo", []int64{H}, make([]float32, h)},
		{"w1", []int64{H, 2 * H}, randn(2*h*h, s)}, {"b1", []int64{2 * H}, make([]float32, 2*h)},
		{"w2", []int64{2 * H, H}, randn(2*h*h, s/math.Sqrt2)}, {"b2", []int64{H}, make([]float32, h)},
		{"inv_sqrt_h", []int64{}, []float32{float32(s)}},
		{"onef", []int64{}, []float32{1}},
		{"big", []int64{}, []float32{10000}},
	} {
		g.Initializer(onnxpb.FloatTensor(t.name, t.dims, t.data))
	}
	g.Initializer(onnxpb.Int64Tensor("zero", []int64{1}, []int64{0}))
	g.Initializer(onnxpb.Int64Tensor("one", []int64{1}, []int64{1}))
	g.Initializer(onnxpb.Int64Tensor("two", []int64{1}, []int64{2}))
	for _, in := range []string{"input_ids", "attention_mask", "token_type_ids"} {
		g.Input(onnxpb.ValueInfo(in, onnxpb.Int64, "batch", "sequence"))
	}
	if o.Pooled {
		g.Output(onnxpb.ValueInfo("sentence_embedding", onnxpb.Float, "batch", h))
	} else {
		g.Output(onnxpb.ValueInfo("last_hidden_state", onnxpb.Float, "batch", "sequence", h))
	}
	return g.Model(fmt.Sprintf("encodertest seed %d", o.Seed))
}
