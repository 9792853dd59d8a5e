package sidecar

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/pawlogs/paw/compiler"
	"github.com/pawlogs/paw/internal/lifecycle"
	"github.com/pawlogs/paw/internal/yamlconf"
	"github.com/pawlogs/paw/metrics"
)

// Config configures paw serve. Zero values take the defaults.
type Config struct {
	// SpecsDir is the folder of specs (*.yaml) to compile. Required.
	SpecsDir string `yaml:"specs"`
	// ProgramsDir receives <name>.paw, published atomically. Required.
	ProgramsDir string `yaml:"programs"`
	// Listen is the HTTP address. Default: 127.0.0.1:8080 (loopback).
	Listen string `yaml:"listen"`
	// Token, when set, is required as "Authorization: Bearer <token>" on
	// every endpoint but /healthz. paw serve reads it from $PAW_TOKEN.
	Token string `yaml:"token"`
	// Debounce waits for a spec to stop changing. Default: 300ms.
	Debounce time.Duration `yaml:"debounce"`
	// Concurrency bounds spec-folder compiles running at once. Default: 2.
	Concurrency int `yaml:"concurrency"`
	// HTTPCompiles bounds POST /v1/compile requests running at once, apart
	// from the spec folder's compiles, which they can then never starve;
	// one more is answered 503 with Retry-After. Default: 1.
	HTTPCompiles int `yaml:"http_compiles"`
	// HTTPCompileTimeout cancels a POST /v1/compile that runs longer.
	// Default: 60s.
	HTTPCompileTimeout time.Duration `yaml:"http_compile_timeout"`
	// MaxSpecBytes caps a POST /v1/compile body. Default: 256 KiB.
	MaxSpecBytes int64 `yaml:"max_spec_bytes"`
	// MaxBodyBytes caps POST /v1/report bodies. Default: 1 MiB.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// AnswersDir keeps each program's answer log (<name>.answers.jsonl).
	// Default: ProgramsDir/.answers.
	AnswersDir string `yaml:"answers_dir"`
	// LearnMinAnswers new answers, no sooner than LearnInterval after the
	// program last learned, recompile it with its answers. Defaults: 20
	// and 5m.
	LearnMinAnswers int           `yaml:"learn_min_answers"`
	LearnInterval   time.Duration `yaml:"learn_interval"`
	// AllowedHosts are the host names (besides IP literals and localhost)
	// the API answers to when no Token is set, against DNS rebinding; list
	// the name other containers reach the sidecar by.
	AllowedHosts []string `yaml:"allowed_hosts"`
	// MetricsDir keeps the reported decision metrics (tstorage); "" keeps
	// them in memory. Retention drops older points. Default: 14 days.
	MetricsDir string        `yaml:"metrics_dir"`
	Retention  time.Duration `yaml:"retention"`
	// Drift configures the drift check, run every DriftInterval
	// (default 30s) over the reported decisions of each program.
	Drift         metrics.DriftConfig `yaml:"drift"`
	DriftInterval time.Duration       `yaml:"drift_interval"`
}

func (c Config) withDefaults() Config {
	if c.Listen == "" {
		c.Listen = "127.0.0.1:8080"
	}
	if c.Debounce <= 0 {
		c.Debounce = 300 * time.Millisecond
	}
	if c.Concurrency <= 0 {
		c.Concurrency = 2
	}
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = 1 << 20
	}
	if c.HTTPCompiles <= 0 {
		c.HTTPCompiles = 1
	}
	if c.HTTPCompileTimeout <= 0 {
		c.HTTPCompileTimeout = 60 * time.Second
	}
	if c.MaxSpecBytes <= 0 {
		c.MaxSpecBytes = 256 << 10
	}
	if c.AnswersDir == "" && c.ProgramsDir != "" {
		c.AnswersDir = filepath.Join(c.ProgramsDir, ".answers")
	}
	if c.LearnMinAnswers <= 0 {
		c.LearnMinAnswers = 20
	}
	if c.LearnInterval <= 0 {
		c.LearnInterval = 5 * time.Minute
	}
	if c.DriftInterval <= 0 {
		c.DriftInterval = 30 * time.Second
	}
	return c
}

