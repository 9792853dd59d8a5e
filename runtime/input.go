package runtime

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/template"
	"unicode/utf8"
)

// Errors returned by Input.Extract; callers route such records to a dead
// letter destination with the reason.
var (
	ErrNotJSON      = errors.New("record is not a JSON object")
	ErrFieldMissing = errors.New("field missing")
	ErrNotString    = errors.New("field is not a string")
	ErrInvalidUTF8  = errors.New("record is not valid UTF-8")
	ErrTooLarge     = errors.New("record too large")
)

// Input selects the text a program reads from a record: the whole line, a
// dotted field path of a JSON object, or a Go template over it.
type Input struct {
	expr string
	path []string
	tmpl *template.Template
}

// ValidateInput reports whether expr is a usable input selector.
func ValidateInput(expr string) error {
	_, err := ParseInput(expr)
	return err
}

// ParseInput compiles an input selector. "" reads the whole line; text
// containing "{{" is a Go template over the JSON record; anything else is a
// dotted path such as kubernetes.labels.app.
func ParseInput(expr string) (*Input, error) {
	in := &Input{expr: expr}
	switch {
	case expr == "":
	case strings.Contains(expr, "{{"):
		t, err := template.New("input").Option("missingkey=error").Parse(expr)
		if err != nil {
			return nil, fmt.Errorf("template: %w", err)
		}
		in.tmpl = t
	default:
		for _, seg := range strings.Split(expr, ".") {
			if seg == "" || strings.ContainsAny(seg, " \t\n{}") {
				return nil, fmt.Errorf("%q is not a dotted field path (segments are non-empty, without spaces or braces)", expr)
			}
		}
		in.path = strings.Split(expr, ".")
	}
	return in, nil
}

// String returns the selector's source.
func (in *Input) String() string { return in.expr }

// WholeLine reports whether the selector reads the raw record.
func (in *Input) WholeLine() bool { return in.path == nil && in.tmpl == nil }

// Extract returns the text to classify from a raw record.
func (in *Input) Extract(record []byte) ([]byte, error) {
	if in.WholeLine() {
		return record, nil
	}
	// JSON text is UTF-8; encoding/json would quietly turn bad bytes into
	// U+FFFD, and classify a record that is not what was sent.
	if !utf8.Valid(record) {
		return nil, ErrInvalidUTF8
	}
	if in.tmpl == nil {
		return extractJSON(record, in.path, in.expr)
	}
	return in.extractDecoded(record)
}

// extractDecoded decodes the record for a template: the reference
// extractJSON is checked against.
func (in *Input) extractDecoded(record []byte) ([]byte, error) {
	// Numbers stay as their text: a 100,000-digit number is a valid JSON
	// object, not a float64 overflow. Of a key given twice, the last value
	// is read (as encoding/json and the plugin's decoder both do).
	dec := json.NewDecoder(bytes.NewReader(record))
	dec.UseNumber()
	var obj map[string]any
	if err := dec.Decode(&obj); err != nil || obj == nil {
		return nil, ErrNotJSON
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, ErrNotJSON // trailing data after the object
	}
	return in.extractFrom(obj)
}

// extractFrom reads the text from an already decoded record.
func (in *Input) extractFrom(obj map[string]any) ([]byte, error) {
	if in.tmpl != nil {
		var b bytes.Buffer
		if err := in.tmpl.Execute(&b, obj); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrFieldMissing, err)
		}
		return b.Bytes(), nil
	}
	v, err := Lookup(obj, in.path)
	if err != nil {
		return nil, err
	}
	switch s := v.(type) {
	case string:
		return []byte(s), nil
	case []byte:
		return s, nil
	}
	return nil, fmt.Errorf("%w: %s is %T", ErrNotString, in.expr, v)
}

// Lookup walks a dotted path through nested maps. Fluent Bit's decoder
// yields map[any]any, JSON gives map[string]any; both are handled.
func Lookup(obj any, path []string) (any, error) {
	cur := obj
	for i, seg := range path {
		var (
			v  any
			ok bool
		)
		switch m := cur.(type) {
		case map[string]any:
			v, ok = m[seg]
		case map[any]any:
			v, ok = m[seg]
		}
		if !ok {
			return nil, fmt.Errorf("%w: %s", ErrFieldMissing, strings.Join(path[:i+1], "."))
		}
		cur = v
	}
	return cur, nil
}
