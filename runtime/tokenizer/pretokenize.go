package tokenizer

import (
	"encoding/json"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// preTokenizer splits normalized text into words; emit returns false to
// stop early (the sequence is full).
type preTokenizer interface {
	split(s string, emit func(word string) bool)
}

func parsePreTokenizer(raw json.RawMessage) (preTokenizer, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return whole{}, nil
	}
	var p struct {
		Type           string            `json:"type"`
		AddPrefixSpace bool              `json:"add_prefix_space"`
		UseRegex       *bool             `json:"use_regex"`
		PreTokenizers  []json.RawMessage `json:"pretokenizers"`
	}
	if err := json.Unmarshal(raw, &p); err != nil {
		return nil, err
	}
	switch p.Type {
	case "BertPreTokenizer":
		return bertSplit{}, nil
	case "WhitespaceSplit":
		return whitespaceSplit{}, nil
	case "Whitespace":
		return wordsAndPunct{}, nil
	case "ByteLevel":
		return byteLevel{prefixSpace: p.AddPrefixSpace, regex: p.UseRegex == nil || *p.UseRegex}, nil
	case "Sequence":
		seq, err := parseSteps(p.PreTokenizers, parsePreTokenizer)
		if err != nil {
			return nil, err
		}
		return sequence(seq), nil
	}
	return nil, fmt.Errorf("type %q is not supported", p.Type)
}

type whole struct{}

func (whole) split(s string, emit func(string) bool) {
	if s != "" {
		emit(s)
	}
}

type sequence []preTokenizer

func (seq sequence) split(s string, emit func(string) bool) {
	if len(seq) == 0 {
		whole{}.split(s, emit)
		return
	}
	more := true
	seq[0].split(s, func(w string) bool {
		if !more {
			return false
		}
		sequence(seq[1:]).split(w, func(x string) bool {
			more = emit(x)
			return more
		})
		return more
	})
}

type whitespaceSplit struct{}

func (whitespaceSplit) split(s string, emit func(string) bool) {
	for _, w := range strings.Fields(s) {
		if !emit(w) {
			return
		}
	}
}

// isBertPunct is BERT's punctuation: ASCII symbols and Unicode P*.
func isBertPunct(r rune) bool {
	if (r >= 33 && r <= 47) || (r >= 58 && r <= 64) || (r >= 91 && r <= 96) || (r >= 123 && r <= 126) {
		return true
	}
	return unicode.IsPunct(r)
}

// bertSplit splits on whitespace and makes every punctuation character a
// word of its own.
type bertSplit struct{}

func (bertSplit) split(s string, emit func(string) bool) {
	start := -1
	for i, r := range s {
		switch {
		case unicode.IsSpace(r):
			if start >= 0 && !emit(s[start:i]) {
				return
			}
			start = -1
		case isBertPunct(r):
			if start >= 0 && !emit(s[start:i]) {
				return
			}
			start = -1
			if !emit(s[i : i+utf8.RuneLen(r)]) {
				return
			}
		default:
			if start < 0 {
				start = i
			}
		}
	}
	if start >= 0 {
		emit(s[start:])
	}
}

func isWord(r rune) bool {
	return r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.Is(unicode.Mn, r)
}

// wordsAndPunct is the Whitespace pre-tokenizer: \w+|[^\w\s]+.
type wordsAndPunct struct{}

func (wordsAndPunct) split(s string, emit func(string) bool) {
	start, kind := -1, 0 // kind 1: word, 2: other
	for i, r := range s {
		k := 2
		switch {
		case unicode.IsSpace(r):
			k = 0
		case isWord(r):
			k = 1
		}
		if k != kind {
			if start >= 0 && !emit(s[start:i]) {
				return
			}
			start = -1
			if k != 0 {
				start = i
			}
			kind = k
		}
	}
	if start >= 0 {
		emit(s[start:])
	}
}

// byteLevel is GPT-2's pre-tokenizer: split with its pattern
//
//	's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//
// (hand-written: Go's regexp has no lookahead), then map every byte to the
// printable rune the vocabulary spells it with.
type byteLevel struct {
	prefixSpace bool
	regex       bool
}

func (b byteLevel) split(s string, emit func(string) bool) {
	if b.prefixSpace && s != "" && s[0] != ' ' {
		s = " " + s
	}
	if !b.regex {
		emit(byteRunes(s))
		return
	}
	gpt2Split(s, func(w string) bool { return emit(byteRunes(w)) })
}

func class(r rune) int {
	switch {
	case unicode.IsLetter(r):
		return 1
	case unicode.IsNumber(r):
		return 2
	case unicode.IsSpace(r):
		return 0
	}
	return 3
}

func gpt2Split(s string, emit func(string) bool) {
	i := 0
	for i < len(s) {
		if s[i] == '\'' {
			matched := false
			for _, c := range []string{"s", "t", "re", "ve", "m", "ll", "d"} {
				if strings.HasPrefix(s[i+1:], c) {
					if !emit(s[i : i+1+len(c)]) {
						return
					}
					i += 1 + len(c)
					matched = true
					break
				}
			}
			if matched {
				continue
			}
		}
		j := i
		if s[j] == ' ' && j+1 < len(s) {
			if r, _ := utf8.DecodeRuneInString(s[j+1:]); class(r) != 0 {
				j++
			}
		}
		r, n := utf8.DecodeRuneInString(s[j:])
		if c := class(r); c != 0 {
			k := j + n
			for k < len(s) {
				r2, n2 := utf8.DecodeRuneInString(s[k:])
				if class(r2) != c {
					break
				}
				k += n2
			}
			if !emit(s[i:k]) {
				return
			}
			i = k
			continue
		}
		// A run of whitespace: all of it at the end of the text; before a
		// word, all but its last character (a last space prefixes the word,
		// any other is a token of its own).
		k := i
		for k < len(s) {
			r2, n2 := utf8.DecodeRuneInString(s[k:])
			if !unicode.IsSpace(r2) {
				break
			}
			k += n2
		}
		if k == len(s) {
			emit(s[i:k])
			return
		}
		_, last := utf8.DecodeLastRuneInString(s[i:k])
		if k-last > i {
			if !emit(s[i : k-last]) {
				return
			}
		}
		i = k - last
		if s[i] != ' ' {
			if !emit(s[i:k]) {
				return
			}
			i = k
		}
	}
}

// byteRune is GPT-2's bytes_to_unicode: printable bytes stand for
// themselves, the others for runes from U+0100 on.
var byteRune = func() [256]rune {
	var t [256]rune
	n := rune(0)
	for b := 0; b < 256; b++ {
		if (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF) {
			t[b] = rune(b)
			continue
		}
		t[b] = 256 + n
		n++
	}
	return t
}()

func byteRunes(s string) string {
	var b strings.Builder
	b.Grow(len(s) * 2)
	for i := 0; i < len(s); i++ {
		b.WriteRune(byteRune[s[i]])
	}
	return b.String()
}
