#!/usr/bin/env bash
# `make bench`: the line-rate figures in one table, each beside the
# baseline measured in the same run (absolute figures vary by ±20% on a
# shared machine; the ratios hold better). The table goes to stdout and
# build/bench.txt; the benchmarks' own output to build/bench/.
set -euo pipefail
BUILD=${BUILD:-build}
PAW=${PAW:-$BUILD/paw}
PAWDEV=${PAWDEV:-$BUILD/pawdev}
raw=$BUILD/bench
mkdir -p "$raw"

echo "plugin harness (100,000 records, 2 threads) ..." >&2
go test -run '^$' -bench 'Plugin$' -benchtime 10x -timeout 30m ./plugin >"$raw/plugin.txt"
go test -run 'TestPluginMemory$' -v -count 1 -timeout 10m ./plugin >"$raw/memory.txt"
echo "interpreter ..." >&2
go test -run '^$' -bench 'Interpreter|Programs|Scan$|Featurize$|ExtractJSON|TemplateKey' -benchtime 2s -timeout 30m ./runtime >"$raw/runtime.txt"
echo "Kafka processor (pawdev bench-kafka) ..." >&2
"$PAWDEV" bench-kafka --records 200000 --rounds 3 --live-rate 0 >"$raw/kafka.txt" 2>/dev/null

# metric FILE BENCH UNIT: the value go test printed before UNIT.
metric() {
	awk -v b="$2" -v u="$3" '$1 ~ "^"b"(-[0-9]+)?$" { for (i = 2; i < NF; i++) if ($(i+1) == u) { print $i; exit } }' "$1"
}
row() { printf '%-52s %12s %-10s %s\n' "$1" "$2" "$3" "$4"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else print "-" }'; }

{
	row "measure" "value" "unit" "against the same run's baseline"
	p=$raw/plugin.txt
	pt=$(metric "$p" BenchmarkPlugin/pass-through cpu-µs/record)
	rx=$(metric "$p" BenchmarkPlugin/regex cpu-µs/record)
	for m in pass-through regex filter tag filter-nocache; do
		cpu=$(metric "$p" "BenchmarkPlugin/$m" cpu-µs/record)
		row "plugin $m: records/s" "$(metric "$p" "BenchmarkPlugin/$m" records/s)" "records/s" ""
		row "plugin $m: CPU per record" "$cpu" "µs" "$(ratio "$cpu" "$pt") pass-through, $(ratio "$cpu" "$rx") regex"
	done
	grep -o 'harness RSS: .*' "$raw/memory.txt" | sed 's/^/plugin /'
	r=$raw/runtime.txt
	scan=$(metric "$r" BenchmarkScan ns/op)
	row "featurizer scan (template key)" "$scan" "ns/line" ""
	row "featurizer scan + features" "$(metric "$r" BenchmarkFeaturize ns/op)" "ns/line" ""
	for d in loghub trace-ids; do
		s=$(metric "$r" "BenchmarkTemplateKey/$d/scan" ns/op)
		m=$(metric "$r" "BenchmarkTemplateKey/$d/memo" ns/op)
		row "template key through the key memo, $d" "$m" "ns/line" "$(ratio "$m" "$s") its scan"
	done
	off=$(metric "$r" BenchmarkInterpreter/loghub/cache=false lines/s)
	on=$(metric "$r" BenchmarkInterpreter/loghub/cache=true lines/s)
	row "interpreter, template cache off (unique lines)" "$off" "lines/s" ""
	row "interpreter, cache off: batch p99" "$(metric "$r" BenchmarkInterpreter/loghub/cache=false batch-p99-ms)" "ms" ""
	row "interpreter, template cache on" "$on" "lines/s" "$(ratio "$on" "$off") cache off"
	one=$(metric "$r" BenchmarkPrograms/programs=1 lines/s)
	for n in 1 3 10; do
		v=$(metric "$r" "BenchmarkPrograms/programs=$n" lines/s)
		row "tag with $n program(s), cache off" "$v" "lines/s" "cost $(ratio "$one" "$v") one program"
	done
	js=$(metric "$r" BenchmarkExtractJSON/scan ns/op)
	row "JSON field read by scan" "$js" "ns/record" "$(ratio "$js" "$(metric "$r" BenchmarkExtractJSON/decode ns/op)") decoding it"
	k=$raw/kafka.txt
	awk 'NR > 2 && NF > 8 && $1 !~ /\// { printf "%-52s %12s %-10s %s\n", "processor " $1, $2, "records/s", "peak RSS " $(NF-4) " " $(NF-3) }' "$k"
	grep ' / ' "$k" | sed 's/^/processor /'
} | tee "$BUILD/bench.txt"
