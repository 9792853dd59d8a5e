#!/usr/bin/env bash
# The whole Kafka path on one machine: an embedded broker, the example
# programs, the processor, the sample logs in, and what landed where.
set -euo pipefail
cd "$(dirname "$0")/.."
PAW=${PAW:-build/paw}
# A free port unless PAW_BROKER names one: 9092 may be taken.
BROKER=${PAW_BROKER:-127.0.0.1:0}
TOPICS=logs:3,app-logs:3,security-events:3,logs-dropped:1,logs-dlq:1
work=$(mktemp -d)
broker= processor=
stop() {
	# The processor first (it drains and commits), then the broker.
	[ -n "$processor" ] && kill "$processor" 2>/dev/null && wait "$processor" || true
	[ -n "$broker" ] && kill "$broker" 2>/dev/null && wait "$broker" || true
	rm -rf "$work"
}
trap stop EXIT

"$PAW" broker --listen "$BROKER" --topics "$TOPICS" >"$work/broker.log" 2>&1 &
broker=$!
for _ in $(seq 50); do grep -q listening "$work/broker.log" && break; sleep 0.1; done
grep -q listening "$work/broker.log" || { cat "$work/broker.log"; exit 1; }
BROKER=$(sed -n 's/^listening on \([^ ]*\).*/\1/p' "$work/broker.log")
echo "== broker on $BROKER (paw broker: embedded, not for production)"

"$PAW" process --config configs/processor.yaml --brokers "$BROKER" --metrics-listen 127.0.0.1:0 --log-level warn &
processor=$!
echo "== processor started (configs/processor.yaml)"

# The samples, as JSON records in "log" (what Fluent Bit ships), then one
# record that is not JSON: it goes to the dead-letter topic.
"$PAW" produce --brokers "$BROKER" --topic logs --json-field log < configs/samples/app.log
echo '{"oops": not json' | "$PAW" produce --brokers "$BROKER" --topic logs
sleep 3
"$PAW" consume --brokers "$BROKER" --topics app-logs,security-events,logs-dropped,logs-dlq
