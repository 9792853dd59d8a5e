package processor

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"strings"
	"time"

	"github.com/pawlogs/paw/internal/yamlconf"
	"github.com/pawlogs/paw/runtime"
)

// Config is a processor file (configs/processor.yaml). Zero values take the
// defaults documented on each field; Load applies them.
type Config struct {
	// Brokers are the bootstrap addresses. Required.
	Brokers []string `yaml:"brokers"`
	// GroupID is the consumer group; replicas sharing it split the
	// partitions. Default: "paw".
	GroupID string `yaml:"group_id,omitempty"`
	// Topics are the input topics. Required.
	Topics []string `yaml:"topics"`
	// StartOffset is where a group with no committed offset starts:
	// "earliest" or "latest". Default: "earliest".
	StartOffset string `yaml:"start_offset,omitempty"`
	// Pipeline is the pipeline file, relative to this file. Required. Its
	// input selector decides the record format: the whole line means text
	// records (tags become headers), a field or template means JSON records
	// (tags become fields).
	Pipeline string `yaml:"pipeline"`
	// ProgramsURL, when set, fetches the pipeline's programs from a paw
	// serve sidecar (http://host:8080) instead of its programs_dir, and
	// polls it for new versions. Default: the folder.
	ProgramsURL string `yaml:"programs_url,omitempty"`
	// ProgramsTokenEnv names the environment variable holding the
	// sidecar's bearer token. Default: PAW_TOKEN.
	ProgramsTokenEnv string `yaml:"programs_token_env,omitempty"`
	// ProgramsPoll is how often the sidecar is asked. Default: 5s.
	ProgramsPoll time.Duration `yaml:"programs_poll,omitempty"`
	// OutputTopic receives kept records the pipeline does not route. Required
	// unless the pipeline has a route step.
	OutputTopic string `yaml:"output_topic,omitempty"`
	// AuditTopic receives records a filter dropped, with a paw-dropped-by
	// header. Default: none; dropped records are only counted.
	AuditTopic string `yaml:"audit_topic,omitempty"`
	// DLQTopic receives records that cannot be processed, with headers
	// saying why and where they came from. Required.
	DLQTopic string `yaml:"dlq_topic"`
	// TagsField is the JSON field that holds the tags of JSON records.
	// Default: "paw".
	TagsField string `yaml:"tags_field,omitempty"`
	// MaxRecordBytes sends larger records to the DLQ unread. It must leave
	// room for tags below producer.max_message_bytes. Default: 512 KiB.
	MaxRecordBytes int `yaml:"max_record_bytes,omitempty"`
	// Partitioning picks output partitions: "input" keeps a record in its
	// input partition number (modulo the output topic's partitions), so
	// each input partition's order holds in every output topic; "key"
	// hashes the record key. Default: "input".
	Partitioning string `yaml:"partitioning,omitempty"`
	// Group tunes consumer-group membership.
	Group GroupConfig `yaml:"group,omitempty"`
	// Batch sizes the micro-batches handed to the pipeline.
	Batch BatchConfig `yaml:"batch,omitempty"`
	// Producer configures the kafka-go Writer.
	Producer ProducerConfig `yaml:"producer,omitempty"`
	// CommitInterval is how often acknowledged offsets are committed.
	// Default: 500ms.
	CommitInterval time.Duration `yaml:"commit_interval,omitempty"`
	// ShutdownTimeout bounds the drain on SIGTERM. Default: 30s.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout,omitempty"`
	// TemplateCache is the decisions each interpreter worker remembers by
	// token-stream key (runtime.BatcherConfig.TemplateCache); -1 turns the
	// cache off. Default: 16384.
	TemplateCache int `yaml:"template_cache,omitempty"`
	// Device runs the programs: cpu, cuda or cuda:N. Default: cpu.
	Device string `yaml:"device,omitempty"`
	// Reload watches the programs folder and swaps changed programs in.
	// Default: true.
	Reload *bool `yaml:"reload,omitempty"`
	// MetricsListen serves Prometheus metrics on /metrics when set, e.g.
	// "127.0.0.1:9464". Default: off.
	MetricsListen string `yaml:"metrics_listen,omitempty"`
	// Report pushes decision metrics to paw serve.
	Report ReportConfig `yaml:"report,omitempty"`
	// MetricsDir keeps this processor's own decision metrics (tstorage)
	// when it reports to no sidecar; metrics_listen then also serves the
	// dashboard (/) and /v1/metrics/query. Default: in memory.
	MetricsDir string `yaml:"metrics_dir,omitempty"`
	// MetricsRetention drops older points. Default: 14 days.
	MetricsRetention time.Duration `yaml:"metrics_retention,omitempty"`
	// AnswersDir keeps the teacher's answers to this processor's
	// escalations, one log per program (<program>.answers.jsonl), when it
	// reports to no sidecar (with one, the sidecar keeps them). paw serve
	// --answers-dir learns from such a folder. Default: .answers in the
	// pipeline's programs folder.
	AnswersDir string `yaml:"answers_dir,omitempty"`
	// TLS and SASL secure the broker connections.
	TLS  *TLSConfig  `yaml:"tls,omitempty"`
	SASL *SASLConfig `yaml:"sasl,omitempty"`

	file string
}

// ReportConfig pushes metrics snapshots to the sidecar (POST /v1/report).
type ReportConfig struct {
	// URL of paw serve, e.g. http://sidecar:8080. Default: no reports.
	URL string `yaml:"url,omitempty"`
	// TokenEnv names the variable holding the sidecar's bearer token.
	// Default: PAW_TOKEN.
	TokenEnv string `yaml:"token_env,omitempty"`
	// Interval between reports. Default: 5s.
	Interval time.Duration `yaml:"interval,omitempty"`
	// Name identifies this replica in the fleet view. Default: host-pid.
	Name string `yaml:"name,omitempty"`
}

// GroupConfig tunes consumer-group membership: how fast a dead replica's
// partitions move to the others.
type GroupConfig struct {
	// SessionTimeout is how long the group waits for a silent member before
	// reassigning its partitions. Default: 30s.
	SessionTimeout time.Duration `yaml:"session_timeout,omitempty"`
	// HeartbeatInterval. Default: 3s.
	HeartbeatInterval time.Duration `yaml:"heartbeat_interval,omitempty"`
	// RebalanceTimeout bounds how long members get to rejoin. Default: 30s.
	RebalanceTimeout time.Duration `yaml:"rebalance_timeout,omitempty"`
}

// BatchConfig sizes pipeline micro-batches.
type BatchConfig struct {
	// MaxRecords per batch. Default: 1024.
	MaxRecords int `yaml:"max_records,omitempty"`
	// MaxWait closes a partial batch. Default: 5ms.
	MaxWait time.Duration `yaml:"max_wait,omitempty"`
}

// ProducerConfig configures the writer. Acks are always RequireAll.
type ProducerConfig struct {
	// BatchSize is the most records per produce request and partition.
	// Default: 1000.
	BatchSize int `yaml:"batch_size,omitempty"`
	// BatchTimeout flushes a partial produce batch. Default: 10ms.
	BatchTimeout time.Duration `yaml:"batch_timeout,omitempty"`
	// Compression: none, gzip, snappy, lz4 or zstd. Default: none.
	Compression string `yaml:"compression,omitempty"`
	// MaxMessageBytes is the largest produce batch, and so the largest
	// message; keep it at or below the brokers' message.max.bytes.
	// Default: 1048576.
	MaxMessageBytes int `yaml:"max_message_bytes,omitempty"`
	// MaxAttempts per produce batch before the processor rewinds to its last
	// commit and starts over. Each attempt after the first may duplicate
	// the batch (kafka-go's writer is not idempotent). Default: 3.
	MaxAttempts int `yaml:"max_attempts,omitempty"`
	// MaxInFlight bounds records handed to the writer but not yet
	// acknowledged; it bounds memory under any backlog. Default: 20000.
	MaxInFlight int `yaml:"max_in_flight,omitempty"`
}

