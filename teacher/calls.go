package teacher

import "time"

// Defaults of Calls and of the call budgets that embed it.
const (
	DefaultConcurrency = 4
	DefaultMaxCalls    = 1000
	// MaxConcurrency is the most calls in flight a config may ask for.
	MaxConcurrency = 64
)

// Calls is how a teacher is called. A spec's teacher: and a pipeline's
// escalate.teacher: embed it, so they share these keys, defaults and
// checks. Zero values take the defaults.
type Calls struct {
	// Concurrency bounds calls in flight. Default: 4.
	Concurrency int `yaml:"concurrency,omitempty" json:"concurrency,omitempty"`
	// Timeout per request. The default is the caller's: a compile can wait
	// longer than a record.
	Timeout time.Duration `yaml:"timeout,omitempty" json:"timeout,omitempty"`
	// CacheDir keeps answers on disk. Default: DefaultCacheDir, the same
	// folder at compile and run time, so a line labelled once is free after.
	CacheDir string `yaml:"cache_dir,omitempty" json:"cache_dir,omitempty"`
}

// WithDefaults fills the zero values, timeout being the caller's default.
func (c Calls) WithDefaults(timeout time.Duration) Calls {
	if c.Concurrency == 0 {
		c.Concurrency = DefaultConcurrency
	}
	if c.Timeout == 0 {
		c.Timeout = timeout
	}
	if c.CacheDir == "" {
		c.CacheDir = DefaultCacheDir()
	}
	return c
}

// Check is one key of a config and whether its value is out of range.
type Check struct {
	Key string
	Bad bool
}

// OutOfRange lists the keys whose values are out of range, for a config's
// located errors: those of extra that are, then Calls' own, in key order.
func (c Calls) OutOfRange(extra ...Check) []string {
	checks := append(extra,
		Check{"concurrency", c.Concurrency < 0 || c.Concurrency > MaxConcurrency},
		Check{"timeout", c.Timeout < 0})
	var keys []string
	for _, k := range checks {
		if k.Bad {
			keys = append(keys, k.Key)
		}
	}
	return keys
}

// Config is the client configuration that calls e this way, within b.
func (c Calls) Config(e Endpoint, b *Budget) Config {
	return Config{Endpoint: e, Timeout: c.Timeout, CacheDir: c.CacheDir, Budget: b}
}
