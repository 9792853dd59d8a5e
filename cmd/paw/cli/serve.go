package cli

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/pawlogs/paw/metrics"
	"github.com/pawlogs/paw/sidecar"
)

func runServe(e *env, args []string) error {
	fs := newFlags(e, "serve")
	specs := fs.String("specs", "configs/filters", "folder of specs to watch and compile")
	programs := fs.String("programs", "build/programs", "folder to publish <name>.paw programs into")
	listen := fs.String("listen", "127.0.0.1:8080", "HTTP address (loopback by default)")
	concurrency := fs.Int("concurrency", 2, "spec-folder compiles running at once")
	httpCompiles := fs.Int("http-compiles", 1, "POST /v1/compile requests running at once (more get 503)")
	httpTimeout := fs.Duration("http-compile-timeout", time.Minute, "cancel a POST /v1/compile that runs longer")
	answersDir := fs.String("answers-dir", "", "keep each program's answer log here (default: PROGRAMS/.answers)")
	learnMin := fs.Int("learn-min-answers", 20, "recompile a program with its answers once this many new ones have come")
	learnEvery := fs.Duration("learn-interval", 5*time.Minute, "and no sooner than this after it last learned")
	allowedHosts := fs.String("allowed-hosts", "", "comma-separated host names the API answers to without a token, besides IP addresses and localhost")
	metricsDir := fs.String("metrics-dir", "", "keep reported decision metrics here (default: in memory)")
	retention := fs.Duration("retention", 14*24*time.Hour, "drop metrics older than this")
	var drift metrics.DriftConfig
	fs.DurationVar(&drift.Window, "drift-window", 5*time.Minute, "recent window of the drift check")
	fs.DurationVar(&drift.Baseline, "drift-baseline", time.Hour, "longer-run baseline the window is compared with")
	fs.Float64Var(&drift.Band, "drift-band", 0.15, "largest allowed difference of positive rates")
	level := fs.String("log-level", "info", "debug, info, warn or error")
	check := fs.Bool("check", false, "check the folders and parse every spec, print what would be served, and exit")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("unexpected arguments %v", pos)
	}
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(*level)); err != nil {
		return usagef("--log-level: %v", err)
	}
	log := slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: lv}))
	cfg := sidecar.Config{
		SpecsDir: *specs, ProgramsDir: *programs, Listen: *listen, Concurrency: *concurrency,
		MetricsDir: *metricsDir, Retention: *retention, Drift: drift,
		HTTPCompiles: *httpCompiles, HTTPCompileTimeout: *httpTimeout, AllowedHosts: splitList(*allowedHosts),
		AnswersDir: *answersDir, LearnMinAnswers: *learnMin, LearnInterval: *learnEvery,
		Token: os.Getenv("PAW_TOKEN"),
	}
	if *check {
		rep, err := sidecar.Check(cfg)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "%s: ok: %d specs (%s)\n", *specs, len(rep.Specs), strings.Join(rep.Specs, ", "))
		fmt.Fprintf(e.stdout, "%s: %d programs published\n", *programs, len(rep.Published))
		for _, u := range rep.Unreadable {
			fmt.Fprintf(e.stdout, "  unreadable, to be compiled again: %s\n", u)
		}
		return nil
	}
	return sidecar.Run(e.ctx, cfg, sidecar.Options{Logger: log})
}

// splitList splits a comma-separated flag value, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// runHealth is for container healthchecks in images without curl: GET the
// URL, exit 0 on a 2xx answer.
func runHealth(e *env, args []string) error {
	fs := newFlags(e, "health")
	timeout := fs.Duration("timeout", 3*time.Second, "give up after")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("want one URL")
	}
	ctx, cancel := context.WithTimeout(e.ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, pos[0], nil)
	if err != nil {
		return usagef("%v", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s: %s", pos[0], resp.Status)
	}
	return nil
}
