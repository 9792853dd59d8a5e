package cli

import (
	"flag"
	"fmt"
	"io"
	"strings"
)

// helpText is a command's --help: what it does, its arguments and an
// example. Flags are listed from the command's FlagSet.
type helpText struct {
	synopsis string
	args     string
	example  string
}

var helps = map[string]helpText{
	"compile": {"Compiles each spec (its description, labels, examples and tests) into a deterministic, content-addressed .paw program: the same spec and paw version give byte-identical bytes. The spec's tests must pass min_test_accuracy, or no file is written. Progress goes to stderr, the report to stdout.",
		"SPEC.yaml...  one or more specs (see configs/filters)",
		"paw compile configs/filters/real-error.yaml -o build/programs/real-error.paw"},
	"test": {"Runs a spec's tests through ONNX Runtime, compiling it first when given a spec, and exits 1 when any test fails.",
		"SPEC.yaml|PROGRAM.paw  a spec, or a compiled program (whose spec is inside it)",
		"paw test build/programs/real-error.paw"},
	"eval": {"Scores a program on labelled JSON lines and prints accuracy, per-label precision, recall and F1, and the confusion matrix.",
		"PROGRAM.paw  the program; --data FILE.jsonl holds objects with a text and a label field",
		"paw eval build/programs/real-error.paw --data labelled.jsonl --json"},
	"run": {"Fuzzy grep: reads lines from stdin, keeps those the program labels with the positive label (or --keep), and writes them to stdout; --json tags every kept line instead. With --pipeline, applies a whole pipeline (filter, tag, route). Unreadable records are reported on stderr and skipped; the exit status is 1 when every record was unreadable, or any with --strict.",
		"PROGRAM.paw  the program, unless --pipeline is given",
		"paw run build/programs/real-error.paw < app.log"},
	"bench": {"Measures the interpreter on a program: lines per second, batch latency percentiles and allocations per line, on the given lines or built-in ones.",
		"PROGRAM.paw  the program to measure",
		"paw bench build/programs/real-error.paw --duration 5s"},
	"suggest": {"Lists the unlabelled lines a program is least sure about, one per kind of log pattern, as the next examples worth labelling.",
		"PROGRAM.paw  the program; --data FILE holds the unlabelled lines",
		"paw suggest build/programs/real-error.paw --data app.log --n 20"},
	"inspect": {"Prints a program's manifest as JSON: labels, interpreter, featurizer, compile metrics and provenance.",
		"PROGRAM.paw  the program to read",
		"paw inspect build/programs/real-error.paw"},
	"templates": {"Mines the patterns of a log, the way the program's teacher calls, suggestions and novelty group lines: each with <*> for its variables, its count, its share of the lines and an example, largest first. With --program, each pattern also gets the label most of its lines get and their mean score and novelty: which patterns the program keeps, drops or does not know. Progress goes to stderr.",
		"FILE|-  the log, or - for stdin",
		"paw templates app.log --program build/programs/real-error.paw"},
	"review": {"Lists the escalated patterns of a program that no one has answered yet: the records of a review file (escalate.to file://..., or a review topic's records saved as lines) whose masked template the sidecar's answer log lacks, grouped by log pattern, largest first. With --answer, asks for each pattern's label on stdin and sends it for each of the pattern's templates (by a person, so it beats the teacher's) to the sidecar, where the program learns from them.",
		"PROGRAM  the program's name",
		"paw review real-error --file /var/log/paw/review.jsonl --sidecar http://127.0.0.1:8080 --answer"},
	"replay": {"Measures the learning loop on a labelled file, in its order: the spec's program decides each record before anything learns from it; the unsure or novel ones go to the teacher, once per log pattern (each of its templates learned from); every --learn-every answers the program is compiled again from the spec and the answers. Reports F1 as emitted and by the program alone (and over the last quarter), teacher calls, escalations, recompiles and templates.",
		"SPEC.yaml  the spec the first program is compiled from",
		"paw replay configs/filters/real-error.yaml --data labelled.jsonl --teacher-url http://localhost:11434/v1 --teacher-model llama3 --json"},
	"quality": {"The few-shot quality experiment: compiles programs from a few labelled lines per system and compares them with keyword and severity baselines.",
		"(none)  --data names the labelled JSON lines",
		"pawdev quality --data ../shared/data/labeled/real-error.jsonl"},
	"process": {"Runs the Kafka stream processor: consumes a topic, applies the pipeline, and routes, tags or drops each record at least once, with dead letters for records it cannot read.",
		"(none)  --config names the processor YAML",
		"paw process --config configs/processor.yaml"},
	"bench-kafka": {"Measures the processor on an embedded broker: pass-through against filtering, over a backlog of records.",
		"(none)",
		"pawdev bench-kafka --program build/programs/real-error.paw --records 200000"},
	"produce": {"Writes stdin's lines to a Kafka topic, one record each (as {\"FIELD\": line} with --json-field).",
		"(none)  lines come from stdin",
		"paw produce --topic logs --brokers 127.0.0.1:9092 < app.log"},
	"consume": {"Prints what landed in Kafka topics, with each record's headers.",
		"(none)  --topics names the topics",
		"paw consume --topics app-logs,security-events"},
	"serve": {"The compiler sidecar: watches a folder of specs, recompiles each on change, publishes programs atomically for processors and plugins to hot-reload, and serves the HTTP API, metrics and dashboard. A token ($PAW_TOKEN) guards everything but /healthz.",
		"(none)",
		"PAW_TOKEN=s3cret paw serve --specs configs/filters --programs build/programs"},
	"health": {"Exits 0 when the URL answers 2xx: a healthcheck for images without curl.",
		"URL  the address to GET",
		"paw health http://localhost:8080/healthz"},
	"broker": {"An embedded Kafka-protocol broker for demos and tests. Not for production.",
		"(none)",
		"paw broker --listen 127.0.0.1:9092 --topics logs:3,app-logs:3"},
	"version": {"Prints paw's version, which is also the compiler version recorded in every program.",
		"(none)",
		"paw version"},
	"completion": {"Prints a shell completion script for bash, zsh or fish.",
		"SHELL  bash, zsh or fish",
		"source <(paw completion bash)"},
}