// Options are the sidecar's collaborators.
type Options struct {
	Logger *slog.Logger
	// OnListen, if set, receives the bound address (for Listen ":0").
	OnListen func(addr string)
	// compileHook lets tests watch compiles start and end.
	compileHook func(spec string, start bool)
}

// Run serves until ctx ends, then shuts the server down and waits for
// compiles in progress.
func Run(ctx context.Context, cfg Config, opts Options) (err error) {
	cfg = cfg.withDefaults()
	if cfg.SpecsDir == "" || cfg.ProgramsDir == "" {
		return errors.New("sidecar: the specs and programs folders are required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	lc := lifecycle.New("paw serve", opts.Logger, "specs", cfg.SpecsDir, "programs", cfg.ProgramsDir, "listen", cfg.Listen, "token", cfg.Token != "")
	defer func() { err = lc.Stop(err) }()
	reg := prometheus.NewRegistry()
	b := newBuilder(cfg, opts.Logger, reg)
	defer b.learn.close()
	b.hook = opts.compileHook
	store, err := metrics.Open(cfg.MetricsDir, cfg.Retention)
	if err != nil {
		// The metrics store must never keep paw from serving programs.
		opts.Logger.Error("metrics store unusable; keeping metrics in memory", "dir", cfg.MetricsDir, "err", err)
		if store, err = metrics.Open("", cfg.Retention); err != nil {
			return err
		}
	}
	for _, q := range store.Quarantined {
		opts.Logger.Warn("metrics data tstorage could not read was moved aside", "to", q)
	}
	defer func() {
		if err := store.Close(); err != nil {
			opts.Logger.Error("metrics store close", "err", err)
		}
	}()
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("sidecar: listen: %w", err)
	}
	if opts.OnListen != nil {
		opts.OnListen(ln.Addr().String())
	}
	// Ready once the first scan of the specs folder has queued every
	// spec: programs published before are served, new ones are on their way.
	b.onReady = func() { lc.Ready("listen", "http://"+ln.Addr().String()) }
	srv := &http.Server{
		Handler:           newHandler(cfg, b, reg, store, metrics.NewFleet(), lc),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      cfg.HTTPCompileTimeout + 30*time.Second, // POST /v1/compile trains a program
		IdleTimeout:       2 * time.Minute,
	}
	opts.Logger.Info("settings", yamlconf.Settings(cfg)...)
	drift := metrics.NewDriftGauge(reg)
	lc.Feed(ctx, func(ctx context.Context) {
		metrics.WatchDrift(ctx, store, metrics.DriftWatch{
			Config: cfg.Drift, Interval: cfg.DriftInterval, Gauge: drift, Logger: opts.Logger,
			Programs: b.driftTargets, OnCheck: b.setDrift,
		})
	})
	// The pattern board is saved every minute, and by store.Close.
	lc.Feed(ctx, func(ctx context.Context) { store.SavePatternsEvery(ctx, time.Minute, opts.Logger) })
	bctx, stopBuilder := context.WithCancel(ctx)
	defer stopBuilder()
	// built is closed once the builder returns, so it can be waited on
	// more than once; buildErr is set before.
	var buildErr error
	built := make(chan struct{})
	go func() { buildErr = b.run(bctx); close(built) }()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case <-ctx.Done():
		lc.Drain(context.Cause(ctx).Error())
	case <-built:
		if buildErr != nil {
			srv.Close()
			<-served
			return buildErr
		}
		lc.Drain("the specs watch ended")
	case err := <-served:
		stopBuilder()
		<-built
		return fmt.Errorf("sidecar: serve: %w", err)
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	err = srv.Shutdown(sctx)
	<-served
	stopBuilder()
	<-built
	return errors.Join(err, buildErr)
}

func newHandler(cfg Config, b *builder, reg *prometheus.Registry, store *metrics.Store, f *metrics.Fleet, lc *lifecycle.Lifecycle) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.Handle("GET /readyz", lc.ReadyHandler())
	api := http.NewServeMux()
	api.HandleFunc("GET /v1/programs/{name}", func(w http.ResponseWriter, r *http.Request) {
		data, id, ok := b.artifact(r.PathValue("name"))
		if !ok {
			writeError(w, http.StatusNotFound, APIError{Error: fmt.Sprintf("no published program %q", r.PathValue("name"))})
			return
		}
		serveArtifact(w, r, data, id)
	})
	httpSem := make(chan struct{}, cfg.HTTPCompiles)
	api.HandleFunc("POST /v1/compile", func(w http.ResponseWriter, r *http.Request) {
		compileRequest(w, r, cfg, httpSem)
	})
	api.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	api.HandleFunc("POST /v1/report", reportHandler(cfg, store, f, b, newRefusedCounter(reg)))
	api.HandleFunc("POST /v1/programs/{name}/answers", answersHandler(cfg, b))
	api.HandleFunc("GET /v1/programs/{name}/answers", answersListHandler(b))
	metrics.MountDashboard(api, store, f, b.publishedIDs, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, b.list())
	}))
	mux.Handle("/", requireToken(cfg.Token, api))
	return guard(cfg, mux)
}

