package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"runtime/pprof"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/pawlogs/paw/internal/atomicfile"
	"github.com/pawlogs/paw/internal/devbroker"
	"github.com/pawlogs/paw/metrics"
	"github.com/pawlogs/paw/processor"
)

func runProcess(e *env, args []string) error {
	fs := newFlags(e, "process")
	config := fs.String("config", "", "processor config (see configs/processor.yaml)")
	ortLib := ortLibFlag(fs)
	level := fs.String("log-level", "info", "debug, info, warn or error")
	statsFile := fs.String("stats", "", "write the final totals as JSON to this file on exit")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile to this file (for go tool pprof)")
	metricsDir := fs.String("metrics-dir", "", "keep this processor's metrics here when it reports to no sidecar (overrides metrics_dir)")
	brokers := fs.String("brokers", "", "comma-separated bootstrap brokers (overrides brokers)")
	metricsListen := fs.String("metrics-listen", "", "address of /metrics (overrides metrics_listen)")
	check := fs.Bool("check", false, "validate the config, the pipeline and its programs (loaded and trial-run), print what would run, and exit; no broker is contacted")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if *config == "" || len(pos) > 0 {
		return usagef("--config is required and takes no arguments")
	}
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(*level)); err != nil {
		return usagef("--log-level: %v", err)
	}
	log := slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: lv}))
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	cfg, err := processor.LoadConfig(*config)
	if err != nil {
		return err
	}
	if *metricsDir != "" {
		cfg.MetricsDir = *metricsDir
	}
	if *brokers != "" {
		cfg.Brokers = splitList(*brokers)
	}
	if *metricsListen != "" {
		cfg.MetricsListen = *metricsListen
	}
	if *check {
		return checkProcess(e, *config, cfg, *ortLib)
	}
	opts := processor.Options{Logger: log, Registerer: reg}
	if cfg.Report.URL == "" && cfg.MetricsListen != "" {
		// No sidecar: this processor keeps and serves its own metrics.
		store, err := metrics.Open(cfg.MetricsDir, cfg.MetricsRetention)
		if err != nil {
			return err
		}
		defer func() {
			if err := store.Close(); err != nil {
				log.Error("metrics store close", "err", err)
			}
		}()
		opts.Store, opts.Fleet = store, metrics.NewFleet()
	}
	p, err := processor.OpenConfig(cfg, *ortLib, opts)
	if err != nil {
		return err
	}
	defer p.Close()
	ctx, cancel := context.WithCancel(e.ctx)
	defer cancel()
	if cfg.MetricsListen != "" {
		stop, err := serveMetrics(ctx, cfg.MetricsListen, reg, p, opts, log)
		if err != nil {
			return err
		}
		defer stop()
	}
	runErr := p.Run(ctx)
	if *statsFile != "" {
		data, _ := json.MarshalIndent(processStats{Stats: p.Stats(), PeakRSSBytes: peakRSS()}, "", "  ")
		if err := atomicfile.WriteFile(*statsFile, append(data, '\n')); err != nil {
			runErr = errors.Join(runErr, err)
		}
	}
	return runErr
}

// checkProcess opens what `paw process` would run, short of the brokers,
// and prints it.
func checkProcess(e *env, file string, cfg *processor.Config, ortLib string) error {
	p, err := processor.OpenConfig(cfg, ortLib, processor.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return err
	}
	defer p.Close()
	ids := p.Pipeline().ProgramIDs()
	var progs []string
	for _, name := range slices.Sorted(maps.Keys(ids)) {
		progs = append(progs, name+" "+ids[name][:12])
	}
	fmt.Fprintf(e.stdout, "%s: ok\n", file)
	fmt.Fprintf(e.stdout, "  pipeline %s: steps %d, programs %s\n", cfg.PipelinePath(), len(p.Pipeline().Config().Steps), strings.Join(progs, ", "))
	out := cfg.OutputTopic
	if d := p.Pipeline().Config().Destinations(); out == "" {
		out = "the routes' " + strings.Join(d, ",")
	}
	fmt.Fprintf(e.stdout, "  reads %s from %s; writes %s; dead letters to %s\n", strings.Join(cfg.Topics, ","), strings.Join(cfg.Brokers, ","), out, cfg.DLQTopic)
	return nil
}

// processStats is what --stats writes.
type processStats struct {
	processor.Stats
	// PeakRSSBytes is this process's resident-memory high-water mark
	// (VmHWM); 0 where /proc is not available.
	PeakRSSBytes int64
}

// peakRSS reads VmHWM from /proc/self/status. (A child's rusage Maxrss is
// no substitute on Linux: it starts from the parent's size at fork.)
func peakRSS() int64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			var kb int64
			fmt.Sscanf(strings.TrimSpace(v), "%d", &kb)
			return kb << 10
		}
	}
	return 0
}

// serveMetrics serves /metrics, and with a store of its own the dashboard,
// the query API and the fleet (of one), until stop is called.
func serveMetrics(ctx context.Context, addr string, reg *prometheus.Registry, p *processor.Processor, opts processor.Options, log *slog.Logger) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.Handle("GET /readyz", p.ReadyHandler())
	if opts.Store != nil {
		metrics.MountDashboard(mux, opts.Store, opts.Fleet, nil, p.ProgramsHandler())
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, WriteTimeout: 30 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	log.Info("metrics listening", "addr", "http://"+ln.Addr().String()+"/metrics")
	return func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
		<-done
	}, nil
}

func runBroker(e *env, args []string) error {
	fs := newFlags(e, "broker")
	listen := fs.String("listen", "127.0.0.1:9092", "host:port to listen on")
	dataDir := fs.String("data-dir", "", "persist topics, offsets and groups here (default: memory only)")
	topics := fs.String("topics", "", "topics to create, as name:partitions,... e.g. logs:3,alerts")
	var sasl stringList
	fs.Var(&sasl, "sasl-user", "enable SASL with this user, as MECHANISM:user:password (repeatable)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("unexpected arguments %v", pos)
	}
	ts, err := devbroker.ParseTopics(*topics)
	if err != nil {
		return usagef("--topics: %v", err)
	}
	b, err := devbroker.Start(devbroker.Config{Listen: *listen, DataDir: *dataDir, Topics: ts, SASL: sasl})
	if err != nil {
		return err
	}
	defer b.Close()
	fmt.Fprintf(e.stderr, "paw broker: embedded Kafka-protocol broker (kfake) for demos and tests, NOT for production\n")
	fmt.Fprintf(e.stdout, "listening on %s (topics: %s)\n", b.Addr(), strings.Join(ts, ", "))
	<-e.ctx.Done()
	return nil
}

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }
