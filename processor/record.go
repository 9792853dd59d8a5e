package processor

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/segmentio/kafka-go"

	"github.com/pawlogs/paw/internal/dataplane"
	"github.com/pawlogs/paw/runtime"
)

// Dead-letter reasons, sent in the paw-dlq-reason header; the plugin
// uses the same.
const (
	ReasonTooLarge     = dataplane.ReasonTooLarge
	ReasonNotJSON      = dataplane.ReasonNotJSON
	ReasonFieldMissing = dataplane.ReasonFieldMissing
	ReasonNotString    = dataplane.ReasonNotString
	ReasonInvalidUTF8  = dataplane.ReasonInvalidUTF8
	ReasonRejected     = dataplane.ReasonRejected
)

// Header names the processor writes.
const (
	HeaderDLQReason       = "paw-dlq-reason"
	HeaderDLQError        = "paw-dlq-error"
	HeaderSourceTopic     = "paw-source-topic"
	HeaderSourcePartition = "paw-source-partition"
	HeaderSourceOffset    = "paw-source-offset"
	HeaderDroppedBy       = "paw-dropped-by"
	HeaderOriginalBytes   = "paw-dlq-original-bytes"
	HeaderEscalatedBy     = "paw-escalated-by"
	HeaderEscalationLabel = "paw-escalation-label"
	HeaderEscalationScore = "paw-escalation-score"
)

// reasonOf classifies why a record could not be processed.
func reasonOf(err error) string { return dataplane.Reason(err) }

// TagHeader is the header carrying a program's label, score or id on
// text records: paw-<program>-<what>.
func TagHeader(program, what string) string { return "paw-" + program + "-" + what }

// sourceHeaders say where a dead-lettered or audited record came from.
func sourceHeaders(m *kafka.Message) []kafka.Header {
	return []kafka.Header{
		{Key: HeaderSourceTopic, Value: []byte(m.Topic)},
		{Key: HeaderSourcePartition, Value: strconv.AppendInt(nil, int64(m.Partition), 10)},
		{Key: HeaderSourceOffset, Value: strconv.AppendInt(nil, m.Offset, 10)},
	}
}

// withHeaders returns the record's headers without those named in ours,
// followed by ours: a record processed twice carries one set of paw headers.
func withHeaders(in []kafka.Header, ours []kafka.Header) []kafka.Header {
	out := make([]kafka.Header, 0, len(in)+len(ours))
	for _, h := range in {
		replaced := false
		for _, o := range ours {
			if h.Key == o.Key {
				replaced = true
				break
			}
		}
		if !replaced {
			out = append(out, h)
		}
	}
	return append(out, ours...)
}

// tagHeaders renders tags as paw-<program>-{label,score,id,by,novelty} headers;
// by is always written (program or teacher), so a record that passes
// through twice never keeps a stale one.
func tagHeaders(tags []runtime.Tag) []kafka.Header {
	hs := make([]kafka.Header, 0, 5*len(tags))
	for _, t := range tags {
		hs = append(hs,
			kafka.Header{Key: TagHeader(t.Program, "label"), Value: []byte(t.Label)},
			kafka.Header{Key: TagHeader(t.Program, "score"), Value: strconv.AppendFloat(nil, float64(t.Score), 'f', 4, 32)},
			kafka.Header{Key: TagHeader(t.Program, "id"), Value: []byte(t.ID)},
			kafka.Header{Key: TagHeader(t.Program, "by"), Value: []byte(by(t))},
			kafka.Header{Key: TagHeader(t.Program, "novelty"), Value: strconv.AppendFloat(nil, float64(t.Novelty), 'f', 4, 32)})
	}
	return hs
}

func by(t runtime.Tag) string {
	if t.By == "" {
		return "program"
	}
	return t.By
}

// tagJSON adds {"<field>": {"<program>": {label, score, id}}} to a JSON
// object record. The record's own bytes are kept as they are: the field is
// spliced in before the closing brace, unless the record already has a
// field of that name, which is then replaced.
func tagJSON(record []byte, field string, tags []runtime.Tag) ([]byte, error) {
	val, err := json.Marshal(runtime.TagMap(tags)) // map keys come out sorted
	if err != nil {
		return nil, err
	}
	key, _ := json.Marshal(field)
	trimmed := bytes.TrimRight(record, " \t\r\n")
	if !bytes.Contains(record, key) && len(trimmed) > 0 && trimmed[len(trimmed)-1] == '}' {
		body := bytes.TrimRight(trimmed[:len(trimmed)-1], " \t\r\n")
		out := make([]byte, 0, len(record)+len(key)+len(val)+2)
		out = append(out, body...)
		if len(body) > 0 && body[len(body)-1] != '{' {
			out = append(out, ',')
		}
		out = append(out, key...)
		out = append(out, ':')
		out = append(out, val...)
		return append(out, '}'), nil
	}
	// The key may be the field (or only appear inside a string): decode the
	// top level, keeping every other value's bytes.
	var m map[string]json.RawMessage
	if err := json.Unmarshal(record, &m); err != nil {
		return nil, fmt.Errorf("tag JSON record: %w", err)
	}
	m[field] = val
	return json.Marshal(m)
}
