package postgres

import (
	"strings"
	"testing"
	"time"

	"github.com/usagestream/usagestream/internal/topics"
	recavro "github.com/usagestream/usagestream/records/avro"
	"github.com/usagestream/usagestream/sinks/sink"
	"github.com/usagestream/usagestream/sinks/sinktest"
)

// TestRowsFollowTheTypedRecords: each typed event becomes a row of its
// table with its fields (no database needed); a record on another kind's
// topic, or a record that is no event, is refused with the reason.
func TestRowsFollowTheTypedRecords(t *testing.T) {
	names := topics.NewNames("t.")
	s := &Sink{cfg: Config{Topics: names, Metrics: NewMetrics(nil)}}
	g := sinktest.NewGenerator(names, 9)
	var batch []sink.Event
	kinds := map[string]int{}
	for i := range 200 {
		e := g.Next()
		kinds[e.Topic]++
		batch = append(batch, sink.Event{Topic: e.Topic, Offset: int64(i), Timestamp: time.Unix(int64(i), 0), Record: e.Record})
	}
	rows, err := s.rows(batch)
	if err != nil {
		t.Fatal(err)
	}
	byStatement := map[string]int{}
	for _, r := range rows {
		byStatement[r.statement] += r.n
	}
	if byStatement[insertEligibility] != kinds[names.Eligibility] || byStatement[insertCorrections] != kinds[names.Corrections] ||
		byStatement[insertAccountEvents] != kinds[names.AccountEvents] || byStatement[insertAnomalies] != kinds[names.Anomalies] {
		t.Fatalf("rows per table %v, events per topic %v", byStatement, kinds)
	}
	for _, r := range rows {
		if r.statement != insertAnomalies {
			continue
		}
		ids := r.args[0].([]string)
		for i, ev := range batch {
			if a, ok := ev.Record.(*recavro.Anomaly); ok {
				if ids[0] != a.EventID {
					t.Fatalf("first anomaly row %s, first anomaly event %s (event %d)", ids[0], a.EventID, i)
				}
				break
			}
		}
	}
	wrong := sink.Event{Topic: names.Anomalies, Record: batch[0].Record}
	if _, ok := wrong.Record.(*recavro.Anomaly); ok {
		wrong.Topic = names.Eligibility
	}
	if _, err := s.rows([]sink.Event{wrong}); err == nil || !strings.Contains(err.Error(), "check --topic-prefix") {
		t.Fatalf("a record on another kind's topic: %v", err)
	}
	if _, err := s.rows([]sink.Event{{Topic: names.Anomalies, Record: &recavro.FileEvent{}}}); err == nil || !strings.Contains(err.Error(), "not an event this sink writes") {
		t.Fatalf("a file event: %v", err)
	}
}
