// Package plugin is the logic of out_paw, paw's Fluent Bit output plugin:
// properties, chunk decoding, the pipeline and the outputs. The cgo
// callbacks Fluent Bit calls live in plugin/cmd/out_paw and only delegate
// here.
package plugin

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/pawlogs/paw/runtime"
)

// Config is an out_paw instance's properties.
type Config struct {
	// Pipeline is the pipeline YAML, the processor's format. Required.
	Pipeline string
	// ProgramsDir overrides the pipeline's programs_dir.
	ProgramsDir string
	// ProgramsURL fetches the programs from a paw serve sidecar instead,
	// polling it every ProgramsPoll (default 5s) with ProgramsToken.
	ProgramsURL   string
	ProgramsToken string
	ProgramsPoll  time.Duration
	// Field is the record key holding the text, dotted for nested maps.
	// Default: "log".
	Field string
	// Output is stdout, file://PATH or kafka://host1:9092,host2:9092/TOPIC.
	// Default: stdout.
	Output string
	// MaxBatch is the interpreter's micro-batch. Default: 256.
	MaxBatch int
	// Device is cpu, cuda or cuda:N. Default: cpu.
	Device string
	// DeadLetter, a file path, receives records without the field or with
	// a non-string one (as JSON lines with the reason); default: they are
	// passed through untagged. Either way they are counted.
	DeadLetter string
	// TemplateCache as in runtime.BatcherConfig; -1 turns it off.
	TemplateCache int
	// ORTLib is the ONNX Runtime library; default as for paw.
	ORTLib string
	// LogLevel: debug, info, warn or error. Default: info.
	LogLevel string
}

// Properties lists every property out_paw reads.
var Properties = []string{"pipeline", "programs_dir", "programs_url", "programs_token", "programs_poll", "field", "output", "max_batch", "device", "dead_letter", "template_cache", "ort_lib", "log_level"}

// ParseConfig reads the properties through get (Fluent Bit's property
// lookup; "" when unset) and validates them. Errors name the property.
func ParseConfig(get func(key string) string) (Config, error) {
	c := Config{
		Pipeline: get("pipeline"), ProgramsDir: get("programs_dir"), ProgramsURL: get("programs_url"), ProgramsToken: get("programs_token"), Field: get("field"), Output: get("output"),
		Device: get("device"), DeadLetter: get("dead_letter"), ORTLib: get("ort_lib"), LogLevel: get("log_level"),
	}
	if c.Pipeline == "" {
		return c, fmt.Errorf("property pipeline is required: the pipeline YAML to apply")
	}
	if c.Field == "" {
		c.Field = "log"
	}
	if c.ProgramsURL != "" && !strings.HasPrefix(c.ProgramsURL, "http://") && !strings.HasPrefix(c.ProgramsURL, "https://") {
		return c, fmt.Errorf("property programs_url %q: want an http(s) URL of paw serve", c.ProgramsURL)
	}
	c.ProgramsPoll = 5 * time.Second
	if s := get("programs_poll"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d < 100*time.Millisecond {
			return c, fmt.Errorf("property programs_poll %q: want a duration of at least 100ms, such as 5s", s)
		}
		c.ProgramsPoll = d
	}
	if strings.HasPrefix(c.Field, ".") || strings.HasSuffix(c.Field, ".") || strings.Contains(c.Field, "..") {
		return c, fmt.Errorf("property field %q: want a key or a dotted path such as kubernetes.labels.app", c.Field)
	}
	if c.Output == "" {
		c.Output = "stdout"
	}
	if _, err := parseOutput(c.Output); err != nil {
		return c, fmt.Errorf("property output: %w", err)
	}
	var err error
	if c.MaxBatch, err = intProperty(get, "max_batch", runtime.DefaultMaxBatch, 1, 1<<16); err != nil {
		return c, err
	}
	if c.TemplateCache, err = intProperty(get, "template_cache", 0, -1, 1<<24); err != nil {
		return c, err
	}
	if c.Device == "" {
		c.Device = "cpu"
	}
	if _, err := runtime.ParseDevice(c.Device); err != nil {
		return c, fmt.Errorf("property device: %w", err)
	}
	switch c.LogLevel {
	case "":
		c.LogLevel = "info"
	case "debug", "info", "warn", "error":
	default:
		return c, fmt.Errorf("property log_level %q: want debug, info, warn or error", c.LogLevel)
	}
	return c, nil
}

func intProperty(get func(string) string, key string, def, lo, hi int) (int, error) {
	s := get(key)
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("property %s %q: want an integer from %d to %d", key, s, lo, hi)
	}
	return n, nil
}
