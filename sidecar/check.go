package sidecar

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/pawlogs/paw/compiler"
	"github.com/pawlogs/paw/runtime"
)

// CheckReport is what Check found: the specs that load, and the programs
// already published.
type CheckReport struct {
	Specs     []string // spec names, sorted
	Published []string // <name>.paw files that decode, sorted
	// Unreadable are published files that do not decode, with why: the
	// sidecar compiles their specs again rather than serve them.
	Unreadable []string
}

// Check validates a sidecar's configuration without serving: the folders,
// and every spec in the specs folder, parsed as a compile would parse it
// (nothing is trained). The errors name each bad spec with file:line:col;
// `paw serve --check` prints them, like `promtool check config`.
func Check(cfg Config) (CheckReport, error) {
	var rep CheckReport
	cfg = cfg.withDefaults()
	if cfg.SpecsDir == "" || cfg.ProgramsDir == "" {
		return rep, errors.New("the specs and programs folders are required")
	}
	entries, err := os.ReadDir(cfg.SpecsDir)
	if err != nil {
		return rep, fmt.Errorf("specs folder: %w", err)
	}
	if st, err := os.Stat(cfg.ProgramsDir); err == nil && !st.IsDir() {
		return rep, fmt.Errorf("programs folder %s is not a folder", cfg.ProgramsDir)
	}
	var errs []error
	for _, e := range entries {
		if e.IsDir() || !isSpec(e.Name()) {
			continue
		}
		spec, err := compiler.LoadSpec(filepath.Join(cfg.SpecsDir, e.Name()), compiler.LoadOptions{})
		if err != nil {
			errs = append(errs, err)
			continue
		}
		rep.Specs = append(rep.Specs, spec.Name)
	}
	slices.Sort(rep.Specs)
	published, _ := filepath.Glob(filepath.Join(cfg.ProgramsDir, "*.paw"))
	for _, path := range published {
		if _, err := runtime.ReadArtifactFile(path); err != nil {
			rep.Unreadable = append(rep.Unreadable, err.Error())
			continue
		}
		rep.Published = append(rep.Published, filepath.Base(path))
	}
	if len(rep.Specs) == 0 && len(errs) == 0 {
		errs = append(errs, fmt.Errorf("specs folder %s holds no spec (*.yaml)", cfg.SpecsDir))
	}
	return rep, errors.Join(errs...)
}