// TLSConfig enables TLS to the brokers.
type TLSConfig struct {
	// CAFile verifies the brokers; default: the system roots.
	CAFile string `yaml:"ca_file,omitempty"`
	// CertFile and KeyFile present a client certificate (mutual TLS).
	CertFile string `yaml:"cert_file,omitempty"`
	KeyFile  string `yaml:"key_file,omitempty"`
	// ServerName overrides the name checked in the broker certificate.
	ServerName string `yaml:"server_name,omitempty"`
	// InsecureSkipVerify disables verification; for tests only.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify,omitempty"`
}

// SASLConfig authenticates to the brokers. Each secret may come from the
// environment instead: a *_env key names the variable.
type SASLConfig struct {
	// Mechanism: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512.
	Mechanism   string `yaml:"mechanism"`
	Username    string `yaml:"username,omitempty"`
	UsernameEnv string `yaml:"username_env,omitempty"`
	Password    string `yaml:"password,omitempty"`
	PasswordEnv string `yaml:"password_env,omitempty"`
}

// Defaults.
const (
	DefaultGroupID        = "paw"
	DefaultMaxRecordBytes = 512 << 10
	DefaultTagsField      = "paw"
)

// tagRoom is what the processor may add to a record: tags, headers and
// message overhead.
const tagRoom = 64 << 10

var compressions = []string{"none", "gzip", "snappy", "lz4", "zstd"}

// LoadConfig reads, defaults and validates a processor file.
func LoadConfig(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read processor config: %w", err)
	}
	return ParseConfig(path, data, os.LookupEnv)
}

// ParseConfig validates processor config bytes. lookupEnv resolves *_env
// secrets. Every error names the file, line, column and key.
func ParseConfig(file string, data []byte, lookupEnv func(string) (string, bool)) (*Config, error) {
	var c Config
	doc, err := yamlconf.Decode(file, data, &c)
	if err != nil {
		return nil, err
	}
	c.file = file
	c.applyDefaults()
	c.validate(doc, lookupEnv)
	if err := doc.Err(); err != nil {
		return nil, err
	}
	return &c, nil
}

func (c *Config) applyDefaults() {
	def := func(v *string, d string) {
		if *v == "" {
			*v = d
		}
	}
	defInt := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	defDur := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.GroupID, DefaultGroupID)
	def(&c.StartOffset, "earliest")
	def(&c.TagsField, DefaultTagsField)
	def(&c.Partitioning, "input")
	def(&c.Device, "cpu")
	def(&c.ProgramsTokenEnv, "PAW_TOKEN")
	def(&c.Report.TokenEnv, "PAW_TOKEN")
	defDur(&c.Report.Interval, 5*time.Second)
	defDur(&c.MetricsRetention, 14*24*time.Hour)
	if c.Report.Name == "" {
		host, _ := os.Hostname()
		c.Report.Name = fmt.Sprintf("%s-%d", host, os.Getpid())
	}
	defDur(&c.ProgramsPoll, 5*time.Second)
	def(&c.Producer.Compression, "none")
	defInt(&c.MaxRecordBytes, DefaultMaxRecordBytes)
	defInt(&c.Batch.MaxRecords, 1024)
	defInt(&c.Producer.BatchSize, 1000)
	defInt(&c.Producer.MaxAttempts, 3)
	defInt(&c.Producer.MaxMessageBytes, 1<<20)
	defDur(&c.Group.SessionTimeout, 30*time.Second)
	defDur(&c.Group.HeartbeatInterval, 3*time.Second)
	defDur(&c.Group.RebalanceTimeout, 30*time.Second)
	defInt(&c.Producer.MaxInFlight, 20000)
	defDur(&c.Batch.MaxWait, 5*time.Millisecond)
	defDur(&c.Producer.BatchTimeout, 10*time.Millisecond)
	defDur(&c.CommitInterval, 500*time.Millisecond)
	defDur(&c.ShutdownTimeout, 30*time.Second)
	if c.Reload == nil {
		on := true
		c.Reload = &on
	}
}

