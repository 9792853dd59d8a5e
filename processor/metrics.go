package processor

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pawlogs/paw/runtime"
)

// collectors are the processor's Prometheus metrics.
type collectors struct {
	fetched     prometheus.Counter
	produced    *prometheus.CounterVec // by topic and kind
	dropped     *prometheus.CounterVec // by program
	deadLetters *prometheus.CounterVec // by reason
	latency     prometheus.Histogram
	batchSize   prometheus.Histogram
	backlog     prometheus.Gauge
	uncommitted prometheus.Gauge
	rewinds     prometheus.Counter
	reloads     *prometheus.CounterVec // by program and result
	// produceRetries are the writer's own retries (kafka-go MaxAttempts).
	produceRetries prometheus.Counter
	programInfo    *prometheus.GaugeVec // program, id -> 1 for the running one
}

func newCollectors(reg prometheus.Registerer, pl *runtime.Pipeline) *collectors {
	m := &collectors{
		fetched: prometheus.NewCounter(prometheus.CounterOpts{Name: "paw_processor_records_fetched_total", Help: "Input records fetched."}),
		produced: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "paw_processor_records_produced_total",
			Help: "Records acknowledged by the brokers, by output topic and kind (output, audit, dead_letter)."}, []string{"topic", "kind"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "paw_processor_records_dropped_total",
			Help: "Records a filter dropped, by program."}, []string{"program"}),
		deadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "paw_processor_dead_letters_total",
			Help: "Records sent to the dead-letter topic, by reason."}, []string{"reason"}),
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
		produceRetries: prometheus.NewCounter(prometheus.CounterOpts{Name: "paw_processor_produce_retries_total",
			Help: "Produce requests the writer sent again; each may duplicate its batch if the first attempt landed."}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "paw_program_reloads_total",
			Help: "Program reloads, by program and result (ok, rejected)."}, []string{"program", "result"}),
		programInfo: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "paw_program_info",
			Help: "1 for the program ID running now."}, []string{"program", "id"}),
	}
	if reg != nil {
		reg.MustRegister(pipelineCollector{pl})
		reg.MustRegister(m.produceRetries)
		reg.MustRegister(m.fetched, m.produced, m.dropped, m.deadLetters, m.latency, m.batchSize,
			m.backlog, m.uncommitted, m.rewinds, m.reloads, m.programInfo)
	}
	return m
}

// pipelineCollector reads the pipeline's own counts at scrape time: every
// program's decisions by label (whatever its step), per-batch inference
// time and template-cache use.
type pipelineCollector struct{ pl *runtime.Pipeline }

var (
	decisionsDesc = prometheus.NewDesc("paw_decisions_total", "Decisions, by program and label.", []string{"program", "label"}, nil)
	inferenceDesc = prometheus.NewDesc("paw_inference_seconds", "Per-batch featurization and inference time: mean and p99.", []string{"stat"}, nil)
	lookupsDesc   = prometheus.NewDesc("paw_template_cache_lookups_total", "Template-cache lookups.", nil, nil)
	hitsDesc      = prometheus.NewDesc("paw_template_cache_hits_total", "Template-cache lookups answered from the cache.", nil, nil)
	escDesc       = prometheus.NewDesc("paw_escalations_total", "Low-confidence decisions escalated, for review or to the teacher, by program.", []string{"program"}, nil)
	novelDesc     = prometheus.NewDesc("paw_novel_total", "Decisions on records unlike the program's training data (novelty above 0.5), by program: drift that needs no labels.", []string{"program"}, nil)
	teacherDesc   = prometheus.NewDesc("paw_teacher_escalations_total",
		"Records escalated to the teacher, by program and outcome (asked, cached, over_budget, failed, dropped, changed).", []string{"program", "outcome"}, nil)
	teacherCallsDesc = prometheus.NewDesc("paw_teacher_calls_total", "Requests sent to the teacher, by program; never over max_calls.", []string{"program"}, nil)
)

func (c pipelineCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- decisionsDesc
	ch <- inferenceDesc
	ch <- lookupsDesc
	ch <- hitsDesc
	ch <- escDesc
	ch <- novelDesc
	ch <- teacherDesc
	ch <- teacherCallsDesc
}

func (c pipelineCollector) Collect(ch chan<- prometheus.Metric) {
	for program, byLabel := range c.pl.Decisions() {
		for label, n := range byLabel {
			ch <- prometheus.MustNewConstMetric(decisionsDesc, prometheus.CounterValue, float64(n), program, label)
		}
	}
	st := c.pl.Stats()
	ch <- prometheus.MustNewConstMetric(inferenceDesc, prometheus.GaugeValue, st.InferenceMean.Seconds(), "mean")
	ch <- prometheus.MustNewConstMetric(inferenceDesc, prometheus.GaugeValue, st.InferenceP99.Seconds(), "p99")
	ch <- prometheus.MustNewConstMetric(lookupsDesc, prometheus.CounterValue, float64(st.Lookups))
	ch <- prometheus.MustNewConstMetric(hitsDesc, prometheus.CounterValue, float64(st.Hits))
	for program, n := range c.pl.Novel() {
		ch <- prometheus.MustNewConstMetric(novelDesc, prometheus.CounterValue, float64(n), program)
	}
	for program, n := range c.pl.Escalations() {
		ch <- prometheus.MustNewConstMetric(escDesc, prometheus.CounterValue, float64(n), program)
	}
	for program, tc := range c.pl.TeacherCounts() {
		for _, o := range []struct {
			name string
			n    int64
		}{{"asked", tc.Asked}, {"cached", tc.Cached}, {"over_budget", tc.OverBudget}, {"failed", tc.Failed}, {"dropped", tc.Dropped}, {"changed", tc.Changed}} {
			ch <- prometheus.MustNewConstMetric(teacherDesc, prometheus.CounterValue, float64(o.n), program, o.name)
		}
		ch <- prometheus.MustNewConstMetric(teacherCallsDesc, prometheus.CounterValue, float64(tc.Calls), program)
	}
}
