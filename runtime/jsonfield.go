package runtime

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

// extractJSON reads the string at path in a JSON record without decoding
// the record: json.Valid checks it (allocation-free), then a scan of the
// valid bytes finds the field, and only a string with escapes is decoded.
// It returns what decoding into map[string]any and Lookup return, errors
// included (FuzzExtractJSON compares the two): the last of duplicate keys
// wins, and keys match after unescaping.
func extractJSON(record []byte, path []string, expr string) ([]byte, error) {
	s := jsonScan{b: record}
	s.space()
	if s.pos >= len(s.b) || s.b[s.pos] != '{' || !json.Valid(record) {
		return nil, ErrNotJSON
	}
	var val []byte
	for i, seg := range path {
		if s.pos >= len(s.b) || s.b[s.pos] != '{' {
			return nil, fmt.Errorf("%w: %s", ErrFieldMissing, strings.Join(path[:i+1], "."))
		}
		val = s.member(seg)
		if val == nil {
			return nil, fmt.Errorf("%w: %s", ErrFieldMissing, strings.Join(path[:i+1], "."))
		}
		s = jsonScan{b: val}
	}
	if val[0] != '"' {
		return nil, fmt.Errorf("%w: %s is %s", ErrNotString, expr, jsonType(val[0]))
	}
	inner := val[1 : len(val)-1]
	if bytes.IndexByte(inner, '\\') < 0 {
		return inner, nil
	}
	var str string
	if err := json.Unmarshal(val, &str); err != nil {
		return nil, ErrNotJSON // valid JSON: cannot happen
	}
	return []byte(str), nil
}

// jsonType names a JSON value's Go type as decoding into any gives it
// (with UseNumber), for ErrNotString's message.
func jsonType(first byte) string {
	switch first {
	case '{':
		return "map[string]interface {}"
	case '[':
		return "[]interface {}"
	case 't', 'f':
		return "bool"
	case 'n':
		return "<nil>"
	}
	return "json.Number"
}

// jsonScan walks JSON text already known to be valid.
type jsonScan struct {
	b   []byte
	pos int
}

func (s *jsonScan) space() {
	for s.pos < len(s.b) && (s.b[s.pos] == ' ' || s.b[s.pos] == '\t' || s.b[s.pos] == '\n' || s.b[s.pos] == '\r') {
		s.pos++
	}
}

// member returns the raw value of the object's last member named key (the
// object starts at pos), or nil.
func (s *jsonScan) member(key string) []byte {
	var found []byte
	s.pos++ // {
	for {
		s.space()
		if s.b[s.pos] == '}' {
			return found
		}
		k := s.value() // the key, quoted
		s.space()
		s.pos++ // :
		s.space()
		start := s.pos
		s.value()
		if keyIs(k, key) {
			found = s.b[start:s.pos]
		}
		s.space()
		if s.b[s.pos] == ',' {
			s.pos++
		}
	}
}

// keyIs compares a quoted key, unescaped, to key.
func keyIs(quoted []byte, key string) bool {
	inner := quoted[1 : len(quoted)-1]
	if bytes.IndexByte(inner, '\\') < 0 {
		return string(inner) == key
	}
	var k string
	return json.Unmarshal(quoted, &k) == nil && k == key
}

// value passes one value and returns its bytes.
func (s *jsonScan) value() []byte {
	start := s.pos
	switch s.b[s.pos] {
	case '"':
		s.str()
	case '{', '[':
		depth := 0
		for {
			switch s.b[s.pos] {
			case '"':
				s.str()
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
			}
			s.pos++
			if depth == 0 {
				break
			}
		}
	default: // number, true, false, null
		for s.pos < len(s.b) {
			switch s.b[s.pos] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return s.b[start:s.pos]
			}
			s.pos++
		}
	}
	return s.b[start:s.pos]
}

// str passes a string, quotes included.
func (s *jsonScan) str() {
	s.pos++
	for {
		q := s.pos + bytes.IndexByte(s.b[s.pos:], '"')
		// The quote ends the string unless an odd run of backslashes
		// escapes it.
		bs := 0
		for q-1-bs >= s.pos && s.b[q-1-bs] == '\\' {
			bs++
		}
		s.pos = q + 1
		if bs%2 == 0 {
			return
		}
	}
}
