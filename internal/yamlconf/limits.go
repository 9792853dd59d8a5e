package yamlconf

import (
	"fmt"

	"github.com/goccy/go-yaml/token"
)

// Limits on one YAML document, checked before go-yaml parses it: its
// parser spends time and memory quadratic in nesting depth (a 100 KB
// document nested 50,000 deep ran a process out of memory), and its lexer
// keeps about 1 KB per token. Real specs, pipelines and configs are a few
// KiB and nest fewer than 10 levels; larger example sets belong in
// examples_file.
const (
	// MaxBytes is the largest document accepted.
	MaxBytes = 4 << 20
	// MaxTokens bounds the structural characters and lines of a document
	// (an upper bound on go-yaml's tokens), checked before lexing.
	MaxTokens = 256 << 10
	// MaxDepth bounds the nesting of collections, block and flow together.
	MaxDepth = 64
)

// checkSize refuses a document too large to lex within a bounded memory.
func checkSize(file string, data []byte) *Error {
	if len(data) > MaxBytes {
		return &Error{File: file, Line: 1, Column: 1, Msg: fmt.Sprintf("document is %d bytes, more than the %d allowed (put large example sets in examples_file)", len(data), MaxBytes)}
	}
	n, line := 0, 1
	for _, c := range data {
		switch c {
		case '\n':
			line++
			n++
		case '[', ']', '{', '}', ',', ':', '-', '?', '&', '*', '!', '|', '>':
			n++
		default:
			continue
		}
		if n > MaxTokens {
			return &Error{File: file, Line: line, Column: 1, Msg: fmt.Sprintf("document has more than %d structural tokens", MaxTokens)}
		}
	}
	return nil
}

// checkDepth refuses a document nested deeper than MaxDepth. Flow depth is
// counted by brackets; block depth by the stack of columns at which
// sequence entries and mapping keys start, so "- - - x" is 3 deep.
func checkDepth(file string, tokens token.Tokens) *Error {
	flow := 0
	var block []int
	var prev *token.Token
	for _, tk := range tokens {
		switch tk.Type {
		case token.SequenceStartType, token.MappingStartType:
			flow++
		case token.SequenceEndType, token.MappingEndType:
			if flow > 0 {
				flow--
			}
		case token.SequenceEntryType, token.MappingKeyType, token.MappingValueType:
			if flow > 0 {
				break
			}
			col := tk.Position.Column
			if tk.Type == token.MappingValueType && prev != nil {
				col = prev.Position.Column // the key's column, not the ':'s
			}
			for len(block) > 0 && block[len(block)-1] >= col {
				block = block[:len(block)-1]
			}
			block = append(block, col)
		}
		if d := flow + len(block); d > MaxDepth {
			return &Error{File: file, Line: tk.Position.Line, Column: tk.Position.Column, Msg: fmt.Sprintf("nested more than %d levels deep", MaxDepth)}
		}
		if tk.Type != token.SpaceType && tk.Type != token.CommentType {
			prev = tk
		}
	}
	return nil
}
