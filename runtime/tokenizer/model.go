package tokenizer

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"unicode/utf8"
)

// wordPiece is BERT's greedy longest-match-first subword model.
type wordPiece struct {
	vocab    map[string]int64
	pieces   map[int64]string // the vocabulary inverted, for spell
	unkID    int64
	prefix   string
	maxChars int
	// The longest pieces in the vocabulary, in bytes, word-initial and
	// continuing (prefix excluded): no longer candidate can match, so the
	// search starts there instead of at the end of the word.
	maxFirst, maxRest int
}

func parseWordPiece(raw json.RawMessage) (*wordPiece, error) {
	var m struct {
		Vocab    map[string]int64 `json:"vocab"`
		Unk      string           `json:"unk_token"`
		Prefix   *string          `json:"continuing_subword_prefix"`
		MaxChars int              `json:"max_input_chars_per_word"`
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, err
	}
	if len(m.Vocab) == 0 {
		return nil, errors.New("WordPiece vocab is empty")
	}
	unk, ok := m.Vocab[m.Unk]
	if !ok {
		return nil, fmt.Errorf("WordPiece unk_token %q is not in the vocab", m.Unk)
	}
	w := &wordPiece{vocab: m.Vocab, pieces: invert(m.Vocab), unkID: unk, prefix: "##", maxChars: m.MaxChars}
	if m.Prefix != nil {
		w.prefix = *m.Prefix
	}
	if w.maxChars <= 0 {
		w.maxChars = 100
	}
	for tok := range w.vocab {
		if rest, ok := strings.CutPrefix(tok, w.prefix); ok && w.prefix != "" {
			w.maxRest = max(w.maxRest, len(rest))
		}
		w.maxFirst = max(w.maxFirst, len(tok))
	}
	return w, nil
}

func (w *wordPiece) spell(id int64) (string, bool, bool) {
	p, ok := w.pieces[id]
	if rest, cont := strings.CutPrefix(p, w.prefix); cont && w.prefix != "" {
		return rest, true, ok
	}
	return p, false, ok
}

func (b *bpe) spell(id int64) (string, bool, bool) {
	p, ok := b.pieces[id]
	// A byte-level piece that starts a word carries the space's mark.
	if rest, word := strings.CutPrefix(p, "Ġ"); word {
		return rest, false, ok
	}
	return p, true, ok
}

// invert maps a vocabulary's ids to their pieces (the first in sorted
// order where two share an id).
func invert(vocab map[string]int64) map[int64]string {
	out := make(map[int64]string, len(vocab))
	for p, id := range vocab {
		if q, dup := out[id]; !dup || p < q {
			out[id] = p
		}
	}
	return out
}

func (w *wordPiece) id(tok string) (int64, bool) { id, ok := w.vocab[tok]; return id, ok }
func (w *wordPiece) unk() (int64, bool)          { return w.unkID, true }
func (w *wordPiece) size() int                   { return maxID(w.vocab) + 1 }

func (w *wordPiece) encode(dst []int64, word string) []int64 {
	if utf8.RuneCountInString(word) > w.maxChars {
		return append(dst, w.unkID)
	}
	mark := len(dst)
	var arr [64]byte
	buf := arr[:0]
	for start := 0; start < len(word); {
		longest := w.maxRest
		if start == 0 {
			longest = w.maxFirst
		}
		end := min(len(word), start+longest)
		for end < len(word) && end > start && !utf8.RuneStart(word[end]) {
			end-- // a candidate ends on a character boundary
		}
		found := false
		for end > start {
			var id int64
			var ok bool
			if start == 0 {
				id, ok = w.vocab[word[start:end]]
			} else {
				buf = append(append(buf[:0], w.prefix...), word[start:end]...)
				id, ok = w.vocab[string(buf)] // no allocation: a map lookup
			}
			if ok {
				dst = append(dst, id)
				found = true
				break
			}
			_, n := utf8.DecodeLastRuneInString(word[start:end])
			end -= n
		}
		if !found {
			return append(dst[:mark], w.unkID) // the whole word is unknown
		}
		start = end
	}
	return dst
}

func maxID(v map[string]int64) int {
	m := int64(0)
	for _, id := range v {
		m = max(m, id)
	}
	return int(m)
}