func (c *Config) validate(doc *yamlconf.Doc, lookupEnv func(string) (string, bool)) {
	if len(c.Brokers) == 0 {
		doc.At("$", "brokers: at least one broker address is required")
	}
	for i, b := range c.Brokers {
		if !strings.Contains(b, ":") {
			doc.At(fmt.Sprintf("$.brokers[%d]", i), "brokers: %q needs host:port", b)
		}
	}
	if len(c.Topics) == 0 {
		doc.At("$", "topics: at least one input topic is required")
	}
	if c.Pipeline == "" {
		doc.At("$", "pipeline: the pipeline file is required")
	}
	if c.DLQTopic == "" {
		doc.At("$", "dlq_topic: a dead-letter topic is required; poison records go there")
	}
	for i, in := range c.Topics {
		for _, out := range []struct{ key, topic string }{{"output_topic", c.OutputTopic}, {"audit_topic", c.AuditTopic}, {"dlq_topic", c.DLQTopic}} {
			if out.topic != "" && out.topic == in {
				doc.At(fmt.Sprintf("$.topics[%d]", i), "topics: %q is also %s; the processor would read its own output", in, out.key)
			}
		}
	}
	if c.ProgramsURL != "" && !strings.HasPrefix(c.ProgramsURL, "http://") && !strings.HasPrefix(c.ProgramsURL, "https://") {
		doc.At("$.programs_url", "programs_url: %q is not an http(s) URL", c.ProgramsURL)
	}
	if u := c.Report.URL; u != "" && !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
		doc.At("$.report.url", "report.url: %q is not an http(s) URL", u)
	}
	if c.StartOffset != "earliest" && c.StartOffset != "latest" {
		doc.At("$.start_offset", "start_offset: %q is not earliest or latest", c.StartOffset)
	}
	if c.Partitioning != "input" && c.Partitioning != "key" {
		doc.At("$.partitioning", "partitioning: %q is not input or key", c.Partitioning)
	}
	if !slices.Contains(compressions, c.Producer.Compression) {
		doc.At("$.producer.compression", "producer.compression: %q is not one of %s", c.Producer.Compression, strings.Join(compressions, ", "))
	}
	if _, err := runtime.ParseDevice(c.Device); err != nil {
		doc.At("$.device", "device: %v", err)
	}
	positive := []struct {
		path string
		v    int64
	}{
		{"max_record_bytes", int64(c.MaxRecordBytes)},
		{"batch.max_records", int64(c.Batch.MaxRecords)},
		{"batch.max_wait", int64(c.Batch.MaxWait)},
		{"producer.batch_size", int64(c.Producer.BatchSize)},
		{"producer.batch_timeout", int64(c.Producer.BatchTimeout)},
		{"producer.max_attempts", int64(c.Producer.MaxAttempts)},
		{"producer.max_message_bytes", int64(c.Producer.MaxMessageBytes)},
		{"group.session_timeout", int64(c.Group.SessionTimeout)},
		{"group.heartbeat_interval", int64(c.Group.HeartbeatInterval)},
		{"group.rebalance_timeout", int64(c.Group.RebalanceTimeout)},
		{"producer.max_in_flight", int64(c.Producer.MaxInFlight)},
		{"commit_interval", int64(c.CommitInterval)},
		{"shutdown_timeout", int64(c.ShutdownTimeout)},
	}
	if c.TemplateCache < -1 {
		doc.At("$.template_cache", "template_cache must be -1 (off), 0 (default) or a size")
	}
	for _, p := range positive {
		if p.v < 0 {
			doc.At("$."+p.path, "%s must be positive", p.path)
		}
	}
	if c.Producer.MaxInFlight > 0 && c.Producer.MaxInFlight < c.Batch.MaxRecords {
		doc.At("$.producer.max_in_flight", "producer.max_in_flight (%d) must be at least batch.max_records (%d)", c.Producer.MaxInFlight, c.Batch.MaxRecords)
	}
	if c.MaxRecordBytes > 0 && c.MaxRecordBytes+tagRoom > c.Producer.MaxMessageBytes {
		doc.At("$.max_record_bytes", "max_record_bytes (%d) must stay %d bytes below producer.max_message_bytes (%d), room for tags and headers", c.MaxRecordBytes, tagRoom, c.Producer.MaxMessageBytes)
	}
	if t := c.TLS; t != nil {
		if (t.CertFile == "") != (t.KeyFile == "") {
			doc.At("$.tls", "tls: cert_file and key_file go together")
		}
		for _, f := range []struct{ key, path string }{{"ca_file", t.CAFile}, {"cert_file", t.CertFile}, {"key_file", t.KeyFile}} {
			if f.path == "" {
				continue
			}
			if _, err := os.Stat(c.resolve(f.path)); err != nil {
				doc.At("$.tls."+f.key, "tls.%s: %v", f.key, err)
			}
		}
	}
	if s := c.SASL; s != nil {
		switch s.Mechanism {
		case "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512":
		default:
			doc.At("$.sasl.mechanism", "sasl.mechanism: %q is not PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", s.Mechanism)
		}
		resolveSecret(doc, "username", &s.Username, s.UsernameEnv, lookupEnv)
		resolveSecret(doc, "password", &s.Password, s.PasswordEnv, lookupEnv)
	}
}