// printCommandHelp writes a command's help to w.
func printCommandHelp(w io.Writer, t tool, c command, fs *flag.FlagSet) {
	h := helps[c.name]
	fmt.Fprintf(w, "usage: %s %s\n\n%s\n\n", t.name, c.usage, wrap(h.synopsis, 76))
	fmt.Fprintf(w, "arguments:\n  %s\n", h.args)
	if fs != nil {
		n := 0
		fs.VisitAll(func(*flag.Flag) { n++ })
		if n > 0 {
			fmt.Fprintln(w, "\nflags:")
			out := fs.Output()
			fs.SetOutput(w)
			fs.PrintDefaults()
			fs.SetOutput(out)
		}
	}
	fmt.Fprintf(w, "\nexample:\n  %s\n", h.example)
}

// wrap breaks s into lines of at most width characters.
func wrap(s string, width int) string {
	var b strings.Builder
	n := 0
	for _, word := range strings.Fields(s) {
		if n > 0 && n+1+len(word) > width {
			b.WriteByte('\n')
			n = 0
		} else if n > 0 {
			b.WriteByte(' ')
			n++
		}
		b.WriteString(word)
		n += len(word)
	}
	return b.String()
}

func findCommand(t tool, name string) (command, bool) {
	for _, c := range t.commands() {
		if c.name == name {
			return c, true
		}
	}
	return command{}, false
}

// runCompletion prints a completion script: commands after paw, files
// and each command's flags after that.
func runCompletion(e *env, args []string) error {
	fs := newFlags(e, "completion")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("want one shell: bash, zsh or fish")
	}
	var names []string
	for _, c := range commands() {
		names = append(names, c.name)
	}
	words := strings.Join(names, " ")
	switch pos[0] {
	case "bash", "zsh":
		if pos[0] == "zsh" {
			fmt.Fprintln(e.stdout, "autoload -U +X bashcompinit && bashcompinit")
		}
		fmt.Fprintf(e.stdout, `_paw() {
  local cur=${COMP_WORDS[COMP_CWORD]}
  if [ "$COMP_CWORD" -eq 1 ]; then
    COMPREPLY=($(compgen -W "%s --help --version" -- "$cur"))
  elif [[ "$cur" == -* ]]; then
    COMPREPLY=($(compgen -W "$(paw "${COMP_WORDS[1]}" --help 2>/dev/null | sed -n 's/^  \(-[a-z0-9-]*\).*/\1/p')" -- "$cur"))
  else
    COMPREPLY=($(compgen -f -- "$cur"))
  fi
}
complete -o filenames -F _paw paw
`, words)
	case "fish":
		fmt.Fprintf(e.stdout, "complete -c paw -n __fish_use_subcommand -f -a '%s'\n", words)
	default:
		return usagef("unknown shell %q: want bash, zsh or fish", pos[0])
	}
	return nil
}
