// Package cli implements the paw command line: one function per
// subcommand, each parsing its flags and delegating to the compiler and
// runtime packages.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/pawlogs/paw/runtime"
)

// Exit codes.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

// env is what every subcommand gets.
type env struct {
	ctx    context.Context
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	log    *slog.Logger
	tool   tool
}

// A tool is one binary's commands: paw, the product, and pawdev, the
// measurements that build and check paw (tools/pawdev).
type tool struct {
	name, about string
	commands    func() []command
}

func pawTool() tool {
	return tool{"paw", "fuzzy log filters, compiled to programs and run by a local interpreter", commands}
}

func devTool() tool {
	return tool{"pawdev", "measurements of paw for its developers, apart from the product commands", devCommands}
}

type command struct {
	name, usage, help string
	run               func(e *env, args []string) error
}

func commands() []command {
	return []command{
		{"compile", "compile SPEC.yaml... [-o OUT.paw | --out-dir DIR]", "compile specs into .paw programs", runCompile},
		{"test", "test SPEC.yaml|PROGRAM.paw", "run a spec's tests through ONNX Runtime", runTest},
		{"eval", "eval PROGRAM.paw --data FILE.jsonl [--text-field text] [--label-field label] [--json]", "score a program on labelled data", runEval},
		{"run", "run PROGRAM.paw|--pipeline P.yaml [--keep LABEL] [--json]", "fuzzy grep: filter or tag stdin", runRun},
		{"bench", "bench PROGRAM.paw [--data FILE] [--json]", "measure interpreter throughput and latency", runBench},
		{"suggest", "suggest PROGRAM.paw --data FILE [--n 50]", "the unlabelled lines a program is least sure about, as examples to label", runSuggest},
		{"inspect", "inspect PROGRAM.paw", "print a program's manifest", runInspect},
		{"templates", "templates FILE|- [--program P.paw] [--json | --lines-json] [--top 50]", "the patterns of a log (with <*> for variables), largest first", runTemplates},
		{"review", "review PROGRAM --file REVIEW.jsonl [--sidecar URL] [--answer] [--json]", "the escalated templates no one has answered; answer them", runReview},
		{"replay", "replay SPEC.yaml --data LABELLED.jsonl [--teacher-url URL --teacher-model M] [--below X] [--novel-above Y] [--learn-every N] [--json]", "measure the learning loop on a labelled stream", runReplay},
		{"process", "process --config processor.yaml [--log-level info] [--stats FILE]", "run the Kafka stream processor", runProcess},
		{"produce", "produce --topic T [--brokers H:P] [--json-field log] < lines", "write stdin lines to a Kafka topic", runProduce},
		{"consume", "consume --topics A,B [--brokers H:P]", "print what landed in Kafka topics, with headers", runConsume},
		{"serve", "serve [--specs configs/filters] [--programs build/programs] [--listen 127.0.0.1:8080] [--metrics-dir DIR]", "compiler sidecar: compile specs on change, publish programs, HTTP API ($PAW_TOKEN)", runServe},
		{"health", "health URL", "exit 0 if URL answers 2xx (container healthchecks)", runHealth},
		{"broker", "broker [--listen 127.0.0.1:9092] [--data-dir DIR] [--topics logs:3,...]", "embedded Kafka-protocol broker for demos and tests (not for production)", runBroker},
		{"version", "version", "print the compiler version", runVersion},
		{"completion", "completion bash|zsh|fish", "print a shell completion script", runCompletion},
	}
}

// devCommands are pawdev's: experiments and benchmarks over ../shared
// and an embedded broker, which a user of paw does not run.
func devCommands() []command {
	return []command{
		{"quality", "quality --data real-error.jsonl", "few-shot quality experiment against baselines", runQuality},
		{"bench-kafka", "bench-kafka [--program build/programs/real-error.paw] [--records 1000000] [--json]", "processor throughput: pass-through vs filter, on an embedded broker", runBenchKafka},
		{"version", "version", "print the compiler version", runVersion},
	}
}

// usageError makes Main exit 2 and print the subcommand's usage.
type usageError struct{ msg string }