func requireToken(token string, next http.Handler) http.Handler {
	if token == "" {
		return next
	}
	want := []byte("Bearer " + token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := r.Header.Get("Authorization")
		if q := r.URL.Query().Get("access_token"); got == "" && q != "" && r.Method == http.MethodGet {
			got = "Bearer " + q // RFC 6750 query form, for the dashboard in a browser
		}
		if subtle.ConstantTimeCompare([]byte(got), want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="paw"`)
			writeError(w, http.StatusUnauthorized, APIError{Error: "missing or wrong bearer token"})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// serveArtifact sends a program with its ID as ETag, so pollers can ask
// with If-None-Match and get 304 until it changes.
func serveArtifact(w http.ResponseWriter, r *http.Request, data []byte, id string) {
	etag := `"` + id + `"`
	w.Header().Set("ETag", etag)
	w.Header().Set("X-Paw-Program-Id", id)
	if match := r.Header.Get("If-None-Match"); match != "" {
		for _, m := range strings.Split(match, ",") {
			if m = strings.TrimSpace(m); m == etag || m == "*" {
				w.WriteHeader(http.StatusNotModified)
				return
			}
		}
	}
	w.Header().Set("Content-Type", "application/zip")
	w.WriteHeader(http.StatusOK)
	w.Write(data)
}

// compileRequest compiles a spec sent in the body. Such a spec may not read
// files: examples_file is refused. sem holds the HTTP compiles running.
func compileRequest(w http.ResponseWriter, r *http.Request, cfg Config, sem chan struct{}) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, cfg.MaxSpecBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeError(w, http.StatusRequestEntityTooLarge, APIError{Error: fmt.Sprintf("spec larger than %d bytes (larger example sets belong in a spec folder's examples_file)", cfg.MaxSpecBytes)})
			return
		}
		writeError(w, http.StatusBadRequest, APIError{Error: err.Error()})
		return
	}
	spec, err := compiler.ParseSpec("request", body, compiler.LoadOptions{NoFiles: true})
	if err != nil {
		writeErrors(w, http.StatusUnprocessableEntity, apiErrors(err))
		return
	}
	select {
	case sem <- struct{}{}:
	default:
		w.Header().Set("Retry-After", "5")
		writeError(w, http.StatusServiceUnavailable, APIError{Error: fmt.Sprintf("%d HTTP compiles are running already; retry later", cap(sem))})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), cfg.HTTPCompileTimeout)
	res, err := compiler.Compile(ctx, spec, nil)
	cancel()
	<-sem
	if errors.Is(err, context.DeadlineExceeded) {
		writeError(w, http.StatusUnprocessableEntity, APIError{Error: fmt.Sprintf("compile stopped after %s, the limit for HTTP compiles: lower options.epochs or the examples, or compile it from the spec folder", cfg.HTTPCompileTimeout)})
		return
	}
	if err != nil {
		writeErrors(w, http.StatusUnprocessableEntity, apiErrors(err))
		return
	}
	serveArtifact(w, r, res.Artifact, res.ID)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

func writeError(w http.ResponseWriter, code int, e APIError) {
	writeJSON(w, code, e)
}

// writeErrors sends the first error at the top level ({"error", "line",
// "column"}) and all of them under "errors".
func writeErrors(w http.ResponseWriter, code int, es []APIError) {
	writeJSON(w, code, struct {
		APIError
		Errors []APIError `json:"errors"`
	}{es[0], es})
}
