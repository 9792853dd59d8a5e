package archcheck

import (
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/pawlogs/paw/"

// graph is package -> the module packages it imports, from go list.
func graph(t *testing.T) map[string][]string {
	t.Helper()
	cmd := exec.Command("go", "list", "-f", "{{.ImportPath}}:{{range .Imports}} {{.}}{{end}}", "./...")
	cmd.Dir = "../.."
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	g := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		pkg, deps, _ := strings.Cut(line, ":")
		var ds []string
		for _, d := range strings.Fields(deps) {
			if strings.HasPrefix(d, module) {
				ds = append(ds, strings.TrimPrefix(d, module))
			}
		}
		slices.Sort(ds)
		g[strings.TrimPrefix(pkg, module)] = ds
	}
	return g
}

func TestArchitectureMatchesGoList(t *testing.T) {
	doc, err := os.ReadFile("../../ARCHITECTURE.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(doc), "## Imports")
	if !ok {
		t.Fatal("ARCHITECTURE.md has no Imports section")
	}
	_, rest, _ = strings.Cut(rest, "```\n")
	block, _, _ := strings.Cut(rest, "```")
	documented := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(block), "\n") {
		pkg, deps, _ := strings.Cut(line, ":")
		documented[pkg] = strings.Fields(deps)
	}
	actual := graph(t)
	for pkg, deps := range actual {
		if d, ok := documented[pkg]; !ok || !slices.Equal(d, deps) {
			t.Errorf("%s imports %v; ARCHITECTURE.md says %v", pkg, deps, documented[pkg])
		}
	}
	for pkg := range documented {
		if _, ok := actual[pkg]; !ok {
			t.Errorf("ARCHITECTURE.md lists %s, which is not a package", pkg)
		}
	}
}

// The layering rules of ARCHITECTURE.md, on the transitive imports.
func TestLayering(t *testing.T) {
	g := graph(t)
	reach := func(from string) map[string]bool {
		seen := map[string]bool{}
		var walk func(string)
		walk = func(p string) {
			for _, d := range g[p] {
				if !seen[d] {
					seen[d] = true
					walk(d)
				}
			}
		}
		walk(from)
		return seen
	}
	rules := []struct{ from, not string }{
		{"runtime", "compiler"}, {"runtime", "processor"}, {"runtime", "plugin"}, {"runtime", "sidecar"},
		{"processor", "plugin"}, {"plugin", "processor"}, {"compiler", "processor"}, {"compiler", "plugin"},
	}
	for _, r := range rules {
		if reach(r.from)[r.not] {
			t.Errorf("%s reaches %s", r.from, r.not)
		}
	}
}
