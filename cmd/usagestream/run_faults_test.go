package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/usagestream/usagestream/internal/kafkaconf"
	"github.com/usagestream/usagestream/internal/kafkatest"
	"github.com/usagestream/usagestream/internal/quarantine"
	"github.com/usagestream/usagestream/internal/topics"
)

// TestRunGoesOnPastBadRecords (issue 13): a record on billing.v1 and one on
// an event topic that are not Avro, sent to a running `usagestream run`
// with a JSON Lines sink, are quarantined by the stages and the sink; run
// keeps serving its broker, registry and health, counts them on /metrics,
// and stops cleanly. Before, the first one ended run (and the embedded
// broker and registry with it), and a restart failed on it again.
func TestRunGoesOnPastBadRecords(t *testing.T) {
	kport, rport, hport := freePort(t), freePort(t), freePort(t)
	run := startRun(t, hport, "--data-dir", t.TempDir(), "--kafka-port", fmt.Sprint(kport), "--registry-port", fmt.Sprint(rport),
		"--jsonl-dir", t.TempDir())
	defer run.stop(t)
	kc := kafkaconf.Config{Brokers: []string{fmt.Sprintf("127.0.0.1:%d", kport)}, Registry: fmt.Sprintf("http://127.0.0.1:%d", rport), TopicPrefix: "usagestream."}
	names := topics.NewNames(kc.TopicPrefix)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cl, err := kc.NewClient(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.ProduceSync(ctx,
		&kgo.Record{Topic: names.Billing, Key: []byte("SP-BAD"), Value: []byte("plain text")},
		&kgo.Record{Topic: names.Eligibility, Key: []byte("C-BAD"), Value: []byte{0, 0, 0, 0, 1}},
	).FirstErr(); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"servicepoint", "interval", quarantine.SinkConsumer("jsonl")} {
		qt := quarantine.StageTopic(kc.TopicPrefix, q)
		for deadline := time.Now().Add(time.Minute); ; time.Sleep(200 * time.Millisecond) {
			recs, err := kafkatest.ReadCommitted(ctx, kc, qt)
			if err == nil && len(recs) == 1 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s holds %d records (err %v), want 1\n%s", qt, len(recs), err, run.se.String())
			}
		}
	}
	if run.cmd.ProcessState != nil {
		t.Fatalf("run exited: %s", run.se.String())
	}
	for _, u := range []string{fmt.Sprintf("http://127.0.0.1:%d/healthz", hport), fmt.Sprintf("http://127.0.0.1:%d/subjects", rport)} {
		resp, err := http.Get(u)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("%s after the bad records: %v %v", u, err, resp)
		}
		resp.Body.Close()
	}
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", hport))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`usagestream_processor_records_quarantined_total{processor="servicepoint",topic="usagestream.billing.v1"} 1`,
		`usagestream_sink_records_quarantined_total{sink="jsonl",topic="usagestream.eligibility.v1"} 1`,
	} {
		if !strings.Contains(string(body), want) {
			t.Fatalf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(run.se.String(), "plain text") {
		t.Fatal("the log holds a quarantined record's payload")
	}
}