// resolveSecret fills v from the environment variable env, when named.
func resolveSecret(doc *yamlconf.Doc, key string, v *string, env string, lookupEnv func(string) (string, bool)) {
	switch {
	case env != "" && *v != "":
		doc.At("$.sasl."+key, "sasl: set %s or %s_env, not both", key, key)
	case env != "":
		val, ok := lookupEnv(env)
		if !ok || val == "" {
			doc.At("$.sasl."+key+"_env", "sasl.%s_env: environment variable %s is not set", key, env)
		}
		*v = val
	case *v == "":
		doc.At("$.sasl", "sasl.%s (or %s_env) is required", key, key)
	}
}

// resolve makes a path from the config relative to the config's folder.
func (c *Config) resolve(path string) string {
	if path == "" || filepath.IsAbs(path) {
		return path
	}
	return filepath.Join(filepath.Dir(c.file), path)
}

// PipelinePath is the pipeline file's location.
func (c *Config) PipelinePath() string { return c.resolve(c.Pipeline) }

// OpenPipeline loads the config's pipeline and its programs (from the
// programs folder or the sidecar) on the configured device, sized for the
// processor's batches.
func (c *Config) OpenPipeline(env *runtime.Env) (*runtime.Pipeline, error) {
	pc, err := runtime.LoadPipelineConfig(c.PipelinePath())
	if err != nil {
		return nil, err
	}
	dev, err := runtime.ParseDevice(c.Device)
	if err != nil {
		return nil, err
	}
	// The processor's own loop batches records (batch.max_records,
	// batch.max_wait): the batcher only splits its batches for the
	// workers and never waits for more.
	bc := runtime.BatcherConfig{MaxBatch: runtime.DefaultMaxBatch, MaxDelay: -1, TemplateCache: c.TemplateCache}
	src := runtime.SourceFor(pc.Dir(), c.ProgramsURL, os.Getenv(c.ProgramsTokenEnv))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return runtime.OpenPipelineFrom(ctx, env, pc, runtime.PipelineOptions{
		Program: runtime.ProgramOptions{Device: dev, Sessions: goruntime.GOMAXPROCS(0), MaxBatch: bc.MaxBatch},
		Batcher: bc, MaxRecordBytes: c.MaxRecordBytes,
	}, src)
}
