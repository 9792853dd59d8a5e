// Package yamlconf decodes YAML configuration strictly and reports every
// problem as file:line:column, so specs and pipelines share one error style.
package yamlconf

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/lexer"
	"github.com/goccy/go-yaml/parser"
	"github.com/goccy/go-yaml/token"
)

// Error is one problem, located in a file.
type Error struct {
	File   string
	Line   int
	Column int
	Msg    string
}

func (e *Error) Error() string {
	switch {
	case e.Line > 0:
		return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Line, e.Column, e.Msg)
	case e.File != "":
		return e.File + ": " + e.Msg
	}
	return e.Msg
}

// Errors is every problem found, in file order.
type Errors []*Error

func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Doc is a parsed document; it locates later semantic errors by YAML path.
type Doc struct {
	File string
	ast  *ast.File
	Errs Errors
}

// Decode parses data as one YAML mapping into v, rejecting unknown keys,
// duplicate keys and wrong types.
func Decode(file string, data []byte, v any) (doc *Doc, err error) {
	// go-yaml can panic on some malformed input (found by FuzzParseSpec;
	// the input is kept in compiler/testdata/fuzz); that is a bad file, not
	// a crash.
	defer func() {
		if r := recover(); r != nil {
			doc, err = nil, Errors{{File: file, Line: 1, Column: 1, Msg: fmt.Sprintf("malformed YAML (parser failed: %v)", r)}}
		}
	}()
	if e := checkSize(file, data); e != nil {
		return nil, Errors{e}
	}
	tokens := lexer.Tokenize(string(data))
	if e := checkDepth(file, tokens); e != nil {
		return nil, Errors{e}
	}
	f, err := parser.Parse(tokens, 0)
	if err != nil {
		return nil, Errors{fromYAML(file, err)}
	}
	if len(f.Docs) != 1 || f.Docs[0].Body == nil {
		return nil, Errors{{File: file, Line: 1, Column: 1, Msg: "want exactly one YAML document holding a mapping"}}
	}
	body := f.Docs[0].Body
	if body.Type() != ast.MappingType {
		pos := body.GetToken().Position
		return nil, Errors{{File: file, Line: pos.Line, Column: pos.Column, Msg: fmt.Sprintf("want a mapping, not %s", body.Type())}}
	}
	if err := yaml.NodeToValue(body, v, yaml.Strict()); err != nil {
		e := fromYAML(file, err)
		e.Msg = suggestField(e.Msg, v)
		if !hasToken(err) {
			e.Line, e.Column = locateQuoted(body, e.Msg)
		}
		return nil, Errors{e}
	}
	return &Doc{File: file, ast: f}, nil
}

func fromYAML(file string, err error) *Error {
	var ye yaml.Error
	if errors.As(err, &ye) && ye.GetToken() != nil {
		pos := ye.GetToken().Position
		return &Error{File: file, Line: pos.Line, Column: pos.Column, Msg: firstLine(ye.GetMessage())}
	}
	return &Error{File: file, Line: 1, Column: 1, Msg: firstLine(err.Error())}
}

func hasToken(err error) bool {
	var ye yaml.Error
	return errors.As(err, &ye) && ye.GetToken() != nil
}

// locateQuoted finds the scalar a position-less decode error quotes, such
// as time.ParseDuration's `invalid duration "soon"`; 1:1 when none is.
func locateQuoted(body ast.Node, msg string) (line, col int) {
	f := &quotedFinder{msg: msg}
	ast.Walk(f, body)
	if f.pos == nil {
		return 1, 1
	}
	return f.pos.Line, f.pos.Column
}

type quotedFinder struct {
	msg string
	pos *token.Position
}

func (f *quotedFinder) Visit(n ast.Node) ast.Visitor {
	if f.pos != nil {
		return nil
	}
	scalar := n.Type() == ast.StringType || n.Type() == ast.IntegerType || n.Type() == ast.FloatType || n.Type() == ast.BoolType
	if tk := n.GetToken(); tk != nil && scalar && tk.Value != "" && strings.Contains(f.msg, `"`+tk.Value+`"`) {
		f.pos = tk.Position
		return nil
	}
	return f
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return s
}

// At records an error at the node a YAML path ("$.steps[2].filter") names,
// or at the nearest position known. A Doc that was not parsed (a config
// built in code, from flags say) records the error without a position.
func (d *Doc) At(path, format string, args ...any) {
	if d.ast == nil {
		d.Errs = append(d.Errs, &Error{File: d.File, Msg: fmt.Sprintf(format, args...)})
		return
	}
	line, col := 1, 1
	if p, err := yaml.PathString(path); err == nil {
		if n, err := p.FilterFile(d.ast); err == nil && n != nil {
			pos := position(n)
			line, col = pos.Line, pos.Column
		}
	}
	d.Errs = append(d.Errs, &Error{File: d.File, Line: line, Column: col, Msg: fmt.Sprintf(format, args...)})
}

// position of a node; a mapping is located at its first key rather than at
// the token go-yaml keeps for it (its first ':').
func position(n ast.Node) *token.Position {
	switch m := n.(type) {
	case *ast.MappingNode:
		if len(m.Values) > 0 {
			return m.Values[0].Key.GetToken().Position
		}
	case *ast.MappingValueNode:
		return m.Key.GetToken().Position
	}
	return n.GetToken().Position
}

// Add records an error located elsewhere (another file, say).
func (d *Doc) Add(e *Error) { d.Errs = append(d.Errs, e) }

// Err returns the recorded errors sorted by position (this file first), or
// nil.
func (d *Doc) Err() error {
	if len(d.Errs) == 0 {
		return nil
	}
	sort.SliceStable(d.Errs, func(i, j int) bool {
		a, b := d.Errs[i], d.Errs[j]
		if a.File != b.File {
			return a.File == d.File
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Column < b.Column
	})
	return d.Errs
}
