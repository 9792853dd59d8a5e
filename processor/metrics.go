package processor

import (
	"github.com/prometheus/client_golang/prometheus"
)

// collectors are the processor's Prometheus metrics.
type collectors struct {
	fetched     prometheus.Counter
	produced    *prometheus.CounterVec // by topic and kind
	dropped     *prometheus.CounterVec // by program
	deadLetters *prometheus.CounterVec // by reason
	tags        *prometheus.CounterVec // by program and label
	latency     prometheus.Histogram
	batchSize   prometheus.Histogram
	backlog     prometheus.Gauge
	uncommitted prometheus.Gauge
	rewinds     prometheus.Counter
	reloads     *prometheus.CounterVec // by program and result
	programInfo *prometheus.GaugeVec   // program, id -> 1 for the running one
}

func newCollectors(reg prometheus.Registerer) *collectors {
	m := &collectors{
		fetched: prometheus.NewCounter(prometheus.CounterOpts{Name: "paw_processor_records_fetched_total", Help: "Input records fetched."}),
		produced: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "paw_processor_records_produced_total",
			Help: "Records acknowledged by the brokers, by output topic and kind (output, audit, dead_letter)."}, []string{"topic", "kind"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "paw_processor_records_dropped_total",
			Help: "Records a filter dropped, by program."}, []string{"program"}),
		deadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "paw_processor_dead_letters_total",
			Help: "Records sent to the dead-letter topic, by reason."}, []string{"reason"}),
		tags: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "paw_decisions_total",
			Help: "Tagged decisions, by program and label."}, []string{"program", "label"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "paw_processor_latency_seconds",
			Help: "Time from fetching a record to the acknowledgement of its output.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "paw_processor_batch_records",
			Help: "Records per pipeline batch.", Buckets: prometheus.ExponentialBuckets(1, 2, 12)}),
		backlog: prometheus.NewGauge(prometheus.GaugeOpts{Name: "paw_processor_backlog_records",
			Help: "Records between the committed offsets and the high-water marks, summed over partitions."}),
		uncommitted: prometheus.NewGauge(prometheus.GaugeOpts{Name: "paw_processor_uncommitted_records",
			Help: "Records fetched but not yet committed, summed over partitions: what a crash would replay."}),
		rewinds: prometheus.NewCounter(prometheus.CounterOpts{Name: "paw_processor_rewinds_total",
			Help: "Sessions restarted from the last commit after a broker or produce failure."}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "paw_program_reloads_total",
			Help: "Program reloads, by program and result (ok, rejected)."}, []string{"program", "result"}),
		programInfo: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "paw_program_info",
			Help: "1 for the program ID running now."}, []string{"program", "id"}),
	}
	if reg != nil {
		reg.MustRegister(m.fetched, m.produced, m.dropped, m.deadLetters, m.tags, m.latency, m.batchSize,
			m.backlog, m.uncommitted, m.rewinds, m.reloads, m.programInfo)
	}
	return m
}
