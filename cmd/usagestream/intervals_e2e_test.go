package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/usagestream/usagestream/internal/kafkaconf"
	"github.com/usagestream/usagestream/internal/kafkatest"
	"github.com/usagestream/usagestream/internal/topics"
	"github.com/usagestream/usagestream/producers/httpin"
)

// TestIntervalsThroughRun, as a user: `run` with the interval endpoint, a
// generated interval file over the end of daylight saving time through
// `ingest`, a corrected read posted as NDJSON with the token, and the
// correction the interval stage emits for it.
func TestIntervalsThroughRun(t *testing.T) {
	kport, rport, hport := freePort(t), freePort(t), freePort(t)
	run := startRunEnv(t, hport, []string{"USAGESTREAM_API_TOKEN=tok"}, "--data-dir", t.TempDir(), "--kafka-port", fmt.Sprint(kport),
		"--registry-port", fmt.Sprint(rport), "--intervals-utility", "gec")
	defer run.stop(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", hport)
	conn := []string{fmt.Sprintf("USAGESTREAM_BROKERS=127.0.0.1:%d", kport), fmt.Sprintf("USAGESTREAM_REGISTRY=http://127.0.0.1:%d", rport)}

	dir := t.TempDir()
	r := runCLI(t, nil, "gen", "-o", dir, "--interval", "60", "--service-points", "2", "--days", "3", "--start", "20241102", "--now", "20241106")
	file := strings.TrimSpace(r.stdout)
	if r.code != 0 || !strings.HasSuffix(file, ".gz") {
		t.Fatalf("gen: %d %q %s", r.code, r.stdout, r.stderr)
	}
	r = runCLI(t, conn, "ingest", "--progress", "never", file)
	if r.code != 0 || !strings.Contains(r.stdout, "rows read 146 = published 146 + rejected 0") { // 2 x (24 + 25 + 24)
		t.Fatalf("ingest: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}

	body := `{"service_point_id":"SP-E-00000002","interval_end":"2024-11-03T01:00:00-05:00","minutes":60,"value":42,"units":"KWH","is_estimate":"A"}` + "\n"
	post := func(token string) (int, httpin.Response) {
		req, _ := http.NewRequest(http.MethodPost, base+httpin.Path, strings.NewReader(body))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out httpin.Response
		json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	if code, _ := post(""); code != http.StatusUnauthorized {
		t.Fatalf("without the token: %d", code)
	}
	if code, out := post("tok"); code != http.StatusOK || out.Accepted != 1 {
		t.Fatalf("post: %d %+v", code, out)
	}

	kc := kafkaconf.Config{Brokers: []string{fmt.Sprintf("127.0.0.1:%d", kport)}, Registry: fmt.Sprintf("http://127.0.0.1:%d", rport), TopicPrefix: "usagestream."}
	names := topics.NewNames(kc.TopicPrefix)
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(200 * time.Millisecond) {
		recs, err := kafkatest.ReadCommitted(context.Background(), kc, names.Corrections)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) > 0 {
			m := kafkatest.Decode(t, kc, recs)[0]
			end := m["interval_end"].(map[string]any)["long.timestamp-millis"].(time.Time).UTC()
			if m["kind"] != "INTERVAL" || m["new_value"] != 42.0 || m["service_point_id"] != "SP-E-00000002" || !end.Equal(time.Date(2024, 11, 3, 6, 0, 0, 0, time.UTC)) {
				t.Fatalf("correction %v", m)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no correction from the interval stage: %s", run.se.String())
		}
	}
}
