package processor

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/pawlogs/paw/runtime"
)

// Open reads a processor file, loads ONNX Runtime (ortLib, or the default
// location) and the pipeline's programs, and prepares a processor that owns
// them: Close releases them after Run.
func Open(configPath, ortLib string, opts Options) (*Processor, error) {
	cfg, err := LoadConfig(configPath)
	if err != nil {
		return nil, err
	}
	return OpenConfig(cfg, ortLib, opts)
}

// OpenConfig is Open with a loaded configuration.
func OpenConfig(cfg *Config, ortLib string, opts Options) (*Processor, error) {
	env, err := runtime.OpenEnv(ortLib)
	if err != nil {
		return nil, err
	}
	pl, err := cfg.OpenPipeline(env)
	if err != nil {
		env.Close()
		return nil, err
	}
	p, err := New(cfg, pl, opts)
	if err != nil {
		pl.Close()
		env.Close()
		return nil, err
	}
	p.owned = env
	return p, nil
}

// Pipeline is the pipeline the processor runs.
func (p *Processor) Pipeline() *runtime.Pipeline { return p.pl }

// Close releases what Open loaded; for a processor from New it does
// nothing (the caller owns the pipeline).
func (p *Processor) Close() error {
	if p.owned == nil {
		return nil
	}
	env := p.owned
	p.owned = nil
	return errors.Join(p.pl.Close(), env.Close())
}

// driftTargets maps each program the processor runs to its positive label.
func (p *Processor) driftTargets() map[string]string {
	out := map[string]string{}
	for _, prog := range p.pl.Programs() {
		if pos := prog.Manifest.Positive; pos != "" {
			out[prog.Name()] = pos
		}
	}
	return out
}

// ProgramsHandler lists the programs running now with their compile-time
// metrics.
func (p *Processor) ProgramsHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var out []runtime.ProgramInfo
		for _, prog := range p.pl.Programs() {
			out = append(out, prog.Info())
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(out)
	})
}
