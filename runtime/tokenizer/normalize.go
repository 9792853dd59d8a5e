package tokenizer

import (
	"encoding/json"
	"fmt"
	"strings"
	"unicode"

	"golang.org/x/text/unicode/norm"
)

// normalizer rewrites text before it is split.
type normalizer interface{ normalize(string) string }

type normalizers []normalizer

func (ns normalizers) normalize(s string) string {
	for _, n := range ns {
		s = n.normalize(s)
	}
	return s
}

type normFunc func(string) string

func (f normFunc) normalize(s string) string { return f(s) }

func parseNormalizer(raw json.RawMessage) (normalizer, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return normalizers(nil), nil
	}
	var n struct {
		Type         string            `json:"type"`
		CleanText    *bool             `json:"clean_text"`
		ChineseChars *bool             `json:"handle_chinese_chars"`
		StripAccents *bool             `json:"strip_accents"`
		Lowercase    *bool             `json:"lowercase"`
		Normalizers  []json.RawMessage `json:"normalizers"`
	}
	if err := json.Unmarshal(raw, &n); err != nil {
		return nil, err
	}
	on := func(b *bool, def bool) bool {
		if b == nil {
			return def
		}
		return *b
	}
	switch n.Type {
	case "BertNormalizer":
		lower := on(n.Lowercase, true)
		var ns normalizers
		if on(n.CleanText, true) {
			ns = append(ns, normFunc(cleanText))
		}
		if on(n.ChineseChars, true) {
			ns = append(ns, normFunc(spaceCJK))
		}
		// BERT strips accents when it lowercases, unless told otherwise.
		if on(n.StripAccents, lower) {
			ns = append(ns, normFunc(stripAccents))
		}
		if lower {
			ns = append(ns, normFunc(strings.ToLower))
		}
		return ns, nil
	case "Lowercase":
		return normFunc(strings.ToLower), nil
	case "StripAccents":
		return normFunc(stripAccents), nil
	case "NFD":
		return normFunc(norm.NFD.String), nil
	case "NFC":
		return normFunc(norm.NFC.String), nil
	case "NFKC":
		return normFunc(norm.NFKC.String), nil
	case "NFKD":
		return normFunc(norm.NFKD.String), nil
	case "Sequence":
		ns, err := parseSteps(n.Normalizers, parseNormalizer)
		if err != nil {
			return nil, err
		}
		return normalizers(ns), nil
	}
	return nil, fmt.Errorf("type %q is not supported", n.Type)
}

// cleanText drops control characters and turns any whitespace into a space.
func cleanText(s string) string {
	return mapRunes(s, func(b *strings.Builder, r rune) {
		switch {
		case r == 0 || r == unicode.ReplacementChar:
		case r == '\t' || r == '\n' || r == '\r' || unicode.IsSpace(r):
			b.WriteByte(' ')
		case unicode.IsControl(r) || unicode.In(r, unicode.Cf):
		default:
			b.WriteRune(r)
		}
	})
}

// mapRunes rewrites s rune by rune with f, which writes what a rune
// becomes; printable ASCII, which no normalizer here changes, is s itself.
func mapRunes(s string, f func(b *strings.Builder, r rune)) string {
	if isPlain(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		f(&b, r)
	}
	return b.String()
}

// parseSteps parses a Sequence's steps in order.
func parseSteps[T any](raws []json.RawMessage, parse func(json.RawMessage) (T, error)) ([]T, error) {
	steps := make([]T, 0, len(raws))
	for _, r := range raws {
		x, err := parse(r)
		if err != nil {
			return nil, err
		}
		steps = append(steps, x)
	}
	return steps, nil
}

// isPlain reports printable ASCII with plain spaces: nothing to clean.
func isPlain(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f {
			return false
		}
	}
	return true
}

func isCJK(r rune) bool {
	return (r >= 0x4E00 && r <= 0x9FFF) || (r >= 0x3400 && r <= 0x4DBF) || (r >= 0x20000 && r <= 0x2A6DF) ||
		(r >= 0x2A700 && r <= 0x2B73F) || (r >= 0x2B740 && r <= 0x2B81F) || (r >= 0x2B820 && r <= 0x2CEAF) ||
		(r >= 0xF900 && r <= 0xFAFF) || (r >= 0x2F800 && r <= 0x2FA1F)
}

// spaceCJK puts spaces around CJK ideographs, so each is its own word.
func spaceCJK(s string) string {
	return mapRunes(s, func(b *strings.Builder, r rune) {
		if isCJK(r) {
			b.WriteByte(' ')
			b.WriteRune(r)
			b.WriteByte(' ')
			return
		}
		b.WriteRune(r)
	})
}

// stripAccents decomposes (NFD) and drops the combining marks.
func stripAccents(s string) string {
	if isPlain(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range norm.NFD.String(s) {
		if !unicode.Is(unicode.Mn, r) {
			b.WriteRune(r)
		}
	}
	return b.String()
}
