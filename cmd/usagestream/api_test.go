package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/usagestream/usagestream/producers/gen"
)

// TestRunServesTheQueryAPI: `usagestream run` with a token in the
// environment serves the query API on its HTTP address, on 127.0.0.1: 401
// without the token, the labelled gap with its rule and file line with it,
// and the API's metrics on /metrics.
func TestRunServesTheQueryAPI(t *testing.T) {
	kport, rport, hport := freePort(t), freePort(t), freePort(t)
	run := startRunEnv(t, hport, []string{"USAGESTREAM_API_TOKEN=e2e-token"}, "--data-dir", t.TempDir(), "--kafka-port", fmt.Sprint(kport),
		"--registry-port", fmt.Sprint(rport))
	defer run.stop(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", hport)
	call := func(path, token string) (int, []byte) {
		code, _, b := httpGet(base+path, token)
		return code, b
	}
	files := genFiles(t, t.TempDir(), gen.Config{ServicePoints: 40, Months: 14, Seed: 9, Anomalies: map[gen.Kind]int{"U2_GAP": 1}})
	var gap gen.Label
	for _, l := range files.Labels {
		if l.Rule == "U2" {
			gap = l
		}
	}
	if gap.ServicePointID == "" {
		t.Fatal("no labelled gap")
	}
	conn := []string{"USAGESTREAM_BROKERS=127.0.0.1:" + fmt.Sprint(kport), "USAGESTREAM_REGISTRY=http://127.0.0.1:" + fmt.Sprint(rport)}
	if r := runCLI(t, conn, append([]string{"ingest"}, files.Files...)...); r.code != 0 {
		t.Fatalf("ingest: exit %d\n%s", r.code, r.stderr)
	}

	path := "/v1/service-points/" + gap.ServicePointID
	if code, _ := call(path, ""); code != http.StatusUnauthorized {
		t.Fatalf("without the token: %d, want 401", code)
	}
	var sp struct {
		Anomalies []struct {
			Code, Rule string
			Source     struct {
				File string
				Line int64
			}
		}
	}
	deadline := time.Now().Add(time.Minute)
	for {
		code, body := call(path, "e2e-token")
		if code == http.StatusOK {
			if err := json.Unmarshal(body, &sp); err != nil {
				t.Fatal(err)
			}
			if len(sp.Anomalies) > 0 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the gap on %s never showed: last answer %d %s", gap.ServicePointID, code, body)
		}
		time.Sleep(200 * time.Millisecond)
	}
	a := sp.Anomalies[0]
	if a.Code != "USAGE_GAP" || a.Rule != "U2" || a.Source.File != gap.File || a.Source.Line == 0 {
		t.Errorf("anomaly %+v, label %+v", a, gap)
	}
	_, metrics := call("/metrics", "")
	if !strings.Contains(string(metrics), `usagestream_query_requests_total{code="401",endpoint="service_point"} 1`) {
		t.Errorf("/metrics lacks the query API's 401:\n%s", grepLines(string(metrics), "usagestream_query"))
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestPeerFlagsAreChecked: a --peer-allow entry that is neither a CIDR, an
// IP nor host:port, or a --peer-ca without a certificate, stops run and
// process before they start anything, naming the flag, from the flag or
// from the environment.
func TestPeerFlagsAreChecked(t *testing.T) {
	noCert := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(noCert, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{"process, flag", nil, []string{"process", "--brokers", "127.0.0.1:1", "--peer-allow", "10.0.0.0/8,api-2"}, `--peer-allow entry "api-2"`},
		{"run, environment", []string{"USAGESTREAM_PEER_ALLOW=10.0.0.0/33"}, []string{"run", "--data-dir", t.TempDir()}, `--peer-allow entry "10.0.0.0/33"`},
		{"process, CA", nil, []string{"process", "--brokers", "127.0.0.1:1", "--peer-ca", noCert}, "holds no PEM certificate"},
	} {
		r := runCLI(t, c.env, c.args...)
		if r.code == 0 || !strings.Contains(r.stderr, c.want) {
			t.Errorf("%s: exit %d, stderr lacks %q:\n%s", c.name, r.code, c.want, r.stderr)
		}
	}
}
