package processor

import (
	"encoding/json"
	"testing"

	"github.com/segmentio/kafka-go"

	"github.com/pawlogs/paw/runtime"
)

func TestTagJSON(t *testing.T) {
	tags := []runtime.Tag{{Program: "errs", ID: "abc", Label: "error", Score: 0.5, Novelty: 0.25}}
	const tag = `"paw":{"errs":{"label":"error","score":0.5,"id":"abc","novelty":0.25}}`
	tests := []struct{ name, in, want string }{
		{"spliced, bytes kept", `{"log": "x",  "n": 1.50}`, `{"log": "x",  "n": 1.50,` + tag + `}`},
		{"trailing space", "{\"log\": \"x\"}\n", `{"log": "x",` + tag + `}`},
		{"empty object", `{}`, `{` + tag + `}`},
		{"existing field replaced", `{"paw": 1, "log": "x"}`, `{"log":"x",` + tag + `}`},
		{"quoted name inside a string", `{"log": "\"paw\" said"}`, `{"log": "\"paw\" said",` + tag + `}`},
		{"bare name inside a string", `{"log": "see \"x\": \"paw\""}`, `{"log": "see \"x\": \"paw\"",` + tag + `}`},
		{"name as a value", `{"log": "paw"}`, `{"log":"paw",` + tag + `}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tagJSON([]byte(tc.in), "paw", tags)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Fatalf("got  %s\nwant %s", got, tc.want)
			}
			if !json.Valid(got) {
				t.Fatalf("not JSON: %s", got)
			}
		})
	}
}

func TestWithHeadersReplacesOurs(t *testing.T) {
	// An earlier pass's headers, the teacher's decision among them, are
	// replaced, not kept beside the new ones.
	in := []kafka.Header{{Key: "a", Value: []byte("1")}, {Key: "paw-errs-label", Value: []byte("old")}, {Key: "paw-errs-by", Value: []byte("teacher")}}
	got := withHeaders(in, tagHeaders([]runtime.Tag{{Program: "errs", ID: "i", Label: "new", Score: 1, Novelty: 0.5}}))
	want := map[string]string{"a": "1", "paw-errs-label": "new", "paw-errs-score": "1.0000", "paw-errs-id": "i", "paw-errs-by": "program", "paw-errs-novelty": "0.5000"}
	if len(got) != len(want) || got[0].Key != "a" {
		t.Fatalf("headers %v", got)
	}
	for _, h := range got {
		if want[h.Key] != string(h.Value) {
			t.Fatalf("header %s = %q, want %q", h.Key, h.Value, want[h.Key])
		}
	}
	by := tagHeaders([]runtime.Tag{{Program: "errs", ID: "i", Label: "new", Score: 1, By: runtime.TagByTeacher}})
	if h := by[len(by)-2]; h.Key != "paw-errs-by" || string(h.Value) != "teacher" {
		t.Fatalf("teacher tag header %v", h)
	}
}

// FuzzTagJSON: any JSON object record stays a JSON object with the tags.
func FuzzTagJSON(f *testing.F) {
	for _, s := range []string{`{}`, `{"log":"x"}`, `{"paw":{"a":1}}`, ` {"a":[1,{"paw":2}]} `, `{"log":"}"}`} {
		f.Add([]byte(s))
	}
	tags := []runtime.Tag{{Program: "p", ID: "i", Label: "l", Score: 1}}
	f.Fuzz(func(t *testing.T, rec []byte) {
		var obj map[string]any
		if json.Unmarshal(rec, &obj) != nil || obj == nil {
			return
		}
		out, err := tagJSON(rec, "paw", tags)
		if err != nil {
			t.Fatalf("%s: %v", rec, err)
		}
		var back map[string]json.RawMessage
		if err := json.Unmarshal(out, &back); err != nil {
			t.Fatalf("%s -> %s: %v", rec, out, err)
		}
		var tag map[string]runtime.Tag
		if err := json.Unmarshal(back["paw"], &tag); err != nil || tag["p"].Label != "l" {
			t.Fatalf("%s -> %s: tags lost", rec, out)
		}
		if len(back) != len(obj)+boolInt(obj["paw"] == nil) {
			t.Fatalf("%s -> %s: fields lost", rec, out)
		}
	})
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
