package yamlconf

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestDecodeLocatesErrors(t *testing.T) {
	type conf struct {
		Name  string        `yaml:"name"`
		Every time.Duration `yaml:"every"`
		N     int           `yaml:"n"`
	}
	tests := []struct{ name, yaml, want string }{
		{"syntax", "name: [x\n", "f.yaml:1:"},
		{"unknown key", "name: a\nbogus: 1\n", "f.yaml:2:1:"},
		{"wrong type", "name: a\nn: many\n", "f.yaml:2:4:"},
		{"bad duration has no token from go-yaml", "name: a\nevery: soon\n", `f.yaml:2:8: time: invalid duration "soon"`},
		{"not a mapping", "- a\n", "f.yaml:1:1: want a mapping"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var c conf
			_, err := Decode("f.yaml", []byte(tc.yaml), &c)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}

// Hostile nesting is refused before go-yaml's parser, whose cost grows
// with the square of the depth, and with bounded allocation.
func TestDecodeRefusesHostileDocuments(t *testing.T) {
	type conf struct {
		Extra any `yaml:"extra"`
	}
	deep := func(open, close string, d int) string {
		return "extra: " + strings.Repeat(open, d) + "1" + strings.Repeat(close, d) + "\n"
	}
	var block strings.Builder
	block.WriteString("extra:\n")
	for i := 0; i < 200; i++ {
		block.WriteString(strings.Repeat(" ", i+1) + "k:\n")
	}
	tests := []struct{ name, yaml, want string }{
		{"flow sequences 50k deep", deep("[", "]", 50000), "nested more than 64 levels deep"},
		{"flow mappings 20k deep", deep("{a: ", "}", 20000), "nested more than 64 levels deep"},
		{"compact block sequences", "extra: " + strings.Repeat("- ", 5000) + "x\n", "nested more than 64 levels deep"},
		{"indented block mappings", block.String(), "f.yaml:65:"},
		{"too many tokens", "extra: [" + strings.Repeat("1,", 300000) + "1]\n", "structural tokens"},
		{"too large", "extra: " + strings.Repeat("x", MaxBytes) + "\n", "more than the 4194304 allowed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			var c conf
			_, err := Decode("f.yaml", []byte(tc.yaml), &c)
			runtime.ReadMemStats(&after)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
			// Lexing is linear; the parser must never have run on these.
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 256<<20 {
				t.Errorf("allocated %d MiB refusing a %d-byte document", alloc>>20, len(tc.yaml))
			}
		})
	}
}

// Nesting up to the limit is still accepted.
func TestDecodeAcceptsNestingToTheLimit(t *testing.T) {
	var c struct {
		Extra any `yaml:"extra"`
	}
	doc := "extra: " + strings.Repeat("[", MaxDepth-1) + "1" + strings.Repeat("]", MaxDepth-1) + "\n"
	if _, err := Decode("f.yaml", []byte(doc), &c); err != nil {
		t.Fatal(err)
	}
}

// A config built in code has no document to locate errors in; At must
// still record them (it once dereferenced the missing syntax tree).
func TestAtWithoutADocument(t *testing.T) {
	tests := []struct{ file, want string }{
		{"", `program p has no label "nope"`},
		{"flags", `flags: program p has no label "nope"`},
	}
	for _, tc := range tests {
		d := &Doc{File: tc.file}
		d.At("$.steps[0].filter.keep[0]", "program p has no label %q", "nope")
		if err := d.Err(); err == nil || err.Error() != tc.want {
			t.Errorf("error %v, want %q", err, tc.want)
		}
	}
}

func TestClosest(t *testing.T) {
	known := []string{"labels", "examples", "examples_file", "description", "positive"}
	tests := []struct{ got, want string }{
		{"lables", "labels"},
		{"exmaples", "examples"},
		{"examples_fil", "examples_file"},
		{"colour", ""},
		{"x", ""},
	}
	for _, tc := range tests {
		if got := Closest(tc.got, known); got != tc.want {
			t.Errorf("Closest(%q) = %q, want %q", tc.got, got, tc.want)
		}
	}
}

func TestSettings(t *testing.T) {
	type inner struct {
		MaxRecords int    `yaml:"max_records"`
		Password   string `yaml:"password,omitempty"`
	}
	cfg := struct {
		Brokers []string      `yaml:"brokers"`
		Wait    time.Duration `yaml:"wait"`
		Batch   inner         `yaml:"batch"`
		Token   string        `yaml:"token"`
		EnvName string        `yaml:"password_env"`
	}{Brokers: []string{"a:9092", "b:9092"}, Wait: 5 * time.Millisecond, Batch: inner{MaxRecords: 1024, Password: "hunter2"}, Token: "", EnvName: "KAFKA_PASSWORD"}
	got := fmt.Sprint(Settings(cfg))
	want := "[batch.max_records 1024 batch.password_set true brokers [a:9092 b:9092] password_env KAFKA_PASSWORD token_set false wait 5ms]"
	if got != want {
		t.Fatalf("Settings =\n%s\nwant\n%s", got, want)
	}
	if strings.Contains(got, "hunter2") {
		t.Fatal("a password was logged")
	}
}
