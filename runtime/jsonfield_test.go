package runtime

import (
	"bytes"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"
)

// checkExtractJSON fails when extractJSON and decoding the record disagree
// on the text, or on the error and its message.
func checkExtractJSON(t *testing.T, record []byte, expr string) {
	t.Helper()
	in, err := ParseInput(expr)
	if err != nil || in.tmpl != nil || in.path == nil || !utf8.Valid(record) {
		return
	}
	got, gerr := extractJSON(record, in.path, in.expr)
	want, werr := in.extractDecoded(record)
	if (gerr == nil) != (werr == nil) || gerr != nil && gerr.Error() != werr.Error() || !bytes.Equal(got, want) {
		t.Fatalf("%s on %q: scanned %q, %v; decoded %q, %v", expr, record, got, gerr, want, werr)
	}
}

var extractSeeds = []struct{ record, expr string }{
	{`{"log":"hello"}`, "log"},
	{` { "log" : "esc \"q\" \u00e9 \ud800 \\ \n" , "n": 1 } `, "log"},
	{`{"kubernetes":{"labels":{"app":"web"}},"log":"x"}`, "kubernetes.labels.app"},
	{`{"a":{"b":1},"a":{"c":"last"}}`, "a.c"},
	{`{"a":{"b":"first"},"a":{"c":"last"}}`, "a.b"},
	{`{"l\u006fg":"escaped key"}`, "log"},
	{`{"log":[1,{"x":"]"}],"m":null}`, "log"},
	{`{"log":null}`, "log"},
	{`{"log":true}`, "log"},
	{`{"log":-1.5e3}`, "log"},
	{`{"log":{}}`, "log"},
	{`{"a":"s"}`, "a.b"},
	{`{}`, "log"},
	{`[{"log":"x"}]`, "log"},
	{`null`, "log"},
	{`{"log":"x"} {"log":"y"}`, "log"},
	{`{"log":"x",}`, "log"},
	{`{"log":"first","log":"last"}`, "log"},
	{"{\"log\":\"tab\\tkept\", \"x\": [\"}\", \"\\\"\"]}", "log"},
}

func TestExtractJSONMatchesDecoding(t *testing.T) {
	for _, s := range extractSeeds {
		checkExtractJSON(t, []byte(s.record), s.expr)
	}
	// The errors are the decoding path's, by kind too.
	in, _ := ParseInput("log")
	for record, want := range map[string]error{`{"log":3}`: ErrNotString, `{"x":1}`: ErrFieldMissing, `{"log":`: ErrNotJSON} {
		if _, err := in.Extract([]byte(record)); !errors.Is(err, want) {
			t.Errorf("%s: %v, want %v", record, err, want)
		}
	}
}

// FuzzExtractJSON: on any record and field path, the scan gives what
// decoding gives.
func FuzzExtractJSON(f *testing.F) {
	for _, s := range extractSeeds {
		f.Add([]byte(s.record), s.expr)
	}
	f.Fuzz(func(t *testing.T, record []byte, expr string) {
		if strings.Contains(expr, "{{") {
			return
		}
		checkExtractJSON(t, record, expr)
	})
}

func BenchmarkExtractJSON(b *testing.B) {
	record := []byte(`{"log":"2026-03-04T09:00:02.871Z ERROR [payment-svc] charge failed for order 10231: upstream timeout after 30s","stream":"stdout","time":"2026-03-04T09:00:02.871Z","kubernetes":{"pod":"api-1","labels":{"app":"orders"}}}`)
	in, _ := ParseInput("log")
	for _, bc := range []struct {
		name string
		fn   func([]byte) ([]byte, error)
	}{{"scan", in.Extract}, {"decode", in.extractDecoded}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(record)))
			for b.Loop() {
				if _, err := bc.fn(record); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// FuzzValidJSON: validJSON agrees with json.Valid on any bytes.
func FuzzValidJSON(f *testing.F) {
	for _, s := range extractSeeds {
		f.Add([]byte(s.record))
	}
	for _, s := range []string{"", " ", "0", "-0.5e+7", "01", "1.", "-", "1e", `"\u12G4"`, `"\/"`, "\"a\x01\"", "[1,]", "[,1]", "{\"a\"}", "{\"a\":}", "tru", "nulll", "[[]]", "{}}", "[]]", `{"a":1,"b":[true,false,null]}`,
		strings.Repeat("[", 10000) + strings.Repeat("]", 10000), strings.Repeat("[", 10001) + strings.Repeat("]", 10001)} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, want := validJSON(b), json.Valid(b); got != want {
			t.Fatalf("validJSON(%q) = %v, json.Valid %v", b, got, want)
		}
	})
}

// TestValidJSONRandom compares validJSON with json.Valid on 300,000
// strings over JSON's own alphabet, which random bytes rarely hit.
func TestValidJSONRandom(t *testing.T) {
	const alphabet = `{}[]:,"\ u0aeE.+-19tfrlsn` + "\t\x01"
	rng := rand.New(rand.NewPCG(1, 2))
	b := make([]byte, 0, 32)
	valid := 0
	for n := 0; n < 300_000; n++ {
		b = b[:0]
		for k := rng.IntN(24); k >= 0; k-- {
			b = append(b, alphabet[rng.IntN(len(alphabet))])
		}
		got, want := validJSON(b), json.Valid(b)
		if got != want {
			t.Fatalf("validJSON(%q) = %v, json.Valid %v", b, got, want)
		}
		if got {
			valid++
		}
	}
	if valid < 1000 { // the comparison must see both answers
		t.Fatalf("only %d of the strings are valid JSON", valid)
	}
	t.Logf("%d valid", valid)
}
