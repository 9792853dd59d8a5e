package runtime

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

// extractJSON reads the string at path in a JSON record without decoding
// the record: validJSON checks it (allocation-free), then a scan of the
// valid bytes finds the field, and only a string with escapes is decoded.
// It returns what decoding into map[string]any and Lookup return, errors
// included (FuzzExtractJSON compares the two): the last of duplicate keys
// wins, and keys match after unescaping.
func extractJSON(record []byte, path []string, expr string) ([]byte, error) {
	if i := skipSpace(record, 0); i >= len(record) || record[i] != '{' {
		return nil, ErrNotJSON
	}
	// The pass that validates finds the top-level member too.
	ok, val := validJSONMember(record, path[0])
	if !ok {
		return nil, ErrNotJSON
	}
	if val == nil {
		return nil, fmt.Errorf("%w: %s", ErrFieldMissing, path[0])
	}
	for i, seg := range path[1:] {
		s := jsonScan{b: val}
		if val[0] != '{' {
			return nil, fmt.Errorf("%w: %s", ErrFieldMissing, strings.Join(path[:i+2], "."))
		}
		if val = s.member(seg); val == nil {
			return nil, fmt.Errorf("%w: %s", ErrFieldMissing, strings.Join(path[:i+2], "."))
		}
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

func (s *jsonScan) space() { s.pos = skipSpace(s.b, s.pos) }

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

// maxJSONDepth is encoding/json's nesting limit, which validJSON keeps.
const maxJSONDepth = 10000

// validJSON reports what json.Valid reports, in one pass without its
// per-byte state function calls (FuzzValidJSON compares the two).
func validJSON(b []byte) bool {
	ok, _ := validJSONMember(b, "")
	return ok
}

// validJSONMember is validJSON that also returns, when b is an object, the
// raw value of its last top-level member named key (nil if none; key ""
// looks for none).
func validJSONMember(b []byte, key string) (valid bool, found []byte) {
	// Bit d: the container at depth d is an object. Records nest a few
	// levels, so 256 depths' bits start on the stack (zeroing all 10,000
	// on every record cost 7% of it); deeper ones are appended.
	var shallow [4]uint64
	objects := shallow[:]
	depth := 0
	capture := -1 // where the value of a top-level member named key starts
	i := skipSpace(b, 0)
	for {
		// A value starts at i.
		if i >= len(b) {
			return false, nil
		}
		switch c := b[i]; {
		case c == '{' || c == '[':
			if depth == maxJSONDepth {
				return false, nil
			}
			if depth/64 == len(objects) {
				objects = append(objects, 0)
			}
			if c == '{' {
				objects[depth/64] |= 1 << (depth % 64)
			} else {
				objects[depth/64] &^= 1 << (depth % 64)
			}
			depth++
			i = skipSpace(b, i+1)
			if i < len(b) && b[i] == c+2 { // '}' or ']': empty
				depth--
				i++
				break
			}
			if c == '{' {
				if i, capture = nextMember(b, i, depth, key, capture); i < 0 {
					return false, nil
				}
			}
			continue
		case c == '"':
			if i = skipString(b, i); i < 0 {
				return false, nil
			}
		case c == '-' || c >= '0' && c <= '9':
			if i = skipNumber(b, i); i < 0 {
				return false, nil
			}
		case c == 't':
			if !bytes.HasPrefix(b[i:], []byte("true")) {
				return false, nil
			}
			i += 4
		case c == 'f':
			if !bytes.HasPrefix(b[i:], []byte("false")) {
				return false, nil
			}
			i += 5
		case c == 'n':
			if !bytes.HasPrefix(b[i:], []byte("null")) {
				return false, nil
			}
			i += 4
		default:
			return false, nil
		}
		// After a value: close containers, or go on to the next element.
		for {
			if depth == 1 && capture >= 0 { // a top-level member's value ends at i
				found, capture = b[capture:i], -1
			}
			i = skipSpace(b, i)
			if depth == 0 {
				return i == len(b), found
			}
			if i >= len(b) {
				return false, nil
			}
			inObject := objects[(depth-1)/64]&(1<<((depth-1)%64)) != 0
			if b[i] == ',' {
				i = skipSpace(b, i+1)
				if inObject {
					if i, capture = nextMember(b, i, depth, key, capture); i < 0 {
						return false, nil
					}
				}
				break
			}
			if inObject && b[i] != '}' || !inObject && b[i] != ']' {
				return false, nil
			}
			depth--
			i++
		}
	}
}

// nextMember passes the member at i of an object at depth. In the
// top-level object (depth 1) the capture it returns is where the value
// starts if the member is named key, else -1; deeper, capture is kept.
func nextMember(b []byte, i, depth int, key string, capture int) (int, int) {
	if depth == 1 && key != "" {
		return memberValue(b, i, key)
	}
	return member(b, i), capture
}

// memberValue is member that also returns where the value starts if the
// member's key is key, else -1.
func memberValue(b []byte, i int, key string) (next, value int) {
	if i >= len(b) || b[i] != '"' {
		return -1, -1
	}
	end := skipString(b, i)
	if end < 0 {
		return -1, -1
	}
	next = afterKey(b, end)
	if next >= 0 && keyIs(b[i:end], key) {
		return next, next
	}
	return next, -1
}

// member passes an object member's key and colon; -1 if there is none.
func member(b []byte, i int) int {
	if i >= len(b) || b[i] != '"' {
		return -1
	}
	if i = skipString(b, i); i < 0 {
		return -1
	}
	return afterKey(b, i)
}

// afterKey passes the colon after a key ending at i; -1 if there is none.
func afterKey(b []byte, i int) int {
	if i = skipSpace(b, i); i >= len(b) || b[i] != ':' {
		return -1
	}
	return skipSpace(b, i+1)
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// strPlain marks the bytes a string holds as they are: not its quote, a
// backslash or a control character.
var strPlain = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// skipString passes the string starting at i; -1 if it is not valid.
func skipString(b []byte, i int) int {
	for i++; i < len(b); i++ {
		for i < len(b) && strPlain[b[i]] {
			i++
		}
		if i >= len(b) {
			return -1
		}
		switch c := b[i]; {
		case c == '"':
			return i + 1
		case c < 0x20:
			return -1
		case c == '\\':
			i++
			if i >= len(b) {
				return -1
			}
			switch b[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if i+4 >= len(b) || !isHex(b[i+1:i+5]) {
					return -1
				}
				i += 4
			default:
				return -1
			}
		}
	}
	return -1
}

// skipNumber passes -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?; -1 if
// there is none at i.
func skipNumber(b []byte, i int) int {
	digits := func(i int) (int, bool) {
		j := i
		for j < len(b) && b[j] >= '0' && b[j] <= '9' {
			j++
		}
		return j, j > i
	}
	if b[i] == '-' {
		i++
	}
	if i >= len(b) {
		return -1
	}
	var ok bool
	if b[i] == '0' {
		i++
	} else if i, ok = digits(i); !ok {
		return -1
	}
	if i < len(b) && b[i] == '.' {
		if i, ok = digits(i + 1); !ok {
			return -1
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i, ok = digits(i); !ok {
			return -1
		}
	}
	return i
}