// bpe is a byte-pair-encoding model: a word's symbols are merged pairwise
// in the order of the merges list.
type bpe struct {
	vocab  map[string]int64
	pieces map[int64]string // the vocabulary inverted, for spell
	ranks  map[[2]string]int
	unkID  int64
	hasUnk bool

	mu    sync.Mutex
	cache map[string][]int64 // word -> ids; log lines repeat words a lot
}

const bpeCacheSize = 1 << 16

func parseBPE(raw json.RawMessage) (*bpe, error) {
	var m struct {
		Vocab   map[string]int64  `json:"vocab"`
		Merges  []json.RawMessage `json:"merges"`
		Unk     *string           `json:"unk_token"`
		Prefix  *string           `json:"continuing_subword_prefix"`
		Suffix  *string           `json:"end_of_word_suffix"`
		Dropout *float64          `json:"dropout"`
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, err
	}
	switch {
	case len(m.Vocab) == 0:
		return nil, errors.New("BPE vocab is empty")
	case m.Prefix != nil && *m.Prefix != "":
		return nil, errors.New("BPE continuing_subword_prefix is not supported")
	case m.Suffix != nil && *m.Suffix != "":
		return nil, errors.New("BPE end_of_word_suffix is not supported")
	case m.Dropout != nil && *m.Dropout != 0:
		return nil, errors.New("BPE dropout is not deterministic: set it to null")
	}
	b := &bpe{vocab: m.Vocab, pieces: invert(m.Vocab), ranks: make(map[[2]string]int, len(m.Merges)), cache: map[string][]int64{}}
	for i, raw := range m.Merges {
		// "a b" in older files, ["a", "b"] in newer ones.
		var pair [2]string
		var s string
		if err := json.Unmarshal(raw, &s); err == nil {
			a, c, ok := strings.Cut(s, " ")
			if !ok {
				return nil, fmt.Errorf("BPE merge %d %q: want two symbols", i, s)
			}
			pair = [2]string{a, c}
		} else if err := json.Unmarshal(raw, &pair); err != nil {
			return nil, fmt.Errorf("BPE merge %d: %w", i, err)
		}
		if _, dup := b.ranks[pair]; !dup {
			b.ranks[pair] = i
		}
	}
	if m.Unk != nil {
		b.unkID, b.hasUnk = m.Vocab[*m.Unk]
	}
	return b, nil
}

func (b *bpe) id(tok string) (int64, bool) { id, ok := b.vocab[tok]; return id, ok }
func (b *bpe) unk() (int64, bool)          { return b.unkID, b.hasUnk }
func (b *bpe) size() int                   { return maxID(b.vocab) + 1 }

func (b *bpe) encode(dst []int64, word string) []int64 {
	b.mu.Lock()
	ids, ok := b.cache[word]
	b.mu.Unlock()
	if ok {
		return append(dst, ids...)
	}
	syms := make([]string, 0, len(word))
	for _, r := range word {
		syms = append(syms, string(r))
	}
	for len(syms) > 1 {
		best, at := -1, -1
		for i := 0; i+1 < len(syms); i++ {
			if r, ok := b.ranks[[2]string{syms[i], syms[i+1]}]; ok && (best < 0 || r < best) {
				best, at = r, i
			}
		}
		if at < 0 {
			break
		}
		// Merge every occurrence of the best pair, left to right.
		a, c := syms[at], syms[at+1]
		out := syms[:0:0]
		for i := 0; i < len(syms); i++ {
			if i+1 < len(syms) && syms[i] == a && syms[i+1] == c {
				out = append(out, a+c)
				i++
				continue
			}
			out = append(out, syms[i])
		}
		syms = out
	}
	start := len(dst)
	for _, s := range syms {
		if id, ok := b.vocab[s]; ok {
			dst = append(dst, id)
		} else if b.hasUnk {
			dst = append(dst, b.unkID)
		} // else: a byte-level vocabulary covers every byte; nothing to add
	}
	b.mu.Lock()
	if len(b.cache) >= bpeCacheSize {
		clear(b.cache)
	}
	b.cache[word] = append([]int64(nil), dst[start:]...)
	b.mu.Unlock()
	return dst
}
