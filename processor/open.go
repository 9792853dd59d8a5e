package processor

import (
	"errors"

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
