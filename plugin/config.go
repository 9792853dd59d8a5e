// Package plugin is the logic of out_paw, paw's Fluent Bit output plugin:
// properties, chunk decoding, the pipeline and the outputs. The cgo
// callbacks Fluent Bit calls live in plugin/cmd/out_paw and only delegate
// here.
package plugin

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/pawlogs/paw/runtime"
)

// Config is an out_paw instance's properties.
type Config struct {
	// Pipeline is the pipeline YAML, the processor's format. Required.
	Pipeline string `yaml:"pipeline"`
	// ProgramsDir overrides the pipeline's programs_dir.
	ProgramsDir string `yaml:"programs_dir"`
	// ProgramsURL fetches the programs from a paw serve sidecar instead,
	// polling it every ProgramsPoll (default 5s) with ProgramsToken.
	ProgramsURL   string        `yaml:"programs_url"`
	ProgramsToken string        `yaml:"programs_token"`
	ProgramsPoll  time.Duration `yaml:"programs_poll"`
	// Field is the record key holding the text, dotted for nested maps.
	// Default: the pipeline's input when that is a field path (as the
	// processor reads it), else "log".
	Field string `yaml:"field"`
	// Output is stdout, file://PATH or kafka://host1:9092,host2:9092/TOPIC.
	// Default: stdout.
	Output string `yaml:"output"`
	// MaxBatch is the interpreter's micro-batch. Default: 256.
	MaxBatch int `yaml:"max_batch"`
	// Device is cpu, cuda or cuda:N. Default: cpu.
	Device string `yaml:"device"`
	// DeadLetter, a file path, receives records without the field or with
	// a non-string one (as JSON lines with the reason); default: they are
	// passed through untagged. Either way they are counted.
	DeadLetter string `yaml:"dead_letter"`
	// ReportURL pushes metrics snapshots to paw serve every
	// ReportInterval (default 5s), as ReportName (default host-pid).
	ReportURL      string        `yaml:"report_url"`
	ReportToken    string        `yaml:"report_token"`
	ReportInterval time.Duration `yaml:"report_interval"`
	ReportName     string        `yaml:"report_name"`
	// TemplateCache as in runtime.BatcherConfig; -1 turns it off.
	TemplateCache int `yaml:"template_cache"`
	// ORTLib is the ONNX Runtime library; default as for paw.
	ORTLib string `yaml:"ort_lib"`
	// LogLevel: debug, info, warn or error. Default: info.
	LogLevel string `yaml:"log_level"`
	// Alias is Fluent Bit's name for the instance; every log line carries
	// it (or, without one, the pipeline path) as instance.
	Alias string `yaml:"alias"`
}

// Name is how the instance's log lines name it.
func (c Config) Name() string {
	if c.Alias != "" {
		return c.Alias
	}
	return c.Pipeline
}

// Properties lists every property out_paw reads.
var Properties = []string{"pipeline", "programs_dir", "programs_url", "programs_token", "programs_poll", "report_url", "report_token", "report_interval", "report_name", "field", "output", "max_batch", "device", "dead_letter", "template_cache", "ort_lib", "log_level", "alias"}

// ParseConfig reads the properties through get (Fluent Bit's property
// lookup; "" when unset) and validates them. Errors name the property.
func ParseConfig(get func(key string) string) (Config, error) {
	c := Config{
		Pipeline: get("pipeline"), ProgramsDir: get("programs_dir"), ProgramsURL: get("programs_url"), ProgramsToken: get("programs_token"),
		ReportURL: get("report_url"), ReportToken: get("report_token"), ReportName: get("report_name"), Field: get("field"), Output: get("output"),
		Device: get("device"), DeadLetter: get("dead_letter"), ORTLib: get("ort_lib"), LogLevel: get("log_level"), Alias: get("alias"),
	}
	if c.Pipeline == "" {
		return c, fmt.Errorf("property pipeline is required: the pipeline YAML to apply")
	}
	if c.ProgramsURL != "" && !strings.HasPrefix(c.ProgramsURL, "http://") && !strings.HasPrefix(c.ProgramsURL, "https://") {
		return c, fmt.Errorf("property programs_url %q: want an http(s) URL of paw serve", c.ProgramsURL)
	}
	var err error
	if c.ProgramsPoll, err = durationProperty(get, "programs_poll"); err != nil {
		return c, err
	}
	if c.ReportInterval, err = durationProperty(get, "report_interval"); err != nil {
		return c, err
	}
	if c.ReportURL != "" && !strings.HasPrefix(c.ReportURL, "http://") && !strings.HasPrefix(c.ReportURL, "https://") {
		return c, fmt.Errorf("property report_url %q: want an http(s) URL of paw serve", c.ReportURL)
	}
	if c.ReportName == "" {
		host, _ := os.Hostname()
		c.ReportName = fmt.Sprintf("%s-%d", host, os.Getpid())
	}
	if c.Field != "" && (strings.HasPrefix(c.Field, ".") || strings.HasSuffix(c.Field, ".") || strings.Contains(c.Field, "..")) {
		return c, fmt.Errorf("property field %q: want a key or a dotted path such as kubernetes.labels.app", c.Field)
	}
	if c.Output == "" {
		c.Output = "stdout"
	}
	if _, err := parseOutput(c.Output); err != nil {
		return c, fmt.Errorf("property output: %w", err)
	}
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

// durationProperty reads a duration of at least 100ms; default 5s.
func durationProperty(get func(string) string, key string) (time.Duration, error) {
	s := get(key)
	if s == "" {
		return 5 * time.Second, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 100*time.Millisecond {
		return 0, fmt.Errorf("property %s %q: want a duration of at least 100ms, such as 5s", key, s)
	}
	return d, nil
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

// DefaultField is the record key out_paw reads when neither the field
// property nor the pipeline's input names one: Fluent Bit's tail input
// puts the line there.
const DefaultField = "log"

// fieldFor is the field an instance reads: the property, else the
// pipeline's input when it is a field path, else DefaultField. A pipeline
// input that is a template is refused rather than ignored: out_paw reads
// one field, and the same pipeline would read other text in paw process.
func fieldFor(c Config, pipelineInput string) (string, error) {
	switch {
	case c.Field != "":
		return c.Field, nil
	case pipelineInput == "":
		return DefaultField, nil
	case strings.Contains(pipelineInput, "{{"):
		return "", fmt.Errorf("pipeline input %q is a template: out_paw reads one field of a record; set the field property", pipelineInput)
	}
	return pipelineInput, nil
}
