package yamlconf

import (
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