func (u usageError) Error() string { return u.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

// Main runs the paw command line and returns the process exit code.
func Main(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	return mainOf(ctx, pawTool(), args, stdin, stdout, stderr)
}

// Exit runs a command line (Main or DevMain) on the process's arguments
// and standard streams, cancelled by SIGINT or SIGTERM, and exits with its
// code: all a main function does.
func Exit(main func(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := main(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// DevMain runs pawdev's command line and returns the process exit code.
func DevMain(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	return mainOf(ctx, devTool(), args, stdin, stdout, stderr)
}

func mainOf(ctx context.Context, t tool, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	e := &env{ctx: ctx, stdin: stdin, stdout: stdout, stderr: stderr, tool: t,
		log: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))}
	switch {
	case len(args) == 0:
		printUsage(stderr, t)
		return exitUsage
	case args[0] == "-h" || args[0] == "--help" || args[0] == "help":
		if len(args) > 1 {
			if c, ok := findCommand(t, args[1]); ok {
				return mainOf(ctx, t, []string{c.name, "--help"}, stdin, stdout, stderr)
			}
		}
		printUsage(stdout, t)
		return exitOK
	case args[0] == "-v" || args[0] == "--version":
		args = []string{"version"}
	}
	for _, c := range t.commands() {
		if c.name != args[0] {
			continue
		}
		err := c.run(e, args[1:])
		var ue usageError
		switch {
		case err == nil:
			return exitOK
		case errors.Is(err, flag.ErrHelp):
			return exitOK
		case errors.As(err, &ue):
			fmt.Fprintf(stderr, "%s %s: %v\nusage: %s %s\n", t.name, c.name, err, t.name, c.usage)
			return exitUsage
		default:
			fmt.Fprintf(stderr, "%s %s: %v\n", t.name, c.name, err)
			return exitError
		}
	}
	fmt.Fprintf(stderr, "%s: unknown command %q%s\n", t.name, args[0], didYouMean(args[0], commandNames(t)))
	printUsage(stderr, t)
	return exitUsage
}

func commandNames(t tool) []string {
	var names []string
	for _, c := range t.commands() {
		names = append(names, c.name)
	}
	return names
}

func printUsage(w io.Writer, t tool) {
	fmt.Fprintf(w, "%s: %s\n\nusage: %s COMMAND [ARGS] [FLAGS]   (%s COMMAND --help for more)\n\ncommands:\n", t.name, t.about, t.name, t.name)
	for _, c := range t.commands() {
		fmt.Fprintf(w, "  %-11s %s\n", c.name, c.help)
	}
	fmt.Fprintln(w, "\nflags:\n  -h, --help     this help\n  -v, --version  print the version")
}

// newFlags makes a FlagSet that reports errors instead of exiting; its
// --help prints the command's help to stdout.
func newFlags(e *env, name string) *flag.FlagSet {
	t := e.tool
	if t.name == "" {
		t = pawTool()
	}
	fs := flag.NewFlagSet(t.name+" "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are printed once, by Main, with the usage line
	fs.Usage = func() {
		if c, ok := findCommand(t, name); ok {
			printCommandHelp(e.stdout, t, c, fs)
		}
	}
	return fs
}

// parse parses flags that may come before or after positional arguments.
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		// flag calls Usage on every error; only --help prints the help.
		help := fs.Usage
		fs.Usage = func() {}
		err := fs.Parse(args)
		fs.Usage = help
		if err != nil {
			if errors.Is(err, flag.ErrHelp) {
				help()
				return nil, err
			}
			return nil, usageError{flagError(fs, err)}
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// runtimeFlags are the interpreter settings shared by commands that run
// programs.
type runtimeFlags struct {
	ortLib   string
	device   string
	maxBatch int
	maxDelay time.Duration
	workers  int
	cache    int
}

// ortLibUsage describes --ort-lib, which every command that loads ONNX
// Runtime takes.
var ortLibUsage = "ONNX Runtime library (default $" + runtime.EnvORTLib + ", then " + runtime.DefaultORTLibPath() + ")"

// ortLibFlag declares --ort-lib on a command that takes no other
// interpreter flags.
func ortLibFlag(fs *flag.FlagSet) *string { return fs.String("ort-lib", "", ortLibUsage) }

func addRuntimeFlags(fs *flag.FlagSet) *runtimeFlags {
	r := &runtimeFlags{}
	fs.StringVar(&r.ortLib, "ort-lib", "", ortLibUsage)
	fs.StringVar(&r.device, "device", "cpu", "execution provider: cpu, cuda or cuda:N")
	fs.IntVar(&r.maxBatch, "max-batch", runtime.DefaultMaxBatch, "records per micro-batch")
	fs.DurationVar(&r.maxDelay, "max-delay", runtime.DefaultMaxDelay, "longest wait before a partial batch runs")
	fs.IntVar(&r.workers, "workers", 0, "parallel workers (default: GOMAXPROCS)")
	fs.IntVar(&r.cache, "template-cache", 0, "decisions remembered per worker by token-stream key (default 16384; -1 off)")
	return r
}

func (r *runtimeFlags) options() (runtime.PipelineOptions, error) {
	dev, err := runtime.ParseDevice(r.device)
	if err != nil {
		return runtime.PipelineOptions{}, usageError{err.Error()}
	}
	bc := runtime.BatcherConfig{MaxBatch: r.maxBatch, MaxDelay: r.maxDelay, Workers: r.workers, TemplateCache: r.cache}
	bc = withDefaults(bc)
	return runtime.PipelineOptions{
		Program: runtime.ProgramOptions{Device: dev, Sessions: bc.Workers, MaxBatch: bc.MaxBatch},
		Batcher: bc,
	}, nil
}

func withDefaults(bc runtime.BatcherConfig) runtime.BatcherConfig {
	if bc.MaxBatch <= 0 {
		bc.MaxBatch = runtime.DefaultMaxBatch
	}
	if bc.Workers <= 0 {
		bc.Workers = defaultWorkers()
	}
	return bc
}

// open checks the interpreter flags and loads ONNX Runtime; the caller
// closes the Env.
func (r *runtimeFlags) open() (runtime.PipelineOptions, *runtime.Env, error) {
	opts, err := r.options()
	if err != nil {
		return opts, nil, err
	}
	env, err := runtime.OpenEnv(r.ortLib)
	return opts, env, err
}

// openProgram loads one program and wraps it in a single-program pipeline
// with the given steps. input, when not nil, overrides the program's input
// selector.
func (r *runtimeFlags) openProgram(path string, input *string, steps func(*runtime.Program) []runtime.Step) (*runtime.Env, *runtime.Pipeline, error) {
	art, err := runtime.ReadArtifactFile(path)
	if err != nil {
		return nil, nil, err
	}
	opts, env, err := r.open()
	if err != nil {
		return nil, nil, err
	}
	pl, err := singlePipeline(env, art, opts, input, steps)
	if err != nil {
		env.Close()
		return nil, nil, err
	}
	return env, pl, nil
}

// loadBatcher loads one program and starts a batcher for it; close
// releases both and ONNX Runtime.
func (r *runtimeFlags) loadBatcher(path string, opts runtime.PipelineOptions) (*runtime.Program, *runtime.Batcher, func(), error) {
	env, err := runtime.OpenEnv(r.ortLib)
	if err != nil {
		return nil, nil, nil, err
	}
	p, err := runtime.LoadProgram(env, path, opts.Program)
	if err != nil {
		env.Close()
		return nil, nil, nil, err
	}
	set, err := runtime.NewProgramSet(p)
	if err == nil {
		var b *runtime.Batcher
		if b, err = runtime.NewBatcher(set, opts.Batcher); err == nil {
			return p, b, func() { b.Close(); p.Close(); env.Close() }, nil
		}
	}
	p.Close()
	env.Close()
	return nil, nil, nil, err
}

// singlePipeline prepares a decoded artifact and runs it through a
// one-program pipeline with the given steps; the pipeline owns the program.
func singlePipeline(env *runtime.Env, art *runtime.Artifact, opts runtime.PipelineOptions, input *string, steps func(*runtime.Program) []runtime.Step) (*runtime.Pipeline, error) {
	p, err := runtime.NewProgram(env, art, opts.Program)
	if err != nil {
		return nil, err
	}
	cfg := &runtime.PipelineConfig{Steps: steps(p)}
	if input != nil {
		cfg.Input = *input
		if cfg.Input == "" {
			// An empty pipeline input means "the program's"; force whole line.
			p.Manifest.Input = ""
		}
	}
	pl, err := runtime.NewPipeline(cfg, []*runtime.Program{p}, opts.Batcher)
	if err != nil {
		p.Close()
		return nil, err
	}
	return pl, nil
}

// tagAll is the steps of a pipeline that only tags, for scoring.
func tagAll(p *runtime.Program) []runtime.Step {
	return []runtime.Step{{Tag: &runtime.TagStep{Programs: []string{p.Name()}}}}
}

func runVersion(e *env, args []string) error {
	fmt.Fprintln(e.stdout, "paw", compilerVersion())
	return nil
}

func joinLabels(ls []string) string { return strings.Join(ls, ", ") }
