// Package tokenizer reads a Hugging Face tokenizer.json and turns text into
// the token ids a sentence encoder was trained on, in Go: WordPiece (BERT,
// MiniLM, BGE) and byte-level BPE (RoBERTa, GPT-2 style) models, with their
// usual normalizers, pre-tokenizers and post-processors. Components it does
// not implement are refused by name when the file is read, never ignored.
package tokenizer

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
)

// MaxFileBytes bounds a tokenizer.json; real ones are a few MiB.
const MaxFileBytes = 64 << 20

// Tokenizer encodes text. It is safe for concurrent use.
type Tokenizer struct {
	norm   normalizer
	pre    preTokenizer
	model  model
	cls    []int64 // ids added before the sequence
	sep    []int64 // ids added after it
	padID  int64
	vocab  int
	unkID  int64
	hasUnk bool
}

// file is the subset of tokenizer.json paw reads.
type file struct {
	AddedTokens []struct {
		ID      int64  `json:"id"`
		Content string `json:"content"`
		Special bool   `json:"special"`
	} `json:"added_tokens"`
	Normalizer    json.RawMessage `json:"normalizer"`
	PreTokenizer  json.RawMessage `json:"pre_tokenizer"`
	PostProcessor json.RawMessage `json:"post_processor"`
	Padding       *struct {
		PadID int64 `json:"pad_id"`
	} `json:"padding"`
	Model json.RawMessage `json:"model"`
}

// Load reads a tokenizer.json file.
func Load(path string) (*Tokenizer, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("tokenizer %s: %w", path, err)
	}
	if st.Size() > MaxFileBytes {
		return nil, fmt.Errorf("tokenizer %s: %d bytes, more than %d", path, st.Size(), MaxFileBytes)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tokenizer %s: %w", path, err)
	}
	t, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("tokenizer %s: %w", path, err)
	}
	return t, nil
}

// Parse reads tokenizer.json bytes.
func Parse(data []byte) (*Tokenizer, error) {
	if len(data) > MaxFileBytes {
		return nil, fmt.Errorf("%d bytes, more than %d", len(data), MaxFileBytes)
	}
	var f file
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("not a tokenizer.json: %w", err)
	}
	t := &Tokenizer{}
	var err error
	if t.model, err = parseModel(f.Model); err != nil {
		return nil, fmt.Errorf("model: %w", err)
	}
	if t.norm, err = parseNormalizer(f.Normalizer); err != nil {
		return nil, fmt.Errorf("normalizer: %w", err)
	}
	if t.pre, err = parsePreTokenizer(f.PreTokenizer); err != nil {
		return nil, fmt.Errorf("pre_tokenizer: %w", err)
	}
	if t.cls, t.sep, err = parsePostProcessor(f.PostProcessor, t.model); err != nil {
		return nil, fmt.Errorf("post_processor: %w", err)
	}
	t.vocab = t.model.size()
	for _, a := range f.AddedTokens {
		t.vocab = max(t.vocab, int(a.ID)+1)
	}
	t.unkID, t.hasUnk = t.model.unk()
	switch {
	case f.Padding != nil:
		t.padID = f.Padding.PadID
	default:
		for _, a := range f.AddedTokens {
			if a.Content == "[PAD]" || a.Content == "<pad>" {
				t.padID = a.ID
			}
		}
	}
	return t, nil
}

// VocabSize is one more than the largest id the tokenizer can emit.
func (t *Tokenizer) VocabSize() int { return t.vocab }

// PadID is the id that pads short rows of a batch.
func (t *Tokenizer) PadID() int64 { return t.padID }

// Encode appends text's ids to dst, special tokens included, keeping at
// most maxTokens in all (maxTokens <= 0: no limit); the sequence is cut,
// the special tokens are kept.
func (t *Tokenizer) Encode(dst []int64, text string, maxTokens int) []int64 {
	limit := -1
	if maxTokens > 0 {
		limit = max(0, maxTokens-len(t.cls)-len(t.sep))
	}
	dst = append(dst, t.cls...)
	start := len(dst)
	text = t.norm.normalize(text)
	t.pre.split(text, func(word string) bool {
		dst = t.model.encode(dst, word)
		return limit < 0 || len(dst)-start < limit
	})
	if limit >= 0 && len(dst)-start > limit {
		dst = dst[:start+limit]
	}
	return append(dst, t.sep...)
}

// model turns one pre-tokenized word into ids.
type model interface {
	encode(dst []int64, word string) []int64
	id(token string) (int64, bool)
	unk() (int64, bool)
	size() int
	// spell is the piece id stands for, and whether it continues the
	// word before it.
	spell(id int64) (piece string, continues, ok bool)
}

// Text spells ids that Encode gave, its special tokens left out, as the
// model's pieces: a piece that continues a word ("##ed", or a byte-level
// piece without the space mark Ġ) joined to the one before, the others
// after a space. Equal ids give equal texts, so what is read from the text
// (a log pattern) depends on the ids alone, as an embedding does.
func (t *Tokenizer) Text(ids []int64) string {
	if len(ids) >= len(t.cls)+len(t.sep) && slices.Equal(ids[:len(t.cls)], t.cls) && slices.Equal(ids[len(ids)-len(t.sep):], t.sep) {
		ids = ids[len(t.cls) : len(ids)-len(t.sep)]
	}
	var b strings.Builder
	for i, id := range ids {
		piece, continues, ok := t.model.spell(id)
		if !ok {
			piece = "[?]"
		}
		if i > 0 && !continues {
			b.WriteByte(' ')
		}
		b.WriteString(piece)
	}
	return b.String()
}

func parseModel(raw json.RawMessage) (model, error) {
	var head struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(raw, &head); err != nil {
		return nil, err
	}
	switch head.Type {
	case "WordPiece":
		return parseWordPiece(raw)
	case "BPE":
		return parseBPE(raw)
	case "":
		return nil, errors.New("missing")
	}
	return nil, fmt.Errorf("type %q is not supported (WordPiece and BPE are)", head.Type)
}

// parsePostProcessor returns the special ids around a single sequence.
func parsePostProcessor(raw json.RawMessage, m model) (cls, sep []int64, err error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil, nil
	}
	var p struct {
		Type   string            `json:"type"`
		Cls    []json.RawMessage `json:"cls"`
		Sep    []json.RawMessage `json:"sep"`
		Single []struct {
			SpecialToken *struct {
				ID string `json:"id"`
			} `json:"SpecialToken"`
			Sequence *struct {
				ID string `json:"id"`
			} `json:"Sequence"`
		} `json:"single"`
		SpecialTokens map[string]struct {
			IDs []int64 `json:"ids"`
		} `json:"special_tokens"`
		Processors []json.RawMessage `json:"processors"`
	}
	if err := json.Unmarshal(raw, &p); err != nil {
		return nil, nil, err
	}
	switch p.Type {
	case "BertProcessing", "RobertaProcessing":
		// "cls": ["[CLS]", 101]
		get := func(pair []json.RawMessage, what string) ([]int64, error) {
			var id int64
			if len(pair) != 2 || json.Unmarshal(pair[1], &id) != nil {
				return nil, fmt.Errorf("%s %s: want [token, id]", p.Type, what)
			}
			return []int64{id}, nil
		}
		if cls, err = get(p.Cls, "cls"); err != nil {
			return nil, nil, err
		}
		sep, err = get(p.Sep, "sep")
		return cls, sep, err
	case "TemplateProcessing":
		seen := false
		for _, piece := range p.Single {
			switch {
			case piece.Sequence != nil:
				seen = true
			case piece.SpecialToken != nil:
				st, ok := p.SpecialTokens[piece.SpecialToken.ID]
				ids := st.IDs
				if !ok {
					id, found := m.id(piece.SpecialToken.ID)
					if !found {
						return nil, nil, fmt.Errorf("special token %q has no id", piece.SpecialToken.ID)
					}
					ids = []int64{id}
				}
				if seen {
					sep = append(sep, ids...)
				} else {
					cls = append(cls, ids...)
				}
			}
		}
		return cls, sep, nil
	case "ByteLevel":
		return nil, nil, nil // offsets only
	case "Sequence":
		for _, r := range p.Processors {
			c, s, err := parsePostProcessor(r, m)
			if err != nil {
				return nil, nil, err
			}
			cls, sep = append(cls, c...), append(sep, s...)
		}
		return cls, sep, nil
	}
	return nil, nil, fmt.Errorf("type %q is not supported", p.Type)
}

// String describes the tokenizer, for messages.
func (t *Tokenizer) String() string {
	kind := "WordPiece"
	if _, ok := t.model.(*bpe); ok {
		kind = "BPE"
	}
	return fmt.Sprintf("%s, %d ids, %s", kind, t.vocab, strings.TrimSpace(fmt.Sprint(len(t.cls)+len(t.sep), " special per sequence")))
}
